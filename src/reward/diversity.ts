// Group diversity (docs/method.md 3.4, DIV_i): the mean perceptual distance over all unordered pairs of
// images that share a prompt; every member of a group gets that value, and a group of one scores 0.
// By default the group is every image of the prompt in the batch given (what the method intends).
// The reference grouped only within each GPU's local reward call, so its 8 images per prompt were
// split over GPUs and DIV was often 0; `localBatch: n` reproduces that by grouping within
// consecutive chunks of n images (the per-GPU slices).
import { batchSize, type ImageBatch, type PairDistance } from './nets/index.js';
import { ops, scope, type Tensor } from '../torch/index.js';

export interface DiversityOptions {
  /** Group within consecutive chunks of this many images only (the reference's per-GPU quirk). */
  localBatch?: number;
}

/** Partitions indices 0..n-1 into groups by key (optionally within local chunks), in first-seen order. */
export function diversityGroups(keys: readonly string[], options: DiversityOptions = {}): number[][] {
  const chunk = options.localBatch ?? keys.length;
  if (!(chunk >= 1)) throw new Error(`diversity: localBatch must be >= 1, got ${chunk}`);
  const groups: number[][] = [];
  for (let start = 0; start < keys.length; start += chunk) {
    const byKey = new Map<string, number[]>();
    for (let i = start; i < Math.min(keys.length, start + chunk); i++) {
      const g = byKey.get(keys[i]!);
      if (g) g.push(i);
      else byKey.set(keys[i]!, [i]);
    }
    groups.push(...byKey.values());
  }
  return groups;
}

function select(images: ImageBatch, idx: number[]): ImageBatch {
  if (Array.isArray(images)) return idx.map((i) => images[i]!);
  return scope(() => ops.cat(idx.map((i) => (images as Tensor).narrow(0, i, 1)), 0));
}

export class DiversityScorer {
  constructor(readonly distance: PairDistance, readonly options: DiversityOptions = {}) {}
  get id(): string {
    return this.distance.id;
  }

  /** Mean pairwise distance of one set of images (0 for fewer than two). */
  meanPairwise(images: ImageBatch): number {
    const n = batchSize(images);
    if (n < 2) return 0;
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) { a.push(i); b.push(j); }
    const d = scope(() => this.distance.distance(select(images, a), select(images, b)));
    return d.reduce((s, x) => s + x, 0) / d.length;
  }

  /** DIV_i for every image, grouped by its prompt (or any group key). */
  score(images: ImageBatch, groupKeys: readonly string[]): number[] {
    const n = batchSize(images);
    if (groupKeys.length !== n) throw new Error(`diversity: ${n} images but ${groupKeys.length} group keys`);
    const out = new Array<number>(n).fill(0);
    for (const g of diversityGroups(groupKeys, this.options)) {
      const v = g.length < 2 ? 0 : scope(() => this.meanPairwise(select(images, g)));
      for (const i of g) out[i] = v;
    }
    return out;
  }
}
