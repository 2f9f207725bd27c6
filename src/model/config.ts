// Model sizes (docs/method.md 1.1). One config type covers the whole BAGEL layout: the MoT language
// model, the SigLIP-NaViT encoder with its connector, the FLUX-style VAE and the latent path.
// `bagel-7b-mot` holds the published sizes; `tiny` trains on a 2-core CPU in tests and the demo.

export interface LlmConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** GQA: key/value heads (numHeads must be a multiple). */
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
}

export interface VitConfig {
  hiddenSize: number;
  /** Layers actually built (the 7B checkpoint has 27; BAGEL builds 26, docs/method.md 1.1). */
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  patchSize: number;
  numChannels: number;
  layerNormEps: number;
  /** Side of the flattened position grid: id = row * maxNumPatchPerSide + col (docs/method.md 1.3). */
  maxNumPatchPerSide: number;
}

export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  /** Base channel count. */
  ch: number;
  chMult: number[];
  numResBlocks: number;
  zChannels: number;
  scaleFactor: number;
  shiftFactor: number;
  /** GroupNorm groups (32 in FLUX). */
  normGroups: number;
}

export interface SpecialTokens {
  /** `<|im_start|>` */
  bos: number;
  /** `<|im_end|>` */
  eos: number;
  /** `<|vision_start|>` */
  startOfImage: number;
  /** `<|vision_end|>` */
  endOfImage: number;
}

export interface ModelConfig {
  name: string;
  llm: LlmConfig;
  vit: VitConfig;
  vae: VaeConfig;
  /** Latent patch side (2: a token is 2x2 latent pixels, docs/method.md 1.4). */
  latentPatchSize: number;
  /** Side of the latent position grid in tokens (64 at 7B: at most 1024 px per side). */
  maxLatentSize: number;
  /** Width of the sinusoidal timestep features (256). */
  timestepFreqDim: number;
  tokens: SpecialTokens;
}

/** Pixels per VAE latent pixel: 2^(levels - 1). */
export function vaeDownsample(c: ModelConfig): number {
  return 2 ** (c.vae.chMult.length - 1);
}
/** Pixels per latent token side (16 at 7B). */
export function latentDownsample(c: ModelConfig): number {
  return vaeDownsample(c) * c.latentPatchSize;
}
/** Features of one latent token: p * p * z_channels (64 at 7B). */
export function latentTokenDim(c: ModelConfig): number {
  return c.latentPatchSize * c.latentPatchSize * c.vae.zChannels;
}
/** Features of one ViT patch: p * p * channels (588 at 7B). */
export function vitPatchDim(c: ModelConfig): number {
  return c.vit.patchSize * c.vit.patchSize * c.vit.numChannels;
}

/** The published BAGEL-7B-MoT sizes (docs/method.md 1.1 and 6.3; [ext] values from its llm/vit configs). */
export const BAGEL_7B_MOT: ModelConfig = {
  name: 'bagel-7b-mot',
  llm: {
    vocabSize: 152064,
    hiddenSize: 3584,
    numLayers: 28,
    numHeads: 28,
    numKvHeads: 4,
    headDim: 128,
    intermediateSize: 18944,
    rmsNormEps: 1e-6,
    ropeTheta: 1e6,
    maxPositionEmbeddings: 32768,
  },
  vit: {
    hiddenSize: 1152,
    numLayers: 26,
    numHeads: 16,
    intermediateSize: 4304,
    patchSize: 14,
    numChannels: 3,
    layerNormEps: 1e-6,
    maxNumPatchPerSide: 70,
  },
  vae: {
    inChannels: 3,
    outChannels: 3,
    ch: 128,
    chMult: [1, 2, 4, 4],
    numResBlocks: 2,
    zChannels: 16,
    scaleFactor: 0.3611,
    shiftFactor: 0.1159,
    normGroups: 32,
  },
  latentPatchSize: 2,
  maxLatentSize: 64,
  timestepFreqDim: 256,
  tokens: { bos: 151644, eos: 151645, startOfImage: 151652, endOfImage: 151653 },
};

/**
 * The smallest model with the same structure (LLM 2 x 64): for unit tests and smoke runs, where
 * what matters is behaviour, not quality. Its shapes are far too small to keep a CPU busy (each
 * step is bound by operator launches), so speed targets are measured on `tiny`.
 */
export const MICRO: ModelConfig = {
  name: 'micro',
  llm: {
    vocabSize: 512,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 128,
    rmsNormEps: 1e-6,
    ropeTheta: 1e6,
    maxPositionEmbeddings: 4096,
  },
  vit: {
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 64,
    patchSize: 14,
    numChannels: 3,
    layerNormEps: 1e-6,
    maxNumPatchPerSide: 16,
  },
  vae: {
    inChannels: 3,
    outChannels: 3,
    ch: 32,
    chMult: [1, 2, 2],
    numResBlocks: 1,
    zChannels: 4,
    scaleFactor: 0.3611,
    shiftFactor: 0.1159,
    normGroups: 32,
  },
  latentPatchSize: 2,
  maxLatentSize: 16,
  timestepFreqDim: 256,
  tokens: { bos: 508, eos: 509, startOfImage: 510, endOfImage: 511 },
};

