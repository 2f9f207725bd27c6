// The checks a character model folder passes before anything is allocated for it (docs/architecture.md,
// "The character runtime"): a damaged or hostile folder (a model folder is a download like any
// other) gets an error naming the file and what is wrong, never a crash or a huge allocation.
// The manifest's model config is range-checked field by field, then the model it declares is
// built on the meta device (shapes, no memory) and its size compared with the weights the
// safetensors files really hold: a manifest that declares a model far larger than its files is
// refused before the real model is built.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ITEM_SIZE, safetensors, withDefaultDevice } from '../torch/index.js';
import { AutoEncoder, Bagel, validateConfig, type ModelConfig } from '../model/index.js';
import { CharacterSchema, type Character } from '../data/index.js';
import type { Module } from '../nn/index.js';
import { CHARACTER_MODEL_FILES, type CharacterModelManifest } from './manifest.js';

/** A manifest is a few KB; anything past this is not one. */
export const MAX_MANIFEST_BYTES = 1 << 20;

// Bounds far above every preset (bagel-7b-mot included) and below what would make even the meta
// build slow (one module per layer) or the shapes overflow.
const count = (max: number) => z.number().int().min(1).max(max);
const positive = z.number().positive().finite();
const LlmSchema = z.object({
  vocabSize: count(1 << 22), hiddenSize: count(1 << 16), numLayers: count(256), numHeads: count(1024), numKvHeads: count(1024),
  headDim: count(4096), intermediateSize: count(1 << 18), rmsNormEps: positive, ropeTheta: positive, maxPositionEmbeddings: count(1 << 20),
});
const VitSchema = z.object({
  hiddenSize: count(1 << 16), numLayers: count(256), numHeads: count(1024), intermediateSize: count(1 << 18), patchSize: count(64),
  numChannels: count(16), layerNormEps: positive, maxNumPatchPerSide: count(1024),
});
const VaeSchema = z.object({
  inChannels: count(16), outChannels: count(16), ch: count(4096), chMult: z.array(count(64)).min(1).max(8), numResBlocks: count(16),
  zChannels: count(1024), scaleFactor: z.number().finite(), shiftFactor: z.number().finite(), normGroups: count(1024),
});
const token = z.number().int().min(0);
const ModelConfigSchema = z.object({
  name: z.string(), llm: LlmSchema, vit: VitSchema, vae: VaeSchema, latentPatchSize: count(16), maxLatentSize: count(1024),
  timestepFreqDim: count(1 << 14), tokens: z.object({ bos: token, eos: token, startOfImage: token, endOfImage: token }),
});
const ManifestSchema = z.object({
  format: z.literal(1, { errorMap: () => ({ message: 'unknown character model format (this program reads format 1)' }) }),
  modelConfig: ModelConfigSchema,
  imageSize: count(4096),
  provenance: z.record(z.union([z.string(), z.number()])),
});

/** The first problem of a failed parse as `path.to.field: message`. */
function firstIssue(e: z.ZodError): string {
  const i = e.issues[0]!;
  return `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`;
}

/** The path of a folder's file; an error naming it when it is missing. */
export function requireFile(dir: string, name: string): string {
  const p = join(dir, name);
  if (!existsSync(p)) throw new Error(`${dir}: not a character model folder (${name} is missing)`);
  return p;
}

