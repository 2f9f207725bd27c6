// Identity against the character's reference images (docs/method.md 3.4, PEN_i): s_i = the largest
// cosine between generated image i and any reference, then the two-sided band penalty
// PEN = -2·max(0, s - tau_hi) - 2·max(0, tau_lo - s): too close to a training image (copying) or
// too far (identity lost) both cost, anything in [tau_lo, tau_hi] is free. With DINOv2 this is the
// reference's reward term; the plain similarity s is the evaluation metric ("DINO similarity"),
// and the same class over CLIP image embeddings gives CLIP-I.
import { scope } from '../torch/index.js';
import { cosineMatrix, type ImageEmbedder, type ImageBatch } from './nets/index.js';

/** The band thresholds of the reference YAML (docs/method.md 3.8). */
export const DEFAULT_BAND = { tauHi: 0.9, tauLo: 0.5 } as const;

/** PEN = -2·max(0, s - tauHi) - 2·max(0, tauLo - s) (docs/method.md 6.2). */
export function dinoPenalty(s: number, tauHi: number = DEFAULT_BAND.tauHi, tauLo: number = DEFAULT_BAND.tauLo): number {
  return -2 * Math.max(0, s - tauHi) - 2 * Math.max(0, tauLo - s);
}

export interface IdentityResult {
  /** s_i: max over references of cos(image_i, ref). */
  similarity: number[];
  /** Mean over references of cos(image_i, ref) (CLIP-I / DINO as usually reported). */
  meanSimilarity: number[];
  /** PEN_i. */
  penalty: number[];
}

/** Cosine identity to reference images over any embedder, with the band penalty. */
export class IdentityScorer {
  readonly tauHi: number;
  readonly tauLo: number;
  constructor(readonly embedder: ImageEmbedder, band: { tauHi?: number; tauLo?: number } = {}) {
    this.tauHi = band.tauHi ?? DEFAULT_BAND.tauHi;
    this.tauLo = band.tauLo ?? DEFAULT_BAND.tauLo;
    if (!(this.tauLo <= this.tauHi)) throw new Error(`identity band: tau_lo ${this.tauLo} above tau_hi ${this.tauHi}`);
  }
  get id(): string {
    return this.embedder.id;
  }

  /** Cosine of every image to every reference, [B][R]. */
  similarities(images: ImageBatch, references: ImageBatch): number[][] {
    return scope(() => cosineMatrix(this.embedder.embed(images), this.embedder.embed(references)).toArray() as number[][]);
  }

  /** s, mean similarity and PEN per image. With no references every term is 0 (the reference's failure value). */
  evaluate(images: ImageBatch, references: ImageBatch): IdentityResult {
    const refCount = Array.isArray(references) ? references.length : (references as { shape: number[] }).shape[0]!;
    if (refCount === 0) {
      const n = Array.isArray(images) ? images.length : (images as { shape: number[] }).shape[0]!;
      const z = new Array<number>(n).fill(0);
      return { similarity: [...z], meanSimilarity: [...z], penalty: [...z] };
    }
    const sims = this.similarities(images, references);
    const similarity = sims.map((r) => Math.max(...r));
    return {
      similarity,
      meanSimilarity: sims.map((r) => r.reduce((a, b) => a + b, 0) / r.length),
      penalty: similarity.map((s) => dinoPenalty(s, this.tauHi, this.tauLo)),
    };
  }

  /** The reward term PEN_i (docs/method.md 3.4). */
  score(images: ImageBatch, references: ImageBatch): number[] {
    return this.evaluate(images, references).penalty;
  }
}
