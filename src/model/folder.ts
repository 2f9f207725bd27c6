// The published BAGEL model folder (docs/method.md 1.1, 4.1): `llm_config.json` (a Qwen2 config),
// `vit_config.json` (a SigLIP vision config), `ae.safetensors` (the FLUX autoencoder),
// `ema.safetensors` (or a fine-tuned `model.safetensors`) with the published key names, and the
// Qwen2 tokenizer files. Loads them into the same classes the rest of the project uses.
//
// ViT depth: the checkpoint config says num_hidden_layers (27 at 7B); BAGEL builds
// num_hidden_layers + 1 + vit_select_layer layers with vit_select_layer = -2, i.e. 26
// (pretrain_unified_navit_fixed.py:458). Checkpoint layers beyond that are ignored (reported in
// `ignored`), and post_layernorm is applied to the last built layer's output.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { safetensors } from '../torch/index.js';
import type { LoadResult } from '../nn/index.js';
import { Bagel } from './bagel.js';
import { loadCheckpoint } from './checkpoint.js';
import { validateConfig, type LlmConfig, type ModelConfig, type SpecialTokens, type VaeConfig, type VitConfig } from './config.js';
import { AutoEncoder } from './vae.js';

export const BAGEL_FOLDER_FILES = {
  llmConfig: 'llm_config.json',
  vitConfig: 'vit_config.json',
  vae: 'ae.safetensors',
  ema: 'ema.safetensors',
  model: 'model.safetensors',
} as const;

/** The published FLUX autoencoder settings (docs/method.md 1.1); the architecture widths are read from ae.safetensors. */
export const FLUX_VAE_DEFAULTS = { scaleFactor: 0.3611, shiftFactor: 0.1159, normGroups: 32 } as const;

export interface BagelFolderOptions {
  /** Parameter dtype of the loaded model and VAE (default float32). */
  dtype?: 'float32' | 'bfloat16' | 'float16';
  /** Checkpoint file inside the folder (default: ema.safetensors, else model.safetensors). */
  checkpoint?: string;
  /** ViT layers built = vit num_hidden_layers + 1 + vitSelectLayer (default -2, as BAGEL's SFT and the 7B release). */
  vitSelectLayer?: number;
  /** Latent position grid side in tokens (default 64, at most 1024 px per side). */
  maxLatentSize?: number;
  /** Overrides of the VAE settings not stored in the folder (scale, shift, GroupNorm groups). */
  vae?: Partial<VaeConfig>;
  /** Special token ids, when the tokenizer files do not name them. */
  tokens?: SpecialTokens;
  /** Any missing, unexpected or shape-mismatched key is an Error naming them (default true). */
  strict?: boolean;
  /** Build (and load) the ViT path (default true) and the latent path (default true). */
  visualUnd?: boolean;
  visualGen?: boolean;
}

export interface BagelFolder {
  config: ModelConfig;
  model: Bagel;
  vae: AutoEncoder;
  /** tokenizer.json of the folder, when there is one. */
  tokenizerPath: string | null;
  /** The checkpoint file that was loaded. */
  checkpointPath: string;
  /** What the loads found, by key name ('ignored': checkpoint ViT layers beyond those built). */
  report: { model: LoadResult & { ignored: string[] }; vae: LoadResult };
}

function readJson(dir: string, file: string): Record<string, unknown> {
  const path = join(dir, file);
  if (!existsSync(path)) throw new Error(`BAGEL folder ${dir}: ${file} is missing`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`BAGEL folder ${dir}: ${file} is not valid JSON (${(e as Error).message})`);
  }
}

function field(cfg: Record<string, unknown>, file: string, name: string, fallback?: number): number {
  const v = cfg[name];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === undefined && fallback !== undefined) return fallback;
  throw new Error(`${file}: field '${name}' is ${v === undefined ? 'missing' : `not a number (${JSON.stringify(v)})`}`);
}

