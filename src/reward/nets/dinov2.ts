// DINOv2 (Oquab et al.) in the Hugging Face `transformers` layout (Dinov2Model), sized from
// config.json: conv patch embedding, CLS token, learned positions interpolated bicubically to the
// input grid (transformers' interpolate_pos_encoding, size-based form), pre-LN blocks with layer
// scale, final layernorm. The identity feature of docs/method.md 3.4 is the CLS token of
// last_hidden_state (after the final layernorm), L2-normalised. The image pipeline is the default
// processor's: shortest side 256, centre crop 224, ImageNet mean/std (bicubic on tensors here,
// without PIL's antialiasing).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad, ops, safetensors, scope, zeros, type Tensor } from '../../torch/index.js';
import { Conv2d, FcMlp, LayerNorm, Linear, Module, ModuleList } from '../../nn/index.js';
import { IMAGENET_MEAN, IMAGENET_STD, l2normalize, preprocessBatch, type ImageBatch } from './images.js';
import type { ImageEmbedder } from './clip.js';
import { num, type HfConfigJson } from './hf-config.js';

export interface Dinov2Config {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  mlpRatio: number;
  patchSize: number;
  imageSize: number;
  numChannels: number;
  hiddenAct: string;
  layerNormEps: number;
  qkvBias: boolean;
}

/** Reads a transformers Dinov2Config (config.json) with transformers' defaults. */
export function parseDinov2Config(j: HfConfigJson): Dinov2Config {
  if (j.use_swiglu_ffn === true) throw new Error('DINOv2: use_swiglu_ffn (the giant model) is not supported');
  return {
    hiddenSize: num(j, 'hidden_size', 768),
    numLayers: num(j, 'num_hidden_layers', 12),
    numHeads: num(j, 'num_attention_heads', 12),
    mlpRatio: num(j, 'mlp_ratio', 4),
    patchSize: num(j, 'patch_size', 14),
    imageSize: num(j, 'image_size', 518),
    numChannels: num(j, 'num_channels', 3),
    hiddenAct: typeof j.hidden_act === 'string' ? j.hidden_act : 'gelu',
    layerNormEps: num(j, 'layer_norm_eps', 1e-6),
    qkvBias: j.qkv_bias !== false,
  };
}

class Dinov2SelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  constructor(readonly c: Dinov2Config) {
    super();
    const o = { bias: c.qkvBias };
    this.query = this.registerModule('query', new Linear(c.hiddenSize, c.hiddenSize, o));
    this.key = this.registerModule('key', new Linear(c.hiddenSize, c.hiddenSize, o));
    this.value = this.registerModule('value', new Linear(c.hiddenSize, c.hiddenSize, o));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [B, T, D] = x.shape as [number, number, number];
      const H = this.c.numHeads;
      const d = D / H;
      const heads = (t: Tensor): Tensor => t.reshape([B, T, H, d]).transpose(1, 2);
      const q = heads(this.query.forward(x));
      const k = heads(this.key.forward(x));
      const v = heads(this.value.forward(x));
      const p = q.matmul(k.transpose(-1, -2)).div(Math.sqrt(d)).softmax(-1);
      return p.matmul(v).transpose(1, 2).reshape([B, T, D]);
    });
  }
}

class Dinov2SelfOutput extends Module {
  readonly dense: Linear;
  constructor(c: Dinov2Config) {
    super();
    this.dense = this.registerModule('dense', new Linear(c.hiddenSize, c.hiddenSize));
  }
}

class Dinov2Attention extends Module {
  readonly attention: Dinov2SelfAttention;
  readonly output: Dinov2SelfOutput;
  constructor(c: Dinov2Config) {
    super();
    this.attention = this.registerModule('attention', new Dinov2SelfAttention(c));
    this.output = this.registerModule('output', new Dinov2SelfOutput(c));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.output.dense.forward(this.attention.forward(x)));
  }
}

class Dinov2LayerScale extends Module {
  readonly lambda1: Tensor;
  constructor(c: Dinov2Config) {
    super();
    this.lambda1 = this.registerParameter('lambda1', zeros([c.hiddenSize]).add(1));
  }
  forward(x: Tensor): Tensor {
    return x.mul(this.lambda1);
  }
}

class Dinov2Layer extends Module {
  readonly norm1: LayerNorm;
  readonly attention: Dinov2Attention;
  readonly layer_scale1: Dinov2LayerScale;
  readonly norm2: LayerNorm;
  readonly mlp: FcMlp;
  readonly layer_scale2: Dinov2LayerScale;
  constructor(c: Dinov2Config) {
    super();
    this.norm1 = this.registerModule('norm1', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.attention = this.registerModule('attention', new Dinov2Attention(c));
    this.layer_scale1 = this.registerModule('layer_scale1', new Dinov2LayerScale(c));
    this.norm2 = this.registerModule('norm2', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.mlp = this.registerModule('mlp', new FcMlp(c.hiddenSize, Math.trunc(c.hiddenSize * c.mlpRatio), c.hiddenAct));
    this.layer_scale2 = this.registerModule('layer_scale2', new Dinov2LayerScale(c));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const h = x.add(this.layer_scale1.forward(this.attention.forward(this.norm1.forward(x))));
      return h.add(this.layer_scale2.forward(this.mlp.forward(this.norm2.forward(h))));
    });
  }
}

class Dinov2PatchEmbeddings extends Module {
  readonly projection: Conv2d;
  constructor(c: Dinov2Config) {
    super();
    this.projection = this.registerModule('projection', new Conv2d(c.numChannels, c.hiddenSize, c.patchSize, { stride: c.patchSize }));
  }
}

