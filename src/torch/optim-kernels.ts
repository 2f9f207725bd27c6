// The fused optimizer kernels (native/src/fused_optim.cc, docs/engine.md "Fused optimizer
// step"): an AdamW update, a global gradient 2-norm and a multi-tensor scale, each one native
// call over a whole list of tensors and one parallel region over all of their elements. They take
// contiguous float32 CPU tensors; for anything else they do nothing and say so (false / null),
// and the caller uses the multi-tensor operators. src/nn/optim.ts is their user.
import { native, type AdamWConstants } from './native.js';
import type { Tensor } from './tensor.js';

/**
 * The constants of one AdamW step as doubles (each rounded to float32 natively, as libtorch
 * rounds the Scalar of the operator it replaces): the update is, per element,
 *   g *= gradScale;  p *= decay;  m = beta1 m + gradWeight1 g;  v = beta2 v + gradWeight2 g^2;
 *   p += negStepSize * m / (sqrt(v) / biasCorrection2Sqrt + eps).
 */
export type { AdamWConstants };

const ids = (ts: readonly Tensor[]): number[] => ts.map((t) => t.id);

/**
 * One AdamW update in place of params, expAvgs and expAvgSqs from grads (read only). False, with
 * nothing changed, when a tensor is not contiguous float32 on the CPU, the lists differ in length
 * or shapes, or tensors overlap in memory.
 */
export function adamwStep(params: readonly Tensor[], grads: readonly Tensor[], expAvgs: readonly Tensor[], expAvgSqs: readonly Tensor[], constants: AdamWConstants): boolean {
  return native.adamwStep(ids(params), ids(grads), ids(expAvgs), ids(expAvgSqs), constants);
}

/**
 * The 2-norm of all tensors together, as norm(stack(_foreach_norm(ts, 2)), 2) gives it (the same
 * kernels, the same bits) but as one call; null when one is not contiguous float32 on the CPU or
 * the list is empty.
 */
export function gradNorm2(tensors: readonly Tensor[]): number | null {
  return native.gradNorm2(ids(tensors));
}

/** t *= scale for every tensor (as _foreach_mul_ by a Scalar); false, with nothing changed, where it does not apply. */
export function scaleTensors(tensors: readonly Tensor[], scale: number): boolean {
  return native.scaleTensors(ids(tensors), scale);
}