/**
 * A CPU-sized model with the same structure (docs/method.md 6.4: shrink widths and depths only): LLM
 * 4 layers x 256 (8 query / 4 KV heads of 32, MLP 1024), ViT 2 x 32, the 4x-downsampling VAE.
 * 64x64 images give a 16x16 latent and 8x8 = 64 latent tokens of 16 features. The four special
 * tokens take the last ids of the vocabulary (512 here; training resizes it to the tokenizer's).
 */
export const TINY: ModelConfig = {
  ...structuredClone(MICRO),
  name: 'tiny',
  llm: { ...MICRO.llm, hiddenSize: 256, numLayers: 4, numHeads: 8, numKvHeads: 4, headDim: 32, intermediateSize: 512 },
};

/**
 * Between \`tiny\` and the published size (method.md 6.4: the published shapes scaled down): the
 * LLM is Qwen2-0.5B's layer (896 wide, 14 query / 2 KV heads of 64, MLP 4864) at 8 layers with
 * both experts, a 16384-token vocabulary, a ViT of 6 x 384 (SigLIP's 16 heads and MLP ratio
 * scaled to 6 heads of 64, MLP 1536) and the 4x-downsampling VAE with the published 16 latent
 * channels. About 0.3 B parameters: big enough that weights, optimizer state and activations
 * are each a measurable share of memory on a CPU, small enough to train a step there
 * (docs/planner.md checks the memory planner against it).
 */
export const SMALL: ModelConfig = {
  name: 'small',
  llm: {
    vocabSize: 16384,
    hiddenSize: 896,
    numLayers: 8,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    intermediateSize: 4864,
    rmsNormEps: 1e-6,
    ropeTheta: 1e6,
    maxPositionEmbeddings: 32768,
  },
  vit: {
    hiddenSize: 384,
    numLayers: 6,
    numHeads: 6,
    intermediateSize: 1536,
    patchSize: 14,
    numChannels: 3,
    layerNormEps: 1e-6,
    maxNumPatchPerSide: 32,
  },
  vae: {
    inChannels: 3,
    outChannels: 3,
    ch: 64,
    chMult: [1, 2, 4],
    numResBlocks: 2,
    zChannels: 16,
    scaleFactor: 0.3611,
    shiftFactor: 0.1159,
    normGroups: 32,
  },
  latentPatchSize: 2,
  maxLatentSize: 32,
  timestepFreqDim: 256,
  tokens: { bos: 16380, eos: 16381, startOfImage: 16382, endOfImage: 16383 },
};

export const PRESETS: Record<string, ModelConfig> = { micro: MICRO, tiny: TINY, small: SMALL, 'bagel-7b-mot': BAGEL_7B_MOT };

/** A preset by name, optionally with overrides of top-level sections (deep-copied). */
export function modelConfig(name: keyof typeof PRESETS | string, overrides: Partial<ModelConfig> = {}): ModelConfig {
  const base = PRESETS[name];
  if (!base) throw new Error(`unknown model preset '${name}' (known: ${Object.keys(PRESETS).join(', ')})`);
  const c = structuredClone(base);
  return { ...c, ...structuredClone(overrides) };
}

/** Throws an Error naming every inconsistency of a config. */
export function validateConfig(c: ModelConfig): void {
  const errs: string[] = [];
  const { llm, vit, vae } = c;
  if (llm.numHeads % llm.numKvHeads !== 0) errs.push(`llm.numHeads ${llm.numHeads} is not a multiple of numKvHeads ${llm.numKvHeads}`);
  if (llm.headDim % 2 !== 0) errs.push(`llm.headDim ${llm.headDim} must be even (RoPE)`);
  if (llm.hiddenSize % 4 !== 0) errs.push(`llm.hiddenSize ${llm.hiddenSize} must be a multiple of 4 (2-D sin-cos tables)`);
  if (vit.hiddenSize % vit.numHeads !== 0) errs.push(`vit.hiddenSize ${vit.hiddenSize} is not a multiple of vit.numHeads ${vit.numHeads}`);
  if (vae.ch % vae.normGroups !== 0) errs.push(`vae.ch ${vae.ch} is not a multiple of vae.normGroups ${vae.normGroups}`);
  for (const [k, v] of Object.entries(c.tokens)) {
    if (!(v >= 0 && v < llm.vocabSize)) errs.push(`tokens.${k} = ${v} is outside the vocabulary (${llm.vocabSize})`);
  }
  if (errs.length) throw new Error(`invalid model config '${c.name}':\n  ${errs.join('\n  ')}`);
}
