// CLIP (Radford et al.) in the Hugging Face `transformers` layout (CLIPModel): a vision tower
// (conv patch embedding without bias, class embedding, learned positions, `pre_layrnorm` (sic),
// pre-LN encoder, post_layernorm on the class token, visual_projection) and a text tower (token +
// position embeddings, causally masked pre-LN encoder, final_layer_norm, the EOS position pooled,
// text_projection), sized from config.json so that tiny test configs and ViT-L/14 share one code
// path. The reward of docs/method.md 3.4 is CLIP-T = logits_per_image / 30 = exp(logit_scale)·cos / 30,
// i.e. (100/30)·cos for the published weights (logit_scale = ln 100); the raw cosine is available too.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad, ops, safetensors, scope, tensor, zeros, type Tensor } from '../../torch/index.js';
import { Conv2d, Embedding, FcMlp, LayerNorm, Linear, Module, ModuleList } from '../../nn/index.js';
import { CLIP_MEAN, CLIP_STD, cosineMatrix, l2normalize, preprocessBatch, type ImageBatch } from './images.js';
import { ClipTokenizer } from './clip-tokenizer.js';
import { num, str, type HfConfigJson } from './hf-config.js';

export interface ClipTowerConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  hiddenAct: string;
  layerNormEps: number;
}
export interface ClipTextConfig extends ClipTowerConfig {
  vocabSize: number;
  maxPositionEmbeddings: number;
  eosTokenId: number;
}
export interface ClipVisionConfig extends ClipTowerConfig {
  imageSize: number;
  patchSize: number;
  numChannels: number;
}
export interface ClipConfig {
  text: ClipTextConfig;
  vision: ClipVisionConfig;
  projectionDim: number;
}

/** Reads a transformers CLIPConfig (config.json), with transformers' defaults for absent fields. */
export function parseClipConfig(json: HfConfigJson): ClipConfig {
  const t = (json.text_config ?? {}) as HfConfigJson;
  const v = (json.vision_config ?? {}) as HfConfigJson;
  return {
    projectionDim: num(json, 'projection_dim', 512),
    text: {
      vocabSize: num(t, 'vocab_size', 49408),
      hiddenSize: num(t, 'hidden_size', 512),
      intermediateSize: num(t, 'intermediate_size', 2048),
      numLayers: num(t, 'num_hidden_layers', 12),
      numHeads: num(t, 'num_attention_heads', 8),
      maxPositionEmbeddings: num(t, 'max_position_embeddings', 77),
      hiddenAct: str(t, 'hidden_act', 'quick_gelu'),
      layerNormEps: num(t, 'layer_norm_eps', 1e-5),
      eosTokenId: num(t, 'eos_token_id', 2),
    },
    vision: {
      hiddenSize: num(v, 'hidden_size', 768),
      intermediateSize: num(v, 'intermediate_size', 3072),
      numLayers: num(v, 'num_hidden_layers', 12),
      numHeads: num(v, 'num_attention_heads', 12),
      imageSize: num(v, 'image_size', 224),
      patchSize: num(v, 'patch_size', 32),
      numChannels: num(v, 'num_channels', 3),
      hiddenAct: str(v, 'hidden_act', 'quick_gelu'),
      layerNormEps: num(v, 'layer_norm_eps', 1e-5),
    },
  };
}

/** Multi-head attention with q scaled by head_dim^-0.5 (CLIPAttention); mask is additive [T, T]. */
class ClipAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;
  constructor(readonly hidden: number, readonly numHeads: number) {
    super();
    if (hidden % numHeads !== 0) throw new Error(`CLIP: hidden ${hidden} not divisible by ${numHeads} heads`);
    this.q_proj = this.registerModule('q_proj', new Linear(hidden, hidden));
    this.k_proj = this.registerModule('k_proj', new Linear(hidden, hidden));
    this.v_proj = this.registerModule('v_proj', new Linear(hidden, hidden));
    this.out_proj = this.registerModule('out_proj', new Linear(hidden, hidden));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    return scope(() => {
      const [B, T] = x.shape as [number, number];
      const H = this.numHeads;
      const d = this.hidden / H;
      const heads = (t: Tensor): Tensor => t.reshape([B, T, H, d]).transpose(1, 2);
      const q = heads(this.q_proj.forward(x).mul(d ** -0.5));
      const k = heads(this.k_proj.forward(x));
      const v = heads(this.v_proj.forward(x));
      let scores = q.matmul(k.transpose(-1, -2));
      if (mask) scores = scores.add(mask);
      const o = scores.softmax(-1).matmul(v);
      return this.out_proj.forward(o.transpose(1, 2).reshape([B, T, this.hidden]));
    });
  }
}

