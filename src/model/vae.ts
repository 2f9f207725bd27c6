// The FLUX autoencoder (docs/method.md 1.4), with the key names of FLUX's `ae.safetensors`
// (encoder.down.{i}.block.{j}.norm1, encoder.mid.attn_1.q, decoder.up.{i}.upsample.conv, ...).
// Frozen everywhere: encode samples the posterior (not its mean) and applies scale and shift.
import { ops, randn, scaledDotProductAttention, scope, type Tensor } from '../torch/index.js';
import { Conv2d, GroupNorm, Module, ModuleList } from '../nn/index.js';
import type { VaeConfig } from './config.js';

// x * sigmoid(x) exactly as FLUX writes it: libtorch's fused silu rounds differently in fp32, and
// the decoder's depth amplifies that to ~2e-5 against the published code.
const swish = (x: Tensor): Tensor => scope(() => x.mul(x.sigmoid()));

/** GroupNorm -> swish -> conv3x3 -> GroupNorm -> swish -> conv3x3, plus a 1x1 shortcut when widths differ. */
export class ResnetBlock extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly nin_shortcut: Conv2d | null;
  constructor(inCh: number, outCh: number, groups: number) {
    super();
    this.norm1 = this.registerModule('norm1', new GroupNorm(groups, inCh, 1e-6));
    this.conv1 = this.registerModule('conv1', new Conv2d(inCh, outCh, 3, { padding: 1 }));
    this.norm2 = this.registerModule('norm2', new GroupNorm(groups, outCh, 1e-6));
    this.conv2 = this.registerModule('conv2', new Conv2d(outCh, outCh, 3, { padding: 1 }));
    this.nin_shortcut = inCh !== outCh ? this.registerModule('nin_shortcut', new Conv2d(inCh, outCh, 1)) : null;
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      let h = this.conv1.forward(swish(this.norm1.forward(x)));
      h = this.conv2.forward(swish(this.norm2.forward(h)));
      return (this.nin_shortcut ? this.nin_shortcut.forward(x) : x).add(h);
    });
  }
}

/** Single-head self-attention over the h*w pixels with 1x1-conv q, k, v and proj_out. */
export class AttnBlock extends Module {
  readonly norm: GroupNorm;
  readonly q: Conv2d;
  readonly k: Conv2d;
  readonly v: Conv2d;
  readonly proj_out: Conv2d;
  constructor(ch: number, groups: number) {
    super();
    this.norm = this.registerModule('norm', new GroupNorm(groups, ch, 1e-6));
    this.q = this.registerModule('q', new Conv2d(ch, ch, 1));
    this.k = this.registerModule('k', new Conv2d(ch, ch, 1));
    this.v = this.registerModule('v', new Conv2d(ch, ch, 1));
    this.proj_out = this.registerModule('proj_out', new Conv2d(ch, ch, 1));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [b, c, H, W] = x.shape as [number, number, number, number];
      const h = this.norm.forward(x);
      // [b, c, H, W] -> [b, 1, H*W, c]
      const seq = (t: Tensor): Tensor => t.reshape([b, 1, c, H * W]).transpose(2, 3);
      const o = scaledDotProductAttention(seq(this.q.forward(h)), seq(this.k.forward(h)), seq(this.v.forward(h)), null);
      const back = o.transpose(2, 3).reshape([b, c, H, W]);
      return x.add(this.proj_out.forward(back));
    });
  }
}

/** Stride-2 3x3 conv after padding (0, 1, 0, 1): right and bottom only, as FLUX. */
class Downsample extends Module {
  readonly conv: Conv2d;
  constructor(ch: number) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(ch, ch, 3, { stride: 2, padding: 0 }));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.conv.forward(ops.constant_pad_nd(x, [0, 1, 0, 1], 0)));
  }
}

/** Nearest-neighbour 2x upsampling, then a 3x3 conv. */
class Upsample extends Module {
  readonly conv: Conv2d;
  constructor(ch: number) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(ch, ch, 3, { padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [, , H, W] = x.shape as number[];
      return this.conv.forward(ops.upsample_nearest2d(x, [H! * 2, W! * 2]));
    });
  }
}

/** One resolution level: `block` (ResnetBlocks) and an optional down/upsample. */
class Level extends Module {
  readonly block: ModuleList<ResnetBlock>;
  resample: Downsample | Upsample | null = null;
  constructor(blocks: ResnetBlock[]) {
    super();
    this.block = this.registerModule('block', new ModuleList(blocks));
  }
  setResample(name: 'downsample' | 'upsample', m: Downsample | Upsample): void {
    this.resample = this.registerModule(name, m);
  }
}

class Mid extends Module {
  readonly block_1: ResnetBlock;
  readonly attn_1: AttnBlock;
  readonly block_2: ResnetBlock;
  constructor(ch: number, groups: number) {
    super();
    this.block_1 = this.registerModule('block_1', new ResnetBlock(ch, ch, groups));
    this.attn_1 = this.registerModule('attn_1', new AttnBlock(ch, groups));
    this.block_2 = this.registerModule('block_2', new ResnetBlock(ch, ch, groups));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.block_2.forward(this.attn_1.forward(this.block_1.forward(x))));
  }
}

