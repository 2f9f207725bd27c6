// Parameters grouped, in order, into buckets of at most `bucketElements` elements (one parameter
// larger than that is a bucket of its own), so each collective moves one large flat message
// (docs/sharding.md 2).
import type { Tensor } from '../../torch/index.js';

export function sizeBoundedBuckets(params: Tensor[], bucketElements: number): Tensor[][] {
  const buckets: Tensor[][] = [];
  let cur: Tensor[] = [];
  let size = 0;
  for (const p of params) {
    if (cur.length && size + p.numel > bucketElements) {
      buckets.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(p);
    size += p.numel;
  }
  if (cur.length) buckets.push(cur);
  return buckets;
}
