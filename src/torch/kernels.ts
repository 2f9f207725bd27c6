// The hand-written decode kernels (docs/architecture.md "Native decode kernels"): the one place
// where the engine runs model-specific code rather than a libtorch operator. Decoding one token at
// batch 1 is bound by how fast the weights stream from memory, and ~15 ATen calls per layer from
// TS cost more than the arithmetic, so these two kernels do a whole step in one native call
// (native/src/mot_decode.cc, native/src/vector_kernels.cc). They are plain functions over tensors;
// whether a model uses them is the model's option (src/model/mot.ts, decodeKernels).
import { native } from './native.js';
import { Tensor } from './tensor.js';

/** One decoder layer's understanding-expert weights, in the order the kernel reads them. */
export interface DecodeLayerWeights {
  inputNorm: Tensor;
  q: Tensor;
  qBias: Tensor | null;
  k: Tensor;
  kBias: Tensor | null;
  v: Tensor;
  vBias: Tensor | null;
  o: Tensor;
  qNorm: Tensor;
  kNorm: Tensor;
  postNorm: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
}

/** The attention shape and constants of the decoder (docs/method.md 1.2, 1.6). */
export interface DecodeShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
}

/** The key/value row buffers of one layer's cache ([Hkv, capacity, D] each); row `length` is written. */
export interface DecodeCacheRows {
  keys: Tensor;
  values: Tensor;
}

/**
 * One token x [1, D] through every layer (RMSNorm, q/k/v with their norms, RoPE at `position`,
 * GQA attention over the `length` cached rows plus its own, SwiGLU MLP, residuals) and the final
 * norm; writes the token's key and value into row `length` of each layer's buffers. The same
 * operations as the layer-by-layer path of src/model/mot.ts, in float32 arithmetic.
 */
export function motDecodeStep(
  x: Tensor, layers: readonly DecodeLayerWeights[], cache: readonly DecodeCacheRows[], length: number, position: number,
  shape: DecodeShape, finalNorm: Tensor | null,
): Tensor {
  if (layers.length !== cache.length) throw new Error(`motDecodeStep: ${layers.length} layers but ${cache.length} cache buffers`);
  const ids = layers.map(weightIds);
  const { numHeads, numKvHeads, headDim, rmsNormEps, ropeTheta } = shape;
  return new Tensor(native.motDecodeStep(
    x.id, ids, cache.map((c) => c.keys.id), cache.map((c) => c.values.id), length, position, ropeTheta,
    numHeads, numKvHeads, headDim, rmsNormEps, finalNorm?.id ?? null,
  ));
}

/** One row of a batched decode step: its cache's row buffers per layer, cached length and RoPE position. */
export interface DecodeBatchRow {
  cache: readonly DecodeCacheRows[];
  length: number;
  position: number;
}

/**
 * motDecodeStep for B sequences at once: x [B, D], row b at rows[b].position attending over its
 * own cache of rows[b].length tokens (and writing its key and value at that row). Each weight
 * matrix is read once per step for all rows; row b's result equals motDecodeStep of row b alone
 * (the same sums, native/src/vector_kernels.cc gemm).
 */
export function motDecodeBatch(x: Tensor, layers: readonly DecodeLayerWeights[], rows: readonly DecodeBatchRow[], shape: DecodeShape, finalNorm: Tensor | null): Tensor {
  for (const r of rows) if (r.cache.length !== layers.length) throw new Error(`motDecodeBatch: ${layers.length} layers but a row with ${r.cache.length} cache buffers`);
  const { numHeads, numKvHeads, headDim, rmsNormEps, ropeTheta } = shape;
  return new Tensor(native.motDecodeBatch(
    x.id, layers.map(weightIds), rows.map((r) => r.cache.map((c) => c.keys.id)), rows.map((r) => r.cache.map((c) => c.values.id)),
    rows.map((r) => r.length), rows.map((r) => r.position), ropeTheta, numHeads, numKvHeads, headDim, rmsNormEps, finalNorm?.id ?? null,
  ));
}

/**
 * Whether the loaded addon has motDecodeBatch: an addon built before it (a stale native/build)
 * lacks it, and decodeBatch then steps each row alone (the same results).
 */
export function hasDecodeBatch(): boolean {
  return typeof (native as { motDecodeBatch?: unknown }).motDecodeBatch === 'function';
}

function weightIds(w: DecodeLayerWeights): (number | null)[] {
  return [
    w.inputNorm.id, w.q.id, w.qBias?.id ?? null, w.k.id, w.kBias?.id ?? null, w.v.id, w.vBias?.id ?? null, w.o.id,
    w.qNorm.id, w.kNorm.id, w.postNorm.id, w.gate.id, w.up.id, w.down.id,
  ];
}

/**
 * x [N, in] @ weight [out, in]^T (+ bias) for a few rows (one decoded token, or a batched step's): float32 or bfloat16 weights on the CPU. Each
 * weight row is read as one contiguous stream, faster from memory than BLAS's sgemv for one row
 * (bench/README.md, model section).
 */
export function linearVector(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  return new Tensor(native.linearVector(x.id, weight.id, bias?.id ?? null));
}
