// Scaled dot-product attention on every supported libtorch (docs/engine.md, "libtorch versions").
// libtorch 1.13 has only the private aten::_scaled_dot_product_attention (query, key, value,
// attn_mask, dropout_p, need_attn_weights, is_causal) -> (output, weights); 2.x replaced it by
// aten::scaled_dot_product_attention (query, key, value, attn_mask, dropout_p, is_causal, *,
// scale, enable_gqa) -> output, with fused CPU kernels. Neither is in the version-stable
// generated binding, so the one the addon's libtorch has is chosen here, once.
import { native } from './native.js';
import { Tensor } from './tensor.js';

let opId: number | undefined;
let legacy = false;

function resolve(): number {
  try {
    opId = native.opId('aten::scaled_dot_product_attention', '');
  } catch {
    opId = native.opId('aten::_scaled_dot_product_attention', '');
    legacy = true;
  }
  return opId;
}

/**
 * softmax(q k^T / sqrt(d) + mask) v over the last two dimensions of [..., L, d] tensors; `mask`
 * is additive (floating) or keep-where-true (bool), broadcast to [..., Lq, Lk].
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null = null): Tensor {
  const id = opId ?? resolve();
  if (!legacy) return new Tensor(native.call(id, q.id, k.id, v.id, mask?.id ?? null, 0, false) as number);
  const [out, weights] = native.call(id, q.id, k.id, v.id, mask?.id ?? null, 0, false, false) as [number, number | null];
  if (weights !== null) native.dispose(weights);
  return new Tensor(out);
}
