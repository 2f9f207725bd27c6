// Normalisation layers: LayerNorm, RMSNorm (as Qwen2 computes it) and GroupNorm.
import { ones, ops, scope, zeros, type Tensor } from '../torch/index.js';
import { Module } from './module.js';
import type { FactoryOptions } from './linear.js';

/** (x - mean) / sqrt(var + eps) * w + b over the trailing normalizedShape dims (biased variance). */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(
    normalizedShape: number | number[],
    readonly eps = 1e-5,
    options: FactoryOptions & { elementwiseAffine?: boolean; bias?: boolean } = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    const affine = options.elementwiseAffine ?? true;
    const o = { dtype: options.dtype, device: options.device };
    this.weight = this.registerParameter('weight', affine ? ones(this.normalizedShape, o) : null);
    this.bias = this.registerParameter('bias', affine && options.bias !== false ? zeros(this.normalizedShape, o) : null);
  }

  forward(x: Tensor): Tensor {
    if (x.dtype === 'float32' || x.dtype === 'float64') return ops.layer_norm(x, this.normalizedShape, this.weight, this.bias, this.eps);
    // Half-precision inputs are normalised in float32 and rounded back once, as autocast runs
    // layer_norm (docs/precision.md section 2).
    return scope(() => {
      const f = (t: Tensor | null): Tensor | null => (t === null || t.dtype === 'float32' ? t : t.to('float32'));
      return ops.layer_norm(f(x)!, this.normalizedShape, f(this.weight), f(this.bias), this.eps).to(x.dtype);
    });
  }
}

/**
 * Root-mean-square norm over the last dim, as Qwen2RMSNorm: in float32,
 * x * rsqrt(mean(x^2) + eps), cast back to the input dtype, then times the weight.
 */
export class RMSNorm extends Module {
  readonly weight: Tensor;

  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
    options: FactoryOptions = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', ones([dim], { dtype: options.dtype, device: options.device }));
  }

  forward(x: Tensor): Tensor {
    // A scope frees the intermediates' handles now (autograd keeps what it saved).
    return scope(() => {
      const inputDtype = x.dtype;
      const h = inputDtype === 'float32' ? x : x.to('float32');
      const variance = h.pow(2).mean([-1], true);
      let y = h.mul(variance.add(this.eps).rsqrt());
      if (inputDtype !== 'float32') y = y.to(inputDtype);
      return this.weight.mul(y);
    });
  }
}

/** Normalises each of numGroups channel groups of [N, C, ...] over (C/groups, ...), then per-channel affine. */
export class GroupNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly eps = 1e-5,
    options: FactoryOptions & { affine?: boolean } = {},
  ) {
    super();
    if (numChannels % numGroups !== 0) throw new Error(`GroupNorm: ${numChannels} channels are not divisible by ${numGroups} groups`);
    const affine = options.affine ?? true;
    const o = { dtype: options.dtype, device: options.device };
    this.weight = this.registerParameter('weight', affine ? ones([numChannels], o) : null);
    this.bias = this.registerParameter('bias', affine ? zeros([numChannels], o) : null);
  }

  forward(x: Tensor): Tensor {
    return ops.group_norm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}