/** Image [B, 3, H, W] -> moments [B, 2*z, H/f, W/f] (mean, logvar). */
export class Encoder extends Module {
  readonly conv_in: Conv2d;
  readonly down: ModuleList<Level>;
  readonly mid: Mid;
  readonly norm_out: GroupNorm;
  readonly conv_out: Conv2d;
  constructor(c: VaeConfig) {
    super();
    const g = c.normGroups;
    this.conv_in = this.registerModule('conv_in', new Conv2d(c.inChannels, c.ch, 3, { padding: 1 }));
    const inMult = [1, ...c.chMult];
    const levels: Level[] = [];
    let blockIn = c.ch;
    c.chMult.forEach((mult, i) => {
      blockIn = c.ch * inMult[i]!;
      const blockOut = c.ch * mult;
      const blocks: ResnetBlock[] = [];
      for (let j = 0; j < c.numResBlocks; j++) {
        blocks.push(new ResnetBlock(blockIn, blockOut, g));
        blockIn = blockOut;
      }
      const level = new Level(blocks);
      if (i !== c.chMult.length - 1) level.setResample('downsample', new Downsample(blockIn));
      levels.push(level);
    });
    this.down = this.registerModule('down', new ModuleList(levels));
    this.mid = this.registerModule('mid', new Mid(blockIn, g));
    this.norm_out = this.registerModule('norm_out', new GroupNorm(g, blockIn, 1e-6));
    this.conv_out = this.registerModule('conv_out', new Conv2d(blockIn, 2 * c.zChannels, 3, { padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      let h = this.conv_in.forward(x);
      for (const level of this.down) {
        for (const b of level.block) h = b.forward(h);
        if (level.resample) h = level.resample.forward(h);
      }
      h = this.mid.forward(h);
      return this.conv_out.forward(swish(this.norm_out.forward(h)));
    });
  }
}

/** Latent [B, z, h, w] -> image [B, 3, h*f, w*f]. */
export class Decoder extends Module {
  readonly conv_in: Conv2d;
  readonly mid: Mid;
  readonly up: ModuleList<Level>;
  readonly norm_out: GroupNorm;
  readonly conv_out: Conv2d;
  constructor(c: VaeConfig) {
    super();
    const g = c.normGroups;
    const n = c.chMult.length;
    let blockIn = c.ch * c.chMult[n - 1]!;
    this.conv_in = this.registerModule('conv_in', new Conv2d(c.zChannels, blockIn, 3, { padding: 1 }));
    this.mid = this.registerModule('mid', new Mid(blockIn, g));
    // up[i] is built from the deepest level down, but indexed by level, as FLUX inserts at 0
    const levels: Level[] = new Array(n);
    for (let i = n - 1; i >= 0; i--) {
      const blockOut = c.ch * c.chMult[i]!;
      const blocks: ResnetBlock[] = [];
      for (let j = 0; j < c.numResBlocks + 1; j++) {
        blocks.push(new ResnetBlock(blockIn, blockOut, g));
        blockIn = blockOut;
      }
      const level = new Level(blocks);
      if (i !== 0) level.setResample('upsample', new Upsample(blockIn));
      levels[i] = level;
    }
    this.up = this.registerModule('up', new ModuleList(levels));
    this.norm_out = this.registerModule('norm_out', new GroupNorm(g, blockIn, 1e-6));
    this.conv_out = this.registerModule('conv_out', new Conv2d(blockIn, c.outChannels, 3, { padding: 1 }));
  }
  forward(z: Tensor): Tensor {
    return scope(() => {
      let h = this.mid.forward(this.conv_in.forward(z));
      for (let i = this.up.length - 1; i >= 0; i--) {
        const level = this.up.at(i);
        for (const b of level.block) h = b.forward(h);
        if (level.resample) h = level.resample.forward(h);
      }
      return this.conv_out.forward(swish(this.norm_out.forward(h)));
    });
  }
}

/** The whole autoencoder (keys `encoder.*`, `decoder.*` as in FLUX's ae.safetensors). */
export class AutoEncoder extends Module {
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  constructor(readonly config: VaeConfig) {
    super();
    this.encoder = this.registerModule('encoder', new Encoder(config));
    this.decoder = this.registerModule('decoder', new Decoder(config));
  }

  /** Pixels per latent pixel. */
  get downsample(): number {
    return 2 ** (this.config.chMult.length - 1);
  }

  /**
   * Image in [-1, 1], [B, 3, H, W] -> z = scale * (sample - shift), where sample = mean +
   * exp(logvar / 2) * eps is drawn from the posterior (docs/method.md 1.4: not its mean).
   * `sample: false` takes the mean instead (for tests and deterministic encodes).
   */
  encode(x: Tensor, options: { sample?: boolean } = {}): Tensor {
    return scope(() => {
      const moments = this.encoder.forward(x);
      const [mean, logvar] = moments.chunk(2, 1) as [Tensor, Tensor];
      let z = mean;
      if (options.sample ?? true) z = mean.add(logvar.mul(0.5).exp().mul(randn(mean.shape, { dtype: mean.dtype })));
      return z.sub(this.config.shiftFactor).mul(this.config.scaleFactor);
    });
  }

  /** z -> decoder(z / scale + shift), in the decoder's [-1, 1] range. */
  decode(z: Tensor): Tensor {
    return scope(() => this.decoder.forward(z.div(this.config.scaleFactor).add(this.config.shiftFactor)));
  }

  /** Decoded image mapped to [0, 1] and clamped (x * 0.5 + 0.5, as the inferencer). */
  decodeToUnit(z: Tensor): Tensor {
    return scope(() => this.decode(z).mul(0.5).add(0.5).clamp(0, 1));
  }
}
