// Parameter initializers (torch.nn.init), in place and without recording gradients. Random
// ones draw from the global generator, so torch.manualSeed(s) makes them repeat exactly.
import { noGrad, scope, type Tensor } from '../torch/index.js';

let skipping = false;

/**
 * Runs fn with every initializer below a no-op (tensors keep their uninitialised memory), for
 * modules whose tensors are replaced right after they are built (src/nn/share.ts).
 */
export function withoutInit<T>(fn: () => T): T {
  const saved = skipping;
  skipping = true;
  try {
    return fn();
  } finally {
    skipping = saved;
  }
}

// In-place ops return a new handle on the same tensor; the scope frees that handle and the
// initializers return the tensor they were given.
function inPlace(t: Tensor, fn: () => unknown): Tensor {
  if (skipping) return t;
  noGrad(() => scope(() => {
    fn();
  }));
  return t;
}

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv2d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
  }
}

/** fan_in and fan_out of a weight: [out, in, ...kernel] (torch's _calculate_fan_in_and_fan_out). */
export function fanInAndFanOut(shape: number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fan in and fan out need at least 2 dimensions, got shape [${shape.join(', ')}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  return inPlace(t, () => t.uniform_(a, b));
}
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return inPlace(t, () => t.normal_(mean, std));
}
export function constant_(t: Tensor, value: number): Tensor {
  return inPlace(t, () => t.fill_(value));
}
export function zeros_(t: Tensor): Tensor {
  return inPlace(t, () => t.zero_());
}
export function ones_(t: Tensor): Tensor {
  return inPlace(t, () => t.fill_(1));
}

export interface KaimingOptions {
  /** Negative slope of the leaky ReLU after this layer (sqrt(5) gives nn.Linear's default). */
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  const fan = (o.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  return calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(fan);
}

/** U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al.). */
export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, o);
  return uniform_(t, -bound, bound);
}
export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, o));
}

/** U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -a, a);
}
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}
