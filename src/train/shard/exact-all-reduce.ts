// Plain data parallel's gradient sum made exact (docs/sharding.md 4): the gradients of each
// bucket are reduce-scattered after every pack, in rank order, onto a float32 chunk per rank,
// and all-gathered into the whole gradients before the step. With interleaved packs the sum is
// the one the packs make on one process, at any world size. Traffic per step: one
// reduce-scatter per pack and one all-gather (one pack per rank: exactly one all-reduce).
import { empty, noGrad, ops, scope, zeros, type ProcessGroup, type Tensor } from '../../torch/index.js';
import { sizeBoundedBuckets } from './buckets.js';

interface Bucket {
  params: Tensor[];
  numel: number;
  padded: number;
  acc: Tensor | null;
}

export class ExactAllReduce {
  private readonly buckets: Bucket[] = [];

  constructor(readonly params: Tensor[], readonly group: ProcessGroup, bucketElements = 1 << 22) {
    for (const bucket of sizeBoundedBuckets(params, bucketElements)) {
      const numel = bucket.reduce((n, p) => n + p.numel, 0);
      const padded = Math.ceil(numel / group.worldSize) * group.worldSize;
      this.buckets.push({ params: bucket, numel, padded, acc: null });
    }
  }

  /** After each pack (its gradients collected on `params`): adds them to the sum and drops them. */
  reducePack(): void {
    noGrad(() => {
      for (const b of this.buckets) {
        scope(() => {
          const parts = b.params.map((p) => p.grad?.reshape([-1]).to('float32') ?? zeros([p.numel]));
          if (b.padded > b.numel) parts.push(zeros([b.padded - b.numel]));
          if (!b.acc) b.acc = zeros([b.padded / this.group.worldSize]).keep();
          this.group.reduceScatter(ops.cat(parts, 0), b.acc, { accumulate: true });
          for (const p of b.params) p.grad = null;
        });
      }
    });
  }

  /** Before the step: every parameter's gradient is the sum over ranks and packs; the sums restart. */
  finish(): void {
    noGrad(() => {
      for (const b of this.buckets) {
        scope(() => {
          const acc = b.acc ?? zeros([b.padded / this.group.worldSize]);
          const whole = empty([b.padded]);
          this.group.allGatherInto(acc, whole);
          let off = 0;
          for (const p of b.params) {
            p.grad = whole.narrow(0, off, p.numel).view(p.shape).to(p.dtype).clone();
            off += p.numel;
          }
          acc.zero_();
        });
      }
    });
  }

  dispose(): void {
    for (const b of this.buckets) b.acc?.dispose();
  }
}
