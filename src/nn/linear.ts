// Linear and Embedding layers (nn.Linear, nn.Embedding), with PyTorch's default initialisation.
import { empty, noGrad, ops, scope, type Device, type DType, type Tensor } from '../torch/index.js';
import { Module } from './module.js';
import { kaimingUniform_, normal_, uniform_ } from './init.js';
import type { LoRAAdapter } from './lora.js';

export interface FactoryOptions {
  dtype?: DType;
  device?: Device;
}

/**
 * y = x W^T + b, W: [out, in]. Initialised as nn.Linear: W ~ kaiming-uniform with a = sqrt(5),
 * i.e. U(-1/sqrt(in), 1/sqrt(in)), and b ~ U(-1/sqrt(in), 1/sqrt(in)). A LoRA adapter, when
 * attached (lora.ts), adds its low-rank update here; its weights are children of this module.
 */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  /** The attached LoRA adapter, if any (see applyLoRA). */
  lora: LoRAAdapter | null = null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: FactoryOptions & { bias?: boolean } = {},
  ) {
    super();
    const o = { dtype: options.dtype, device: options.device };
    this.weight = this.registerParameter('weight', kaimingUniform_(empty([outFeatures, inFeatures], o), { a: Math.sqrt(5) }));
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.bias = this.registerParameter('bias', options.bias === false ? null : uniform_(empty([outFeatures], o), -bound, bound));
  }

  forward(x: Tensor): Tensor {
    const y = ops.linear(x, this.weight, this.bias);
    return this.lora ? this.lora.addTo(y, x) : y;
  }
}

/** A lookup table [num, dim], initialised N(0, 1) with the padding row (if any) zero. */
export class Embedding extends Module {
  readonly weight: Tensor;
  readonly paddingIdx: number | null;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: FactoryOptions & { paddingIdx?: number } = {},
  ) {
    super();
    let pad = options.paddingIdx ?? null;
    if (pad !== null) {
      if (pad < -numEmbeddings || pad >= numEmbeddings) throw new RangeError(`Embedding: paddingIdx ${pad} out of range for ${numEmbeddings} rows`);
      if (pad < 0) pad += numEmbeddings;
    }
    this.paddingIdx = pad;
    const w = normal_(empty([numEmbeddings, embeddingDim], { dtype: options.dtype, device: options.device }));
    if (pad !== null) noGrad(() => scope(() => void w.select(0, pad).zero_()));
    this.weight = this.registerParameter('weight', w);
  }

  /** Rows of the table for integer ids of any shape: [...ids.shape, dim]. */
  forward(ids: Tensor): Tensor {
    return ops.embedding(this.weight, ids, this.paddingIdx ?? -1);
  }
}
