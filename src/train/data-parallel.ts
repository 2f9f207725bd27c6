// The data-parallel helpers every stage shares (docs/method.md 2.7; docs/architecture.md
// "Training"): summing gradients over the ranks, giving every trainable parameter a gradient so
// all ranks reduce the same buckets, copying rank 0's weights, and gathering rows of numbers.
import * as torch from '../torch/index.js';
import { noGrad, ops, scope, type ProcessGroup, type Tensor } from '../torch/index.js';
import { sizeBoundedBuckets } from './shard/index.js';

/**
 * Sums ('sum') or averages ('avg', the default) gradients over the group with one all-reduce per
 * bucket: the gradients of several parameters are flattened into one tensor (up to
 * bucketElements), reduced, and copied back.
 */
export function allReduceGradients(params: Tensor[], group: ProcessGroup, o: { op?: 'sum' | 'avg'; bucketElements?: number } = {}): void {
  const bucketElements = o.bucketElements ?? 1 << 22;
  const op = o.op ?? 'avg';
  noGrad(() => {
    for (const bucket of sizeBoundedBuckets(params, bucketElements)) {
      scope(() => {
        const grads = bucket.map((p) => p.grad!);
        const flat = ops.cat(grads.map((g) => g.reshape([-1])), 0);
        group.allReduce(flat, op);
        let off = 0;
        for (const g of grads) {
          g.copy_(flat.narrow(0, off, g.numel).reshape(g.shape));
          off += g.numel;
        }
      });
    }
  });
}

/** Every trainable parameter gets a gradient (zeros where the batch did not reach it), as the
 * reference's FSDP dummy-ViT pass guarantees (docs/method.md 2.7): all ranks then reduce the same
 * buckets and AdamW treats every parameter alike whatever the batch held. */
export function ensureGradients(params: Tensor[]): void {
  noGrad(() => {
    for (const p of params) if (p.grad === null) p.grad = ops.zeros_like(p);
  });
}

/** Copies every parameter and buffer from rank 0. */
export function broadcastModule(model: { parameters(): Tensor[]; namedBuffers(): [string, Tensor][] }, group: ProcessGroup): void {
  noGrad(() => {
    group.broadcast(model.parameters(), 0);
    const bufs = model.namedBuffers().map(([, b]) => b);
    if (bufs.length) group.broadcast(bufs, 0);
  });
}

/** Every rank's rows in rank order (each rank gives the same number of rows of `cols` numbers). */
export function gatherRows(group: ProcessGroup | null, local: number[][], cols: number): number[][] {
  if (!group) return local;
  return torch.scope(() => {
    const t = torch.tensor(local.flat(), { dtype: 'float64', shape: [local.length, cols] });
    const parts = group.allGather(t);
    const rows: number[][] = [];
    for (const p of parts) {
      const d = p.dataSync() as Float64Array;
      for (let i = 0; i < d.length; i += cols) rows.push(Array.from(d.subarray(i, i + cols)));
    }
    return rows;
  });
}
