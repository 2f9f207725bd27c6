// Activation modules and Dropout. Each forward is one libtorch op, so autograd comes for free.
import { ops, type Tensor } from '../torch/index.js';
import { Module } from './module.js';

/** GELU: x * Phi(x); approximate 'tanh' gives 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.gelu(x, this.approximate);
  }
}

/** x * sigmoid(x) (also called swish). */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return ops.silu(x);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return ops.tanh(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return ops.sigmoid(x);
  }
}

/**
 * In training mode, zeroes each element with probability p (from the global generator) and
 * scales the rest by 1/(1-p); in eval mode (or with p = 0) it returns its input unchanged.
 */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return ops.dropout(x, this.p, true);
  }
}
