// The two-layer MLP of Hugging Face vision/text encoders (CLIP, SigLIP, BLIP, DINOv2), and the
// activations their configs name in `hidden_act`.
import { ops, scope, type Tensor } from '../torch/index.js';
import { Linear } from './linear.js';
import { Module } from './module.js';

/** The activation transformers' ACT2FN calls `name` (the ones these checkpoints use). */
export function activation(name: string, x: Tensor): Tensor {
  switch (name) {
    case 'quick_gelu': return scope(() => x.mul(ops.sigmoid(x.mul(1.702))));
    case 'gelu': return ops.gelu(x, 'none');
    case 'gelu_new':
    case 'gelu_pytorch_tanh': return ops.gelu(x, 'tanh');
    case 'relu': return ops.relu(x);
    default: throw new Error(`unsupported hidden_act '${name}'`);
  }
}

/** fc1 -> activation -> fc2 (keys `fc1.*`, `fc2.*`). */
export class FcMlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(hidden: number, intermediate: number, readonly act: string) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(hidden, intermediate));
    this.fc2 = this.registerModule('fc2', new Linear(intermediate, hidden));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.fc2.forward(activation(this.act, this.fc1.forward(x))));
  }
}
