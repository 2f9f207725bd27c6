// A pre-backward hook: an identity node on a layer's output whose backward runs `fn` before any
// of the layer's own backward nodes (they all need the gradient it hands on). Fully sharded
// data parallel gathers the layer's weights there (docs/sharding.md 4). Built on the activation
// checkpoint node (src/torch/checkpoint.ts): its recompute callback runs on the JS thread, so
// `fn` may call collectives.
import { checkpoint, isGradEnabled, type Tensor } from '../../torch/index.js';

/** `t` unchanged (a view of it), with `fn()` run when backward reaches it. */
export function beforeBackward(t: Tensor, fn: () => void): Tensor {
  if (!isGradEnabled() || !t.requiresGrad) return t;
  return checkpoint((xs) => {
    // the recompute (backward) runs with gradients on; the forward without
    if (isGradEnabled()) fn();
    return xs[0]!;
  }, [t], { preserveRng: false }) as Tensor;
}