class ClipEncoderLayer extends Module {
  readonly self_attn: ClipAttention;
  readonly layer_norm1: LayerNorm;
  readonly mlp: FcMlp;
  readonly layer_norm2: LayerNorm;
  constructor(c: ClipTowerConfig) {
    super();
    this.self_attn = this.registerModule('self_attn', new ClipAttention(c.hiddenSize, c.numHeads));
    this.layer_norm1 = this.registerModule('layer_norm1', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.mlp = this.registerModule('mlp', new FcMlp(c.hiddenSize, c.intermediateSize, c.hiddenAct));
    this.layer_norm2 = this.registerModule('layer_norm2', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    return scope(() => {
      const h = x.add(this.self_attn.forward(this.layer_norm1.forward(x), mask));
      return h.add(this.mlp.forward(this.layer_norm2.forward(h)));
    });
  }
}

class ClipEncoder extends Module {
  readonly layers: ModuleList<ClipEncoderLayer>;
  constructor(c: ClipTowerConfig) {
    super();
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: c.numLayers }, () => new ClipEncoderLayer(c))));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    let h = x;
    for (const layer of this.layers) {
      const next = layer.forward(h, mask);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }
}

class ClipVisionEmbeddings extends Module {
  readonly class_embedding: Tensor;
  readonly patch_embedding: Conv2d;
  readonly position_embedding: Embedding;
  constructor(readonly c: ClipVisionConfig) {
    super();
    this.class_embedding = this.registerParameter('class_embedding', zeros([c.hiddenSize]));
    this.patch_embedding = this.registerModule('patch_embedding',
      new Conv2d(c.numChannels, c.hiddenSize, c.patchSize, { stride: c.patchSize, bias: false }));
    const n = (c.imageSize / c.patchSize) ** 2;
    this.position_embedding = this.registerModule('position_embedding', new Embedding(n + 1, c.hiddenSize));
  }
  /** pixels [B, 3, S, S] (S = image_size) -> [B, 1 + (S/p)^2, D]. */
  forward(pixels: Tensor): Tensor {
    return scope(() => {
      const B = pixels.shape[0]!;
      const D = this.c.hiddenSize;
      const patches = this.patch_embedding.forward(pixels).flatten(2).transpose(1, 2); // [B, N, D]
      const cls = this.class_embedding.reshape([1, 1, D]).expand([B, 1, D]);
      return ops.cat([cls, patches], 1).add(this.position_embedding.weight.unsqueeze(0));
    });
  }
}

