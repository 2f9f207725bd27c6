// Configuration of the training commands (`unicharacter train vae|sft|base`, `customize`), as a
// zod schema with documented defaults. A config file is JSON or YAML; every field is optional
// and takes the default written here. Defaults are the `tiny` CPU run (a couple of minutes on a
// 2-core machine); the reference values of docs/method.md 2.6 / 6.3 are named beside each field where
// they differ. The resolved config is written to the run directory as config.json.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PRECISION_MODES } from '../nn/index.js';
import { CE_WEIGHT, MSE_WEIGHT } from '../model/index.js';
import { SHARD_MODES } from './shard/index.js';

/** Data packing for tiny (docs/method.md 2.2; the reference uses 8192 / 12288 / 8192 / 16384 / 50). */
export const PackingSchema = z
  .object({
    expectedNumTokens: z.number().int().positive().default(640),
    maxNumTokens: z.number().int().positive().default(1024),
    maxNumTokensPerSample: z.number().int().positive().default(1024),
    preferBufferBefore: z.number().int().positive().default(1024),
    maxBufferSize: z.number().int().nonnegative().default(50),
  })
  .strict();

export const DataSchema = z
  .object({
    /** Characters: 'sample' (Tessel from samples/) or RoleScape-20 character folders (train split). */
    characters: z.array(z.string()).min(1).default(['sample']),
    /** A built-in recipe name (base, extension, extension_with_thinking, full) or a YAML recipe file. */
    recipe: z.string().default('full'),
    /** The VAE image side: the long-side bound of the sizing rule (the reference: long side <= 1024, short >= 512). */
    imageSize: z.number().int().positive().default(64),
    /** The ViT image side (a multiple of the ViT patch), likewise (the reference: 980 / 378). */
    vitImageSize: z.number().int().positive().default(56),
    /**
     * 'aspect' (default, the reference's transforms): the official resize rules scaled to imageSize
     * and vitImageSize (src/data/image.ts scaledRule; docs/fidelity.md), so images keep their aspect
     * ratio; 'square': stretched to imageSize x imageSize and vitImageSize x vitImageSize. The VAE
     * stage trains on the VAE images sized the same way.
     */
    imageSizing: z.enum(['aspect', 'square']).default('aspect'),
    /** Caption dropout (docs/method.md 2.4: 0.1). */
    textDropProb: z.number().min(0).max(1).default(0.1),
    /** Packs per rank per step (the reference: 1). */
    packsPerRank: z.number().int().positive().default(1),
    packing: PackingSchema.default({}),
    /** Seed of the pack order and of every per-sample draw (reference data_seed 42). */
    seed: z.number().int().default(42),
    /** Few-shot customization: keep at most this many reference images (and their scenes). */
    maxImages: z.number().int().positive().optional(),
  })
  .strict();

export const OptimSchema = z
  .object({
    /** Peak learning rate. Reference 2e-5 (fine-tuning 7B); tiny trains from scratch at 1e-3. */
    lr: z.number().positive().default(1e-3),
    betas: z.tuple([z.number(), z.number()]).default([0.9, 0.95]),
    eps: z.number().positive().default(1e-15),
    weightDecay: z.number().min(0).default(0),
    /** Global gradient-norm clip (1.0). */
    gradClip: z.number().positive().default(1.0),
    /** 'constant' (reference, warmup 0) or 'cosine' (warmup then half cosine to minLr). */
    schedule: z.enum(['constant', 'cosine']).default('constant'),
    warmupSteps: z.number().int().nonnegative().default(0),
    minLr: z.number().min(0).default(0),
  })
  .strict();

export const EmaSchema = z
  .object({
    /** Keep and save a parameter EMA (the reference keeps one but never saves it). */
    enabled: z.boolean().default(false),
    decay: z.number().min(0).max(1).default(0.9999),
  })
  .strict();