/** LlmConfig from a Qwen2 `llm_config.json`. */
export function llmConfigFromQwen2(cfg: Record<string, unknown>, file = BAGEL_FOLDER_FILES.llmConfig): LlmConfig {
  const hiddenSize = field(cfg, file, 'hidden_size');
  const numHeads = field(cfg, file, 'num_attention_heads');
  return {
    vocabSize: field(cfg, file, 'vocab_size'),
    hiddenSize,
    numLayers: field(cfg, file, 'num_hidden_layers'),
    numHeads,
    numKvHeads: field(cfg, file, 'num_key_value_heads', numHeads),
    headDim: field(cfg, file, 'head_dim', hiddenSize / numHeads),
    intermediateSize: field(cfg, file, 'intermediate_size'),
    rmsNormEps: field(cfg, file, 'rms_norm_eps'),
    ropeTheta: field(cfg, file, 'rope_theta', 10000),
    maxPositionEmbeddings: field(cfg, file, 'max_position_embeddings'),
  };
}

/**
 * VitConfig from a SigLIP `vit_config.json`. Layers built = num_hidden_layers + 1 + vitSelectLayer
 * (26 of 27 at 7B); the position grid side is image_size / patch_size (980 / 14 = 70).
 */
export function vitConfigFromSiglip(cfg: Record<string, unknown>, vitSelectLayer = -2, file = BAGEL_FOLDER_FILES.vitConfig): VitConfig {
  const layers = field(cfg, file, 'num_hidden_layers');
  const patchSize = field(cfg, file, 'patch_size');
  const imageSize = field(cfg, file, 'image_size');
  const numLayers = layers + 1 + vitSelectLayer;
  if (!(numLayers >= 1 && numLayers <= layers)) throw new Error(`${file}: num_hidden_layers ${layers} + 1 + vit_select_layer ${vitSelectLayer} = ${numLayers} layers is out of range`);
  if (imageSize % patchSize !== 0) throw new Error(`${file}: image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  return {
    hiddenSize: field(cfg, file, 'hidden_size'),
    numLayers,
    numHeads: field(cfg, file, 'num_attention_heads'),
    intermediateSize: field(cfg, file, 'intermediate_size'),
    patchSize,
    numChannels: field(cfg, file, 'num_channels', 3),
    layerNormEps: field(cfg, file, 'layer_norm_eps', 1e-6),
    maxNumPatchPerSide: imageSize / patchSize,
  };
}

/** The FLUX VAE widths read from the shapes in an ae.safetensors header (no data is read). */
export function vaeConfigFromHeader(path: string, overrides: Partial<VaeConfig> = {}): VaeConfig {
  const shapes = new Map([...safetensors.loadHeader(path).tensors].map(([k, v]) => [k, v.shape]));
  const need = (k: string): number[] => {
    const s = shapes.get(k);
    if (!s) throw new Error(`${path}: key '${k}' is missing (not a FLUX autoencoder?)`);
    return s;
  };
  const convIn = need('encoder.conv_in.weight'); // [ch, in, 3, 3]
  const ch = convIn[0]!;
  const chMult: number[] = [];
  for (let i = 0; shapes.has(`encoder.down.${i}.block.0.conv1.weight`); i++) chMult.push(need(`encoder.down.${i}.block.0.conv1.weight`)[0]! / ch);
  let numResBlocks = 0;
  while (shapes.has(`encoder.down.0.block.${numResBlocks}.conv1.weight`)) numResBlocks++;
  if (chMult.length === 0 || numResBlocks === 0) throw new Error(`${path}: no encoder.down.*.block.* keys`);
  return {
    inChannels: convIn[1]!,
    outChannels: need('decoder.conv_out.weight')[0]!,
    ch,
    chMult,
    numResBlocks,
    zChannels: need('decoder.conv_in.weight')[1]!,
    ...FLUX_VAE_DEFAULTS,
    ...overrides,
  };
}

const TOKEN_NAMES: Record<keyof SpecialTokens, string> = {
  bos: '<|im_start|>',
  eos: '<|im_end|>',
  startOfImage: '<|vision_start|>',
  endOfImage: '<|vision_end|>',
};

/** The four special token ids (docs/method.md 1.5) from tokenizer.json, tokenizer_config.json or vocab.json. */
export function specialTokensFromFolder(dir: string): SpecialTokens | null {
  const found = new Map<string, number>();
  const tj = join(dir, 'tokenizer.json');
  if (existsSync(tj)) {
    const t = JSON.parse(readFileSync(tj, 'utf8')) as { added_tokens?: { id: number; content: string }[]; model?: { vocab?: Record<string, number> } };
    for (const a of t.added_tokens ?? []) found.set(a.content, a.id);
    for (const [k, v] of Object.entries(t.model?.vocab ?? {})) if (!found.has(k)) found.set(k, v);
  }
  const tc = join(dir, 'tokenizer_config.json');
  if (existsSync(tc)) {
    const t = JSON.parse(readFileSync(tc, 'utf8')) as { added_tokens_decoder?: Record<string, { content: string }> };
    for (const [id, a] of Object.entries(t.added_tokens_decoder ?? {})) if (!found.has(a.content)) found.set(a.content, Number(id));
  }
  const vj = join(dir, 'vocab.json');
  if (existsSync(vj)) {
    for (const [k, v] of Object.entries(JSON.parse(readFileSync(vj, 'utf8')) as Record<string, number>)) if (!found.has(k)) found.set(k, v);
  }
  const out: Partial<SpecialTokens> = {};
  for (const [k, name] of Object.entries(TOKEN_NAMES) as [keyof SpecialTokens, string][]) {
    const id = found.get(name);
    if (id === undefined) return null;
    out[k] = id;
  }
  return out as SpecialTokens;
}

/** The ModelConfig of a published BAGEL folder (reads the two configs, the tokenizer and the ae header). */
export function readBagelFolderConfig(dir: string, o: BagelFolderOptions = {}): ModelConfig {
  const llm = llmConfigFromQwen2(readJson(dir, BAGEL_FOLDER_FILES.llmConfig));
  const vit = vitConfigFromSiglip(readJson(dir, BAGEL_FOLDER_FILES.vitConfig), o.vitSelectLayer ?? -2);
  const aePath = join(dir, BAGEL_FOLDER_FILES.vae);
  if (!existsSync(aePath)) throw new Error(`BAGEL folder ${dir}: ${BAGEL_FOLDER_FILES.vae} is missing`);
  const vae = vaeConfigFromHeader(aePath, o.vae);
  const tokens = o.tokens ?? specialTokensFromFolder(dir);
  if (!tokens) throw new Error(`BAGEL folder ${dir}: the tokenizer files do not name ${Object.values(TOKEN_NAMES).join(', ')} (pass options.tokens)`);
  const config: ModelConfig = {
    name: `bagel-folder:${dir}`,
    llm,
    vit,
    vae,
    latentPatchSize: 2,
    maxLatentSize: o.maxLatentSize ?? 64,
    timestepFreqDim: 256,
    tokens,
  };
  validateConfig(config);
  return config;
}

/**
 * Loads a published BAGEL folder: the model from ema.safetensors (or model.safetensors, or
 * options.checkpoint) and the VAE from ae.safetensors, with the published key names. The conv
 * patch-embedding form [D, 3, p, p] is converted to the Linear(p*p*3) form; the fixed sin-cos
 * tables are recomputed. Strict by default: a missing, unexpected or shape-mismatched key is an
 * Error naming every such key; non-strict loads report them in `report`.
 */
export function loadBagelFolder(dir: string, o: BagelFolderOptions = {}): BagelFolder {
  const config = readBagelFolderConfig(dir, o);
  const file = o.checkpoint ?? (existsSync(join(dir, BAGEL_FOLDER_FILES.ema)) ? BAGEL_FOLDER_FILES.ema : BAGEL_FOLDER_FILES.model);
  const checkpointPath = join(dir, file);
  if (!existsSync(checkpointPath)) throw new Error(`BAGEL folder ${dir}: no checkpoint (${o.checkpoint ?? `${BAGEL_FOLDER_FILES.ema} or ${BAGEL_FOLDER_FILES.model}`})`);
  const dtype = o.dtype ?? 'float32';
  const model = new Bagel(config, { visualUnd: o.visualUnd, visualGen: o.visualGen });
  const vae = new AutoEncoder(config.vae);
  try {
    if (dtype !== 'float32') {
      model.toDtype(dtype);
      vae.toDtype(dtype);
    }
    const strict = o.strict ?? true;
    const { metadata: _m, ...modelReport } = loadCheckpoint(checkpointPath, model, { strict });
    const { metadata: _v, ignored: _i, ...vaeReport } = loadCheckpoint(join(dir, BAGEL_FOLDER_FILES.vae), vae, { strict });
    model.eval();
    vae.eval();
    const tj = join(dir, 'tokenizer.json');
    return { config, model, vae, tokenizerPath: existsSync(tj) ? tj : null, checkpointPath, report: { model: modelReport, vae: vaeReport } };
  } catch (e) {
    model.dispose();
    vae.dispose();
    throw e;
  }
}