class ClipVisionTransformer extends Module {
  readonly embeddings: ClipVisionEmbeddings;
  readonly pre_layrnorm: LayerNorm;
  readonly encoder: ClipEncoder;
  readonly post_layernorm: LayerNorm;
  constructor(c: ClipVisionConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new ClipVisionEmbeddings(c));
    this.pre_layrnorm = this.registerModule('pre_layrnorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.encoder = this.registerModule('encoder', new ClipEncoder(c));
    this.post_layernorm = this.registerModule('post_layernorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
  /** The pooled output: post_layernorm of the class token, [B, D]. */
  forward(pixels: Tensor): Tensor {
    return scope(() => {
      const h = this.encoder.forward(this.pre_layrnorm.forward(this.embeddings.forward(pixels)), null);
      return this.post_layernorm.forward(h.select(1, 0));
    });
  }
}

class ClipTextEmbeddings extends Module {
  readonly token_embedding: Embedding;
  readonly position_embedding: Embedding;
  constructor(c: ClipTextConfig) {
    super();
    this.token_embedding = this.registerModule('token_embedding', new Embedding(c.vocabSize, c.hiddenSize));
    this.position_embedding = this.registerModule('position_embedding', new Embedding(c.maxPositionEmbeddings, c.hiddenSize));
  }
  forward(ids: Tensor): Tensor {
    return scope(() => {
      const T = ids.shape[1]!;
      return this.token_embedding.forward(ids).add(this.position_embedding.weight.narrow(0, 0, T).unsqueeze(0));
    });
  }
}

class ClipTextTransformer extends Module {
  readonly embeddings: ClipTextEmbeddings;
  readonly encoder: ClipEncoder;
  readonly final_layer_norm: LayerNorm;
  constructor(readonly c: ClipTextConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new ClipTextEmbeddings(c));
    this.encoder = this.registerModule('encoder', new ClipEncoder(c));
    this.final_layer_norm = this.registerModule('final_layer_norm', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
  /**
   * ids [B, T] (int64) -> pooled [B, D]: the final-normed state at the EOS token. As in
   * transformers, a config with the legacy eos_token_id 2 (the published ViT-L/14 config) pools
   * at argmax(ids), which is the EOS for the real vocabulary (49407 is the largest id); otherwise
   * at the first position holding eos_token_id.
   */
  forward(ids: Tensor): Tensor {
    return scope(() => {
      const [B, T] = ids.shape as [number, number];
      const causal = ops.triu(ops.full([T, T], -Infinity, 'float32'), 1);
      const h = this.final_layer_norm.forward(this.encoder.forward(this.embeddings.forward(ids), causal));
      const eos = this.c.eosTokenId === 2 ? ids.argmax(-1) : ids.eq(this.c.eosTokenId).to('int32').argmax(-1);
      const index = eos.reshape([B, 1, 1]).expand([B, 1, this.c.hiddenSize]);
      return h.gather(1, index).squeeze(1);
    });
  }
}

/** CLIPModel with the transformers key names. */
export class ClipModel extends Module {
  readonly text_model: ClipTextTransformer;
  readonly vision_model: ClipVisionTransformer;
  readonly visual_projection: Linear;
  readonly text_projection: Linear;
  readonly logit_scale: Tensor;
  constructor(readonly config: ClipConfig) {
    super();
    this.text_model = this.registerModule('text_model', new ClipTextTransformer(config.text));
    this.vision_model = this.registerModule('vision_model', new ClipVisionTransformer(config.vision));
    this.visual_projection = this.registerModule('visual_projection', new Linear(config.vision.hiddenSize, config.projectionDim, { bias: false }));
    this.text_projection = this.registerModule('text_projection', new Linear(config.text.hiddenSize, config.projectionDim, { bias: false }));
    this.logit_scale = this.registerParameter('logit_scale', tensor([Math.log(1 / 0.07)]).reshape([]));
  }
  /** Normalised pixels [B, 3, S, S] -> image embeddings [B, P] (not L2-normalised). */
  imageFeatures(pixels: Tensor): Tensor {
    return scope(() => this.visual_projection.forward(this.vision_model.forward(pixels)));
  }
  /** Token ids [B, T] -> text embeddings [B, P] (not L2-normalised). */
  textFeatures(ids: Tensor): Tensor {
    return scope(() => this.text_projection.forward(this.text_model.forward(ids)));
  }
}

/**
 * Loads a Hugging Face CLIP folder: config.json, model.safetensors, and the tokenizer
 * (vocab.json + merges.txt). Loading is strict: a missing, unexpected or mis-shaped key is an
 * error naming it. The `*.position_ids` buffers older transformers versions saved are index
 * ranges (0..n-1), not weights, and are skipped.
 */
export function loadClipModel(dir: string): ClipModel {
  const config = parseClipConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfConfigJson);
  const model = new ClipModel(config);
  try {
    scope(() => {
      const { tensors } = safetensors.load(join(dir, 'model.safetensors'), { keys: (k) => !k.endsWith('.position_ids') });
      model.loadStateDict(tensors);
    });
  } catch (e) {
    model.dispose();
    if (e instanceof Error) e.message = `${join(dir, 'model.safetensors')}: ${e.message}`;
    throw e;
  }
  return model.eval();
}

/** The interface GRPO and evaluation use for text-image alignment (CLIP-T or a substitute). */
export interface TextImageScorer {
  /** What actually scored, e.g. 'clip-vit-large-patch14' or 'fallback:colour-words'. */
  readonly id: string;
  /** Reward per image: (100/30)·cos(image_i, prompt_i) for CLIP (docs/method.md 3.4). */
  score(images: ImageBatch, prompts: readonly string[]): number[];
}

/** The interface for image embeddings compared by cosine (DINOv2 CLS, CLIP image, or a substitute). */
export interface ImageEmbedder {
  readonly id: string;
  /** L2-normalised embeddings [B, D] (owned by the current scope). */
  embed(images: ImageBatch): Tensor;
}

/** The CLIP-T factor for the published logit scale 100: (100/30)·cos (docs/method.md 3.4); substitutes use it too. */
export const CLIPT_SCALE = 100 / 30;

/** CLIP-T (text-image, the GRPO reward) and CLIP-I (image embeddings) over one loaded model. */
export class ClipScorer implements TextImageScorer, ImageEmbedder {
  constructor(
    readonly model: ClipModel,
    readonly tokenizer: ClipTokenizer,
    /** The name reports carry, e.g. the Hub id of the weights. */
    readonly id = 'clip',
  ) {}

  /** Loads a transformers CLIP folder (config.json, model.safetensors, vocab.json, merges.txt). */
  static load(dir: string, id = 'clip-vit-large-patch14'): ClipScorer {
    const tokenizer = ClipTokenizer.load(dir);
    if (existsSync(join(dir, 'model.safetensors')) === false) throw new Error(`${dir}: no model.safetensors`);
    return new ClipScorer(loadClipModel(dir), tokenizer, id);
  }

  /** The torchvision pipeline of the reference scorer: Resize(S) bilinear, CenterCrop(S), CLIP mean/std. */
  pixels(images: ImageBatch): Tensor {
    const s = this.model.config.vision.imageSize;
    return preprocessBatch(images, { resize: s, crop: s, mode: 'bilinear', mean: CLIP_MEAN, std: CLIP_STD });
  }

  /** L2-normalised image embeddings [B, P]. */
  embed(images: ImageBatch): Tensor {
    return noGrad(() => scope(() => l2normalize(this.model.imageFeatures(this.pixels(images)))));
  }

  /** L2-normalised text embeddings [B, P] (prompts padded with EOS and cut to max_position_embeddings). */
  embedText(prompts: readonly string[]): Tensor {
    return noGrad(() => scope(() => {
      const ids = this.tokenizer.encodeBatch(prompts, this.model.config.text.maxPositionEmbeddings);
      return l2normalize(this.model.textFeatures(ids));
    }));
  }

  /** cos(image_i, prompt_i) per image. */
  cosine(images: ImageBatch, prompts: readonly string[]): number[] {
    return scope(() => {
      const img = this.embed(images);
      const txt = this.embedText(prompts);
      if (img.shape[0] !== txt.shape[0]) throw new Error(`CLIP: ${img.shape[0]} images but ${txt.shape[0]} prompts`);
      return Array.from(img.mul(txt).sum([-1]).dataSync() as Float32Array);
    });
  }

  /**
   * CLIP-T reward per image: logits_per_image[i, i] / 30 = exp(logit_scale)·cos / 30 (docs/method.md 3.4),
   * which is (100/30)·cos for the published weights (logit_scale = ln 100).
   */
  score(images: ImageBatch, prompts: readonly string[]): number[] {
    const scale = Math.exp(this.model.logit_scale.item()) / 30;
    return this.cosine(images, prompts).map((c) => scale * c);
  }

  /** CLIP-I: cosine of each image to each reference [B][R]. */
  imageSimilarity(images: ImageBatch, references: ImageBatch): number[][] {
    return scope(() => cosineMatrix(this.embed(images), this.embed(references)).toArray() as number[][]);
  }

  dispose(): void {
    this.model.dispose();
  }
}