export const LoraSchema = z
  .object({
    /** Train LoRA adapters only (everything else frozen). Default: full fine-tuning but the VAE. */
    enabled: z.boolean().default(false),
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(16),
    dropout: z.number().min(0).max(1).default(0),
    /** Linear layers to adapt (globs on dotted names; a bare name matches the last segment). */
    targets: z.array(z.string()).min(1).default(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_proj_moe_gen', 'k_proj_moe_gen', 'v_proj_moe_gen', 'o_proj_moe_gen']),
  })
  .strict();

export const SamplingSchema = z
  .object({
    /** Write a sample reply and image every N steps (0: only at the end). */
    every: z.number().int().nonnegative().default(100),
    maxTokens: z.number().int().positive().default(48),
    numTimesteps: z.number().int().min(2).default(12),
    timestepShift: z.number().positive().default(3.0),
    cfgTextScale: z.number().positive().default(4.0),
  })
  .strict();

export const VaeStageSchema = z
  .object({
    /** A trained autoencoder (ae.safetensors). Absent: `train sft` trains one first (vae stage). */
    path: z.string().optional(),
    steps: z.number().int().positive().default(300),
    lr: z.number().positive().default(1e-3),
    batchSize: z.number().int().positive().default(4),
    /** Weight of the KL term (per latent element mean) next to the L1 + L2 reconstruction. */
    klWeight: z.number().min(0).default(1e-4),
    /** Set the latent scale and shift from the data after training (1 / std, mean). */
    calibrate: z.boolean().default(true),
    sampleEvery: z.number().int().nonnegative().default(100),
    /** Checkpoint the VAE stage every N steps (and at its end), so a killed run resumes there. */
    saveEvery: z.number().int().positive().default(50),
    seed: z.number().int().default(0),
  })
  .strict();

export const SftConfigSchema = z
  .object({
    /** Model preset (tiny, bagel-7b-mot); the vocabulary comes from the tokenizer. */
    model: z.string().default('tiny'),
    /** Initial weights (a model.safetensors of a base run); absent: random init. */
    init: z.string().optional(),
    /** tokenizer.json; absent: a byte-level BPE trained on the characters' texts. */
    tokenizer: z.string().optional(),
    tokenizerVocabSize: z.number().int().positive().default(1024),
    vae: VaeStageSchema.default({}),
    data: DataSchema.default({}),
    optim: OptimSchema.default({}),
    ema: EmaSchema.default({}),
    lora: LoraSchema.default({}),
    sampling: SamplingSchema.default({}),
    totalSteps: z.number().int().positive().default(200),
    saveEvery: z.number().int().positive().default(50),
    /** Loss weights (docs/method.md 2.3: 0.25 CE + 1.0 MSE) and the SFT timestep shift (1.0). */
    ceWeight: z.number().min(0).default(CE_WEIGHT),
    mseWeight: z.number().min(0).default(MSE_WEIGHT),
    timestepShift: z.number().positive().default(1.0),
    /** Seed of the model initialisation (the reference: 4396 * world + rank for its own RNG). */
    seed: z.number().int().default(0),
    /** Intra-op threads (0: leave libtorch's default). */
    threads: z.number().int().nonnegative().default(0),
    /**
     * Where weights, gradients and optimizer state live (docs/precision.md): 'fp32'; 'bf16-mixed'
     * (bfloat16 forward and backward, float32 master weights and AdamW state); 'bf16' (all
     * bfloat16, as the reference's GRPO). A run keeps its mode: resume checks it.
     */
    precision: z.enum(PRECISION_MODES).default('fp32'),
    /** Recompute each decoder and ViT layer in backward instead of keeping its activations (docs/precision.md section 3). */
    activationCheckpointing: z.boolean().default(false),
    /**
     * Data parallel over the ranks (docs/sharding.md 1): 'none' (every rank holds everything),
     * 'grad' (gradients and optimizer state sharded) or 'full' (the weights too).
     */
    shard: z.enum(SHARD_MODES).default('none'),
    /** Hybrid sharding (docs/sharding.md 5): shard within groups of this many ranks, replicate across groups. */
    shardGroupSize: z.number().int().positive().optional(),
    /** Export: 'full' writes model.safetensors; 'lora' writes only the adapter (needs lora.enabled). */
    export: z.enum(['full', 'lora']).default('full'),
  })
  .strict();

export type SftConfig = z.infer<typeof SftConfigSchema>;
export type SftConfigInput = z.input<typeof SftConfigSchema>;
export type VaeStageConfig = z.infer<typeof VaeStageSchema>;

/** Validates a config object; the error names every failing field. */
export function parseSftConfig(value: unknown, source = 'config'): SftConfig {
  const r = SftConfigSchema.safeParse(value ?? {});
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new Error(`${source}: invalid training config:\n  ${lines.join('\n  ')}`);
}

/** Reads a JSON or YAML (.yaml/.yml) config file. */
export function loadSftConfig(path: string): SftConfig {
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: cannot parse: ${(e as Error).message}`);
  }
  return parseSftConfig(raw, path);
}

/** The default tiny config (every default of the schema). */
export function tinySftConfig(overrides: SftConfigInput = {}): SftConfig {
  return parseSftConfig(overrides, 'tiny config');
}
