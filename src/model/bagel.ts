// The unified model with BAGEL's layout (docs/method.md 1.1-1.4): the MoT language model, the latent
// path (vae2llm, llm2vae, timestep embedder, latent position table) and the understanding path
// (SigLIP ViT, connector, ViT position table). Top-level child names are the checkpoint's key
// prefixes. The VAE is a separate module (its own ae.safetensors), frozen everywhere.
import { scope, type Tensor } from '../torch/index.js';
import { Linear, Module, init } from '../nn/index.js';
import { latentTokenDim, validateConfig, type ModelConfig } from './config.js';
import { PositionEmbedding, TimestepEmbedder } from './embeddings.js';
import { Qwen2MoTForCausalLM } from './mot.js';
import { MLPConnector, SiglipVisionModel } from './siglip.js';

export interface BagelOptions {
  /** Build the ViT, connector and vit_pos_embed (visual_und). Default true. */
  visualUnd?: boolean;
  /** Build the latent path (visual_gen). Default true. */
  visualGen?: boolean;
  /** Decode one token at a time through the native kernels (MoTOptions.decodeKernels). Default true. */
  decodeKernels?: boolean;
}

export class Bagel extends Module {
  readonly language_model: Qwen2MoTForCausalLM;
  readonly time_embedder: TimestepEmbedder | null = null;
  readonly vae2llm: Linear | null = null;
  readonly llm2vae: Linear | null = null;
  readonly latent_pos_embed: PositionEmbedding | null = null;
  readonly vit_model: SiglipVisionModel | null = null;
  readonly connector: MLPConnector | null = null;
  readonly vit_pos_embed: PositionEmbedding | null = null;

  constructor(readonly config: ModelConfig, options: BagelOptions = {}) {
    super();
    validateConfig(config);
    const D = config.llm.hiddenSize;
    this.language_model = this.registerModule('language_model', new Qwen2MoTForCausalLM(config.llm, { decodeKernels: options.decodeKernels ?? true }));
    if (options.visualGen ?? true) {
      const tokenDim = latentTokenDim(config);
      this.time_embedder = this.registerModule('time_embedder', new TimestepEmbedder(D, config.timestepFreqDim));
      this.vae2llm = this.registerModule('vae2llm', new Linear(tokenDim, D));
      this.llm2vae = this.registerModule('llm2vae', new Linear(D, tokenDim));
      // zero-initialised as in the reference (bagel_fixed.py:101-104); checkpoints overwrite it
      init.zeros_(this.llm2vae.weight);
      init.zeros_(this.llm2vae.bias!);
      this.latent_pos_embed = this.registerModule('latent_pos_embed', new PositionEmbedding(config.maxLatentSize, D));
    }
    if (options.visualUnd ?? true) {
      this.vit_model = this.registerModule('vit_model', new SiglipVisionModel(config.vit));
      this.connector = this.registerModule('connector', new MLPConnector(config.vit.hiddenSize, D));
      this.vit_pos_embed = this.registerModule('vit_pos_embed', new PositionEmbedding(config.vit.maxNumPatchPerSide, D));
    }
  }

  private need<T>(m: T | null, what: string): T {
    if (m === null) throw new Error(`Bagel '${this.config.name}' was built without ${what}`);
    return m;
  }

  /** Latent token inputs: vae2llm(x_t) + TimestepEmbed(t) + latent_pos_embed[id] (docs/method.md 1.4). */
  embedLatents(xt: Tensor, t: Tensor, positionIds: Tensor): Tensor {
    return scope(() => {
      const proj = this.need(this.vae2llm, 'the latent path');
      // x_t is float32 (flow matching, docs/precision.md section 2); the projection runs in the weights' dtype
      const v = proj.forward(xt.dtype === proj.weight.dtype ? xt : xt.to(proj.weight.dtype));
      return v.add(this.time_embedder!.forward(t).to(v.dtype)).add(this.latent_pos_embed!.forward(positionIds).to(v.dtype));
    });
  }

  /** Velocity from final gen-normed hidden states: llm2vae(h). */
  velocity(hidden: Tensor): Tensor {
    return this.need(this.llm2vae, 'the latent path').forward(hidden);
  }

  /** ViT token inputs: connector(ViT(patches)) + vit_pos_embed[id] (docs/method.md 1.3). */
  embedVit(patches: Tensor, positionIds: Tensor, lens: number[]): Tensor {
    return scope(() => {
      const vit = this.need(this.vit_model, 'the ViT');
      const w = vit.vision_model.embeddings.patch_embedding.weight;
      const x = patches.dtype === w.dtype ? patches : patches.to(w.dtype);
      const h = this.connector!.forward(vit.forward(x, positionIds, lens));
      return h.add(this.vit_pos_embed!.forward(positionIds).to(h.dtype));
    });
  }

  /** Activation checkpointing of every decoder and ViT layer (docs/precision.md section 3). */
  setActivationCheckpointing(on: boolean): void {
    this.language_model.model.activationCheckpointing = on;
    if (this.vit_model) this.vit_model.activationCheckpointing = on;
  }

  /** Text logits from final und-normed hidden states. */
  logits(hidden: Tensor): Tensor {
    return this.language_model.logits(hidden);
  }
}
