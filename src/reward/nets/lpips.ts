// LPIPS (Zhang et al. 2018, the `lpips` package, net='alex', version 0.1) as the diversity
// distance of docs/method.md 3.4. The backbone is torchvision's AlexNet `features` (convs at indices
// 0, 3, 6, 8, 10; ReLU after each; 3x3/2 max-pools after the first two), tapped after each ReLU.
// Per tap: unit-normalise across channels, squared difference, the 1x1 linear head
// (lin{i}.model.1.weight, no bias; model.0 is the Dropout), spatial mean; LPIPS = sum over taps.
// Inputs in [-1, 1] first pass the package's ScalingLayer ((x - shift) / scale).
//
// Weights: the heads are the package's `alex.pth` and the backbone torchvision's AlexNet; given as
// safetensors, either in one file or in several, with the keys `features.{0,3,6,8,10}.{weight,bias}`
// and `lin{0..4}.model.1.weight`. The names of a saved `lpips.LPIPS` module
// (`net.slice{k}.{j}.*`, `scaling_layer.*`) are accepted too. Channel counts come from the
// weights, so small test files work.
import { noGrad, ops, safetensors, scope, tensor, type Tensor } from '../../torch/index.js';
import { Conv2d, Module, ModuleList } from '../../nn/index.js';
import { unitTensors, type ImageBatch } from './images.js';

/** AlexNet conv layers: torchvision index, kernel, stride, padding. */
const ALEX_CONVS = [
  { index: 0, kernel: 11, stride: 4, padding: 2 },
  { index: 3, kernel: 5, stride: 1, padding: 2 },
  { index: 6, kernel: 3, stride: 1, padding: 1 },
  { index: 8, kernel: 3, stride: 1, padding: 1 },
  { index: 10, kernel: 3, stride: 1, padding: 1 },
] as const;

const SHIFT = [-0.03, -0.088, -0.188];
const SCALE = [0.458, 0.448, 0.45];

/** The `features` part of torchvision AlexNet that LPIPS taps. */
class AlexFeatures extends Module {
  readonly convs: Conv2d[] = [];
  constructor(channels: number[]) {
    super();
    let cin = 3;
    ALEX_CONVS.forEach((spec, i) => {
      const conv = new Conv2d(cin, channels[i]!, spec.kernel, { stride: spec.stride, padding: spec.padding });
      this.convs.push(this.registerModule(String(spec.index), conv));
      cin = channels[i]!;
    });
  }
  /** The five post-ReLU activations. */
  forward(x: Tensor): Tensor[] {
    const taps: Tensor[] = [];
    let h = x;
    this.convs.forEach((conv, i) => {
      if (i === 1 || i === 2) h = ops.max_pool2d(h, [3, 3], [2, 2], [0, 0], [1, 1], false);
      h = ops.relu(conv.forward(h));
      taps.push(h);
    });
    return taps;
  }
}

/** NetLinLayer: Dropout (index 0, no weights) then a 1x1 conv without bias (index 1). */
class NetLin extends Module {
  readonly model: ModuleList<Module>;
  constructor(cin: number) {
    super();
    this.model = this.registerModule('model', new ModuleList<Module>([new Module(), new Conv2d(cin, 1, 1, { bias: false })]));
  }
  forward(x: Tensor): Tensor {
    return (this.model.at(1) as Conv2d).forward(x);
  }
}

export class LpipsModel extends Module {
  readonly features: AlexFeatures;
  readonly lins: NetLin[] = [];
  constructor(readonly channels: number[]) {
    super();
    if (channels.length !== 5) throw new Error(`LPIPS: AlexNet has 5 taps, got ${channels.length} channel counts`);
    this.features = this.registerModule('features', new AlexFeatures(channels));
    channels.forEach((c, i) => this.lins.push(this.registerModule(`lin${i}`, new NetLin(c))));
  }

