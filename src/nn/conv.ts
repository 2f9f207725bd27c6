// 2-D convolution (nn.Conv2d) with PyTorch's default initialisation.
import { empty, ops, type Tensor } from '../torch/index.js';
import { Module } from './module.js';
import { fanInAndFanOut, kaimingUniform_, uniform_ } from './init.js';
import type { FactoryOptions } from './linear.js';

export type Pair = number | [number, number];

export interface Conv2dOptions extends FactoryOptions {
  stride?: Pair;
  /** Zero padding per side, or 'same' / 'valid' as in PyTorch. */
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

const pair = (p: Pair): [number, number] => (typeof p === 'number' ? [p, p] : p);

/** x: [N, Cin, H, W] -> [N, Cout, H', W'] with weight [Cout, Cin/groups, kh, kw]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: Conv2dOptions = {},
  ) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = pair(options.stride ?? 1);
    const p = options.padding ?? 0;
    this.padding = typeof p === 'string' ? p : pair(p);
    this.dilation = pair(options.dilation ?? 1);
    this.groups = options.groups ?? 1;
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`Conv2d: channels ${inChannels} -> ${outChannels} are not divisible by groups ${this.groups}`);
    }
    const o = { dtype: options.dtype, device: options.device };
    const shape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    this.weight = this.registerParameter('weight', kaimingUniform_(empty(shape, o), { a: Math.sqrt(5) }));
    const bound = 1 / Math.sqrt(fanInAndFanOut(shape).fanIn);
    this.bias = this.registerParameter('bias', options.bias === false ? null : uniform_(empty([outChannels], o), -bound, bound));
  }

  forward(x: Tensor): Tensor {
    if (typeof this.padding === 'string') {
      return ops.conv2d(x, this.weight, this.bias, this.stride, this.padding, this.dilation, this.groups);
    }
    return ops.conv2d(x, this.weight, this.bias, this.stride, this.padding, this.dilation, this.groups);
  }
}
