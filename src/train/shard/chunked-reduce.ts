// A unit's gradient reduce-scattered in pieces (docs/sharding.md 2): piece c sends,
// for every rank r, elements [r*S + c0, r*S + c0 + k) of the unit's flat gradient, read straight
// from the parameters' gradients (no whole-unit concatenation), and adds the received sums onto
// elements [c0, c0 + k) of this rank's float32 chunk. Each element still gets the same additions
// in rank order as one whole-unit call, so the sums are the same to the bit; the transient memory
// is a send and a receive buffer of `pieceElements` instead of two copies of the whole unit.
import { ops, scope, type Tensor } from '../../torch/index.js';

/** Elements per piece's send buffer (all ranks' slices together): 16 MiB in float32. */
export const REDUCE_PIECE_ELEMENTS = 1 << 22;

/** A flat buffer described by its parts: part i holds elements [offsets[i], offsets[i] + numel). */
export interface FlatParts {
  parts: Tensor[];
  offsets: number[];
}

/** Elements [start, start + len) of the concatenation of the parts, as views of them (no copy). */
export function sliceOfParts(f: FlatParts, start: number, len: number): Tensor[] {
  const out: Tensor[] = [];
  const end = start + len;
  f.parts.forEach((p, i) => {
    const lo = f.offsets[i]!;
    const hi = lo + p.numel;
    const a = Math.max(lo, start);
    const b = Math.min(hi, end);
    if (a < b) out.push(p.narrow(0, a - lo, b - a));
  });
  return out;
}

/**
 * Reduce-scatters the flat gradient `f` (world x `acc.numel` elements, 1-D parts) onto `acc`
 * (float32) piece by piece; `scatter(send, out)` is one accumulating reduce-scatter of a
 * piece (the shard group's, or hybrid sharding's chain, docs/sharding.md 5).
 */
export function reduceScatterInPieces(f: FlatParts, world: number, acc: Tensor, scatter: (send: Tensor, out: Tensor) => void, pieceElements = REDUCE_PIECE_ELEMENTS): void {
  if (!Number.isInteger(pieceElements) || pieceElements < 1) throw new RangeError(`reduceScatterInPieces: pieceElements must be an integer >= 1, got ${pieceElements}`);
  const size = acc.numel;
  const k = Math.max(1, Math.floor(pieceElements / world));
  for (let c0 = 0; c0 < size; c0 += k) {
    const len = Math.min(k, size - c0);
    scope(() => {
      const slices: Tensor[] = [];
      for (let r = 0; r < world; r++) slices.push(...sliceOfParts(f, r * size + c0, len));
      const cat = ops.cat(slices, 0);
      scatter(cat.dtype === 'float32' ? cat : cat.to('float32'), acc.narrow(0, c0, len));
    });
  }
}