  /** LPIPS per pair: a, b [B, 3, H, W] in [-1, 1] -> [B]. */
  forward(a: Tensor, b: Tensor): Tensor {
    return scope(() => {
      const shift = tensor(SHIFT, { shape: [1, 3, 1, 1] });
      const scale = tensor(SCALE, { shape: [1, 3, 1, 1] });
      const fa = this.features.forward(a.sub(shift).div(scale));
      const fb = this.features.forward(b.sub(shift).div(scale));
      let total: Tensor | null = null;
      for (let k = 0; k < 5; k++) {
        const d = unitChannels(fa[k]!).sub(unitChannels(fb[k]!)).pow(2);
        const v = this.lins[k]!.forward(d).mean([2, 3]).reshape([-1]);
        total = total === null ? v : total.add(v);
      }
      return total!;
    });
  }
}

/** x / (||x||_channels + 1e-10), lpips.normalize_tensor. */
function unitChannels(x: Tensor): Tensor {
  return scope(() => x.div(x.pow(2).sum([1], true).sqrt().add(1e-10)));
}

/** Maps the accepted key spellings onto this module's names. */
function canonicalKey(key: string): string | null {
  if (key.startsWith('scaling_layer.')) return null; // constants, fixed above
  if (key.startsWith('classifier.')) return null; // torchvision AlexNet head, unused
  const m = /^net\.slice(\d)\.(\d+)\.(weight|bias)$/.exec(key);
  if (m) return `features.${m[2]}.${m[3]}`;
  return key;
}

/**
 * Loads LPIPS-alex from one or more safetensors files (e.g. the converted torchvision AlexNet and
 * the converted alex.pth), strictly: every backbone and head key must be present exactly once.
 */
export function loadLpipsModel(paths: string | readonly string[]): LpipsModel {
  const files = typeof paths === 'string' ? [paths] : [...paths];
  return scope(() => {
    const state = new Map<string, Tensor>();
    for (const f of files) {
      for (const [k, t] of safetensors.load(f).tensors) {
        const key = canonicalKey(k);
        if (key === null) continue;
        if (state.has(key)) throw new Error(`LPIPS: key '${key}' given twice (${files.join(', ')})`);
        state.set(key, t);
      }
    }
    const channels = ALEX_CONVS.map((spec) => {
      const w = state.get(`features.${spec.index}.weight`);
      if (!w) throw new Error(`LPIPS (${files.join(', ')}): missing key features.${spec.index}.weight`);
      return w.shape[0]!;
    });
    const model = new LpipsModel(channels);
    try {
      model.loadStateDict(state);
    } catch (e) {
      model.dispose();
      if (e instanceof Error) e.message = `${files.join(', ')}: ${e.message}`;
      throw e;
    }
    return model.eval();
  });
}

/** A perceptual distance between images of two batches, pair by pair. */
export interface PairDistance {
  readonly id: string;
  /** distance(a_i, b_i) for each i. */
  distance(a: ImageBatch, b: ImageBatch): number[];
}

/** LPIPS-alex as a PairDistance (full-resolution images, as the reference; b is resized to a's size if needed). */
export class LpipsDistance implements PairDistance {
  constructor(readonly model: LpipsModel, readonly id = 'lpips-alex-v0.1') {}

  static load(paths: string | readonly string[], id = 'lpips-alex-v0.1'): LpipsDistance {
    return new LpipsDistance(loadLpipsModel(paths), id);
  }

  distance(a: ImageBatch, b: ImageBatch): number[] {
    return noGrad(() => scope(() => {
      const ta = unitTensors(a);
      const tb = unitTensors(b);
      if (ta.length !== tb.length) throw new Error(`LPIPS: ${ta.length} vs ${tb.length} images`);
      return ta.map((x, i) => {
        let y = tb[i]!;
        if (y.shape[2] !== x.shape[2] || y.shape[3] !== x.shape[3]) {
          y = ops.upsample_bilinear2d(y, [x.shape[2]!, x.shape[3]!], false, null);
        }
        return this.model.forward(x.mul(2).sub(1), y.mul(2).sub(1)).item();
      });
    }));
  }

  dispose(): void {
    this.model.dispose();
  }
}