class Dinov2Embeddings extends Module {
  readonly cls_token: Tensor;
  readonly mask_token: Tensor;
  readonly position_embeddings: Tensor;
  readonly patch_embeddings: Dinov2PatchEmbeddings;
  constructor(readonly c: Dinov2Config) {
    super();
    const n = (c.imageSize / c.patchSize) ** 2;
    this.cls_token = this.registerParameter('cls_token', zeros([1, 1, c.hiddenSize]));
    // Used only for masked-image pretraining; loaded so that the published file loads strictly.
    this.mask_token = this.registerParameter('mask_token', zeros([1, c.hiddenSize]));
    this.position_embeddings = this.registerParameter('position_embeddings', zeros([1, n + 1, c.hiddenSize]));
    this.patch_embeddings = this.registerModule('patch_embeddings', new Dinov2PatchEmbeddings(c));
  }

  /** The position table for a gh x gw grid: the stored one, or its patch part resized bicubically. */
  positions(gh: number, gw: number): Tensor {
    return scope(() => {
      const pos = this.position_embeddings;
      const n = pos.shape[1]! - 1;
      const side = Math.round(Math.sqrt(n));
      if (gh * gw === n && gh === gw) return pos.detach();
      const D = this.c.hiddenSize;
      const cls = pos.narrow(1, 0, 1);
      const grid = pos.narrow(1, 1, n).reshape([1, side, side, D]).permute([0, 3, 1, 2]);
      const resized = ops.upsample_bicubic2d(grid.to('float32'), [gh, gw], false, null);
      return ops.cat([cls, resized.permute([0, 2, 3, 1]).reshape([1, gh * gw, D]).to(pos.dtype)], 1);
    });
  }

  forward(pixels: Tensor): Tensor {
    return scope(() => {
      const B = pixels.shape[0]!;
      const patches = this.patch_embeddings.projection.forward(pixels); // [B, D, gh, gw]
      const [, D, gh, gw] = patches.shape as [number, number, number, number];
      const tokens = ops.cat([this.cls_token.expand([B, 1, D]), patches.flatten(2).transpose(1, 2)], 1);
      return tokens.add(this.positions(gh, gw));
    });
  }
}

class Dinov2Encoder extends Module {
  readonly layer: ModuleList<Dinov2Layer>;
  constructor(c: Dinov2Config) {
    super();
    this.layer = this.registerModule('layer', new ModuleList(Array.from({ length: c.numLayers }, () => new Dinov2Layer(c))));
  }
}

/** Dinov2Model with the transformers key names (embeddings.*, encoder.layer.{i}.*, layernorm.*). */
export class Dinov2Model extends Module {
  readonly embeddings: Dinov2Embeddings;
  readonly encoder: Dinov2Encoder;
  readonly layernorm: LayerNorm;
  constructor(readonly config: Dinov2Config) {
    super();
    this.embeddings = this.registerModule('embeddings', new Dinov2Embeddings(config));
    this.encoder = this.registerModule('encoder', new Dinov2Encoder(config));
    this.layernorm = this.registerModule('layernorm', new LayerNorm(config.hiddenSize, config.layerNormEps));
  }
  /** last_hidden_state [B, 1 + gh*gw, D] for normalised pixels [B, 3, H, W]. */
  forward(pixels: Tensor): Tensor {
    return scope(() => {
      let h = this.embeddings.forward(pixels);
      for (const layer of this.encoder.layer) h = layer.forward(h);
      return this.layernorm.forward(h);
    });
  }
  /** The CLS token of last_hidden_state (pooler_output), [B, D]. */
  cls(pixels: Tensor): Tensor {
    return scope(() => this.forward(pixels).select(1, 0));
  }
}

/** Loads config.json + model.safetensors of a facebook/dinov2-* folder, strictly. */
export function loadDinov2Model(dir: string): Dinov2Model {
  const config = parseDinov2Config(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfConfigJson);
  const model = new Dinov2Model(config);
  try {
    scope(() => model.loadStateDict(safetensors.load(join(dir, 'model.safetensors')).tensors));
  } catch (e) {
    model.dispose();
    if (e instanceof Error) e.message = `${join(dir, 'model.safetensors')}: ${e.message}`;
    throw e;
  }
  return model.eval();
}

export interface Dinov2Preprocess {
  resize: number;
  crop: number;
}
/** The default Dinov2 processor sizes (BitImageProcessor: shortest edge 256, crop 224). */
export const DINOV2_PREPROCESS: Dinov2Preprocess = { resize: 256, crop: 224 };

/** DINOv2 CLS embeddings, L2-normalised: the identity feature of docs/method.md 3.4. */
export class Dinov2Embedder implements ImageEmbedder {
  constructor(
    readonly model: Dinov2Model,
    readonly id = 'dinov2',
    readonly sizes: Dinov2Preprocess = DINOV2_PREPROCESS,
  ) {}

  static load(dir: string, id = 'dinov2-base', sizes: Dinov2Preprocess = DINOV2_PREPROCESS): Dinov2Embedder {
    return new Dinov2Embedder(loadDinov2Model(dir), id, sizes);
  }

  pixels(images: ImageBatch): Tensor {
    return preprocessBatch(images, { ...this.sizes, mode: 'bicubic', mean: IMAGENET_MEAN, std: IMAGENET_STD });
  }

  embed(images: ImageBatch): Tensor {
    return noGrad(() => scope(() => l2normalize(this.model.cls(this.pixels(images)))));
  }

  dispose(): void {
    this.model.dispose();
  }
}