/** Reads and checks unicharacter.json; errors start with its path. */
export function readManifest(dir: string): CharacterModelManifest {
  const path = requireFile(dir, CHARACTER_MODEL_FILES.manifest);
  try {
    const size = statSync(path).size;
    if (size > MAX_MANIFEST_BYTES) throw new Error(`${size} bytes is too large for a manifest (at most ${MAX_MANIFEST_BYTES})`);
    const json = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    const parsed = ManifestSchema.safeParse(json);
    if (!parsed.success) throw new Error(firstIssue(parsed.error));
    // The parsed copy only vouches for the fields; the original keeps any others (the model reads them).
    const manifest = json as CharacterModelManifest;
    validateConfig(manifest.modelConfig);
    return manifest;
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Reads and checks character.json (images held as bytes are revived by `reviver`). */
export function readCharacterFile(dir: string, reviver: (key: string, value: unknown) => unknown): Character {
  const path = requireFile(dir, CHARACTER_MODEL_FILES.character);
  try {
    const parsed = CharacterSchema.safeParse(JSON.parse(readFileSync(path, 'utf8'), reviver));
    if (!parsed.success) throw new Error(firstIssue(parsed.error));
    return parsed.data;
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Bytes of a module's state dict (parameters and persistent buffers) in its own dtypes. */
function stateBytes(m: Module): number {
  let n = 0;
  for (const { shape, dtype } of m.stateDictInfo().values()) n += shape.reduce((a, d) => a * d, 1) * ITEM_SIZE[dtype];
  return n;
}

/** Bytes of the module `build` makes (on the meta device: no memory), which is then disposed. */
function metaBytes(build: () => Module): number {
  const m = build();
  try {
    return stateBytes(m);
  } finally {
    m.dispose();
  }
}

const gb = (n: number): string => `${(n / 2 ** 30).toFixed(n < 2 ** 30 ? 3 : 1)} GiB`;

/**
 * Refuses a manifest whose model would need more memory than its weight files could fill: the
 * model (built on the meta device) against model.safetensors, the VAE against ae.safetensors.
 * A file may hold half-width floats (bfloat16 into a float32 model), hence the factor 2; the
 * loader then checks every name and shape (loadCheckpoint).
 */
export function checkDeclaredSize(dir: string, config: ModelConfig, files?: { model: string; vae: string }): void {
  const manifestPath = join(dir, CHARACTER_MODEL_FILES.manifest);
  // A LoRA folder's weights are its base's files (docs/serving.md 10).
  const held = (name: string): number => {
    const path = files ? (name === CHARACTER_MODEL_FILES.model ? files.model : files.vae) : requireFile(dir, name);
    return safetensors.loadHeader(path).dataSize;
  };
  const refuse = (name: string, need: number, have: number, least = ''): Error =>
    new Error(`${manifestPath}: declares a model of ${least}${gb(need)} in ${name}, but that file holds ${gb(have)} of weights; refused before allocating it`);
  const fits = (need: number, have: number): boolean => need <= 2 * have + (1 << 20);
  // The two sin-cos tables are computed in JavaScript even on the meta device: their closed-form
  // size comes first (embeddings.ts PositionEmbedding; both are as wide as the LLM).
  const modelHeld = held(CHARACTER_MODEL_FILES.model);
  const tables = 4 * config.llm.hiddenSize * (config.maxLatentSize ** 2 + config.vit.maxNumPatchPerSide ** 2);
  if (!fits(tables, modelHeld)) throw refuse(CHARACTER_MODEL_FILES.model, tables, modelHeld, 'at least ');
  let sizes: [number, number];
  try {
    sizes = withDefaultDevice('meta', () => [metaBytes(() => new Bagel(config)), metaBytes(() => new AutoEncoder(config.vae))]);
  } catch (e) {
    throw new Error(`${manifestPath}: the model config does not build (${(e as Error).message})`);
  }
  if (!fits(sizes[0], modelHeld)) throw refuse(CHARACTER_MODEL_FILES.model, sizes[0], modelHeld);
  const vaeHeld = held(CHARACTER_MODEL_FILES.vae);
  if (!fits(sizes[1], vaeHeld)) throw refuse(CHARACTER_MODEL_FILES.vae, sizes[1], vaeHeld);
}

/** A tokenizer with ids the model's embedding lacks would index past it on the first reply. */
export function checkTokenizerFits(dir: string, tokenizerVocab: number, config: ModelConfig): void {
  if (tokenizerVocab > config.llm.vocabSize) {
    throw new Error(`${join(dir, CHARACTER_MODEL_FILES.tokenizer)}: ${tokenizerVocab} tokens, more than the model's vocabulary of ${config.llm.vocabSize} (${CHARACTER_MODEL_FILES.manifest} llm.vocabSize)`);
  }
}
