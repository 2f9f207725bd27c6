// BLIP's vision tower in the Hugging Face `transformers` layout (BlipVisionModel, the
// `vision_model.*` keys of BlipForQuestionAnswering): a conv patch embedding WITH bias, a class
// embedding [1, 1, D] and learned positions [1, N + 1, D] stored as bare parameters (no `.weight`),
// pre-LN encoder layers whose attention has one fused `qkv` projection (output rows ordered
// q | k | v, each split into heads) and an output `projection`, scores scaled by head_dim^-0.5, a
// GELU MLP (fc1, fc2), and `post_layernorm` applied to every token: the text encoder cross-attends
// the whole normed sequence, not only the class token.
import { ops, scope, zeros, type Tensor } from '../../torch/index.js';
import { Conv2d, FcMlp, LayerNorm, Linear, Module, ModuleList } from '../../nn/index.js';

export interface BlipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  hiddenAct: string;
  layerNormEps: number;
}

/** BlipAttention: fused qkv [3D, D], heads of size D/H, softmax(q k^T * d^-0.5) v, then projection. */
class BlipVisionAttention extends Module {
  readonly qkv: Linear;
  readonly projection: Linear;
  constructor(readonly hidden: number, readonly numHeads: number) {
    super();
    if (hidden % numHeads !== 0) throw new Error(`BLIP vision: hidden_size ${hidden} is not divisible by ${numHeads} heads`);
    this.qkv = this.registerModule('qkv', new Linear(hidden, 3 * hidden));
    this.projection = this.registerModule('projection', new Linear(hidden, hidden));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [B, T] = x.shape as [number, number];
      const H = this.numHeads;
      const d = this.hidden / H;
      // [B, T, 3D] -> [3, B, H, T, d], as reshape(B, T, 3, H, d).permute(2, 0, 3, 1, 4)
      const qkv = this.qkv.forward(x).reshape([B, T, 3, H, d]).permute([2, 0, 3, 1, 4]);
      const q = qkv.select(0, 0);
      const k = qkv.select(0, 1);
      const v = qkv.select(0, 2);
      const probs = q.matmul(k.transpose(-1, -2)).mul(d ** -0.5).softmax(-1);
      const o = probs.matmul(v).permute([0, 2, 1, 3]).reshape([B, T, this.hidden]);
      return this.projection.forward(o);
    });
  }
}

class BlipEncoderLayer extends Module {
  readonly self_attn: BlipVisionAttention;
  readonly layer_norm1: LayerNorm;
  readonly mlp: FcMlp;
  readonly layer_norm2: LayerNorm;
  constructor(c: BlipVisionConfig) {
    super();
    this.self_attn = this.registerModule('self_attn', new BlipVisionAttention(c.hiddenSize, c.numHeads));
    this.layer_norm1 = this.registerModule('layer_norm1', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.mlp = this.registerModule('mlp', new FcMlp(c.hiddenSize, c.intermediateSize, c.hiddenAct));
    this.layer_norm2 = this.registerModule('layer_norm2', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const h = x.add(this.self_attn.forward(this.layer_norm1.forward(x)));
      return h.add(this.mlp.forward(this.layer_norm2.forward(h)));
    });
  }
}

class BlipEncoder extends Module {
  readonly layers: ModuleList<BlipEncoderLayer>;
  constructor(c: BlipVisionConfig) {
    super();
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: c.numLayers }, () => new BlipEncoderLayer(c))));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const layer of this.layers) {
      const next = layer.forward(h);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }
}

class BlipVisionEmbeddings extends Module {
  readonly class_embedding: Tensor;
  readonly patch_embedding: Conv2d;
  readonly position_embedding: Tensor;
  constructor(readonly c: BlipVisionConfig) {
    super();
    if (c.imageSize % c.patchSize !== 0) throw new Error(`BLIP vision: image_size ${c.imageSize} is not a multiple of patch_size ${c.patchSize}`);
    this.class_embedding = this.registerParameter('class_embedding', zeros([1, 1, c.hiddenSize]));
    this.patch_embedding = this.registerModule('patch_embedding',
      new Conv2d(c.numChannels, c.hiddenSize, c.patchSize, { stride: c.patchSize }));
    const n = (c.imageSize / c.patchSize) ** 2;
    this.position_embedding = this.registerParameter('position_embedding', zeros([1, n + 1, c.hiddenSize]));
  }
  /** pixels [B, 3, S, S] -> [B, 1 + (S/p)^2, D]. */
  forward(pixels: Tensor): Tensor {
    return scope(() => {
      const B = pixels.shape[0]!;
      const D = this.c.hiddenSize;
      const patches = this.patch_embedding.forward(pixels).flatten(2).transpose(1, 2);
      const h = ops.cat([this.class_embedding.expand([B, 1, D]), patches], 1);
      return h.add(this.position_embedding.narrow(1, 0, h.shape[1]!));
    });
  }
}

/** `vision_model`: normalised pixels [B, 3, S, S] -> the post-LayerNormed token sequence [B, 1 + N, D]. */
export class BlipVisionModel extends Module {
  readonly embeddings: BlipVisionEmbeddings;
  readonly encoder: BlipEncoder;
  readonly post_layernorm: LayerNorm;
  constructor(readonly config: BlipVisionConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new BlipVisionEmbeddings(config));
    this.encoder = this.registerModule('encoder', new BlipEncoder(config));
    this.post_layernorm = this.registerModule('post_layernorm', new LayerNorm(config.hiddenSize, config.layerNormEps));
  }
  forward(pixels: Tensor): Tensor {
    return scope(() => this.post_layernorm.forward(this.encoder.forward(this.embeddings.forward(pixels))));
  }
}
