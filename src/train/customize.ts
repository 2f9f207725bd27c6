// Base training and per-character customization (docs/architecture.md "Training"; the paper's few-shot step).
// `trainBase` is Unified-SFT over a set of characters (e.g. 19 RoleScape-20 characters);
// `customize` continues from a base run on one new character with about ten reference images
// plus its examples, and exports a full checkpoint (a CharacterModel folder) or a LoRA adapter
// over the shared base. The base's tokenizer, VAE and model sizes are reused as they are.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tokenizer, type Character } from '../data/index.js';
import * as torch from '../torch/index.js';
import { Bagel, loadCheckpoint, type ModelConfig } from '../model/index.js';
import { CharacterModel } from '../character/index.js';
import { parseSftConfig, type SftConfig, type SftConfigInput } from './sft-config.js';
import { fewShotCharacter, modelConfigForTokenizer } from './sft-data.js';
import { loadCharacters, trainSft, type TrainSftOptions, type TrainSftResult } from './sft.js';
import { loadVae } from './vae-stage.js';

/** Unified-SFT over several characters (config.data.characters, or o.characters). */
export async function trainBase(config: SftConfigInput, o: TrainSftOptions): Promise<TrainSftResult> {
  const c = parseSftConfig(config);
  if (c.export !== 'full') throw new Error('trainBase: a base run exports full weights (export: "full")');
  return trainSft(c, o);
}

export interface CustomizeOptions extends Omit<TrainSftOptions, 'characters'> {
  /** The base run directory (model.safetensors, tokenizer.json, config.json and its VAE). */
  base: string;
  /** 'full' (default): a full checkpoint and CharacterModel folder; 'lora': an adapter only. */
  mode?: 'full' | 'lora';
  /** Reference images kept for the few-shot step (default 10). */
  maxImages?: number;
  /** Overrides of the customization config (steps, lr, lora rank, ...). */
  config?: SftConfigInput;
}

/** The stored, resolved config of a finished base run, and the files customization reuses. */
export function readBaseRun(base: string): { config: SftConfig; model: string; tokenizer: string; vae: string } {
  const root = resolve(base);
  const need = (p: string, what: string): string => {
    if (!existsSync(p)) throw new Error(`${root} is not a finished base run: ${what} (${p}) is missing`);
    return p;
  };
  const config = parseSftConfig(JSON.parse(readFileSync(need(join(root, 'config.json'), 'config.json'), 'utf8')), join(root, 'config.json'));
  return {
    config,
    model: need(join(root, 'model.safetensors'), 'the final weights'),
    tokenizer: need(join(root, 'tokenizer.json'), 'the tokenizer'),
    vae: need(config.vae.path ?? join(root, 'vae', 'ae.safetensors'), 'the VAE'),
  };
}

/**
 * Customizes a base to one character: SFT from the base weights, with the base's tokenizer, VAE
 * and sizes, on the character's first `maxImages` images and all its text examples.
 * `character` is a Character or a name for config.data.characters ('sample' or a folder).
 */
export async function customize(character: Character | string, o: CustomizeOptions): Promise<TrainSftResult> {
  const base = readBaseRun(o.base);
  const mode = o.mode ?? 'full';
  const over = o.config ?? {};
  const b = base.config;
  const config = parseSftConfig({
    ...b,
    totalSteps: 100,
    saveEvery: 50,
    ...over,
    model: b.model,
    init: base.model,
    tokenizer: base.tokenizer,
    vae: { ...b.vae, path: base.vae },
    data: {
      ...b.data,
      ...over.data,
      characters: typeof character === 'string' ? [character] : [character.id],
      maxImages: o.maxImages ?? over.data?.maxImages ?? 10,
      imageSize: b.data.imageSize,
      vitImageSize: b.data.vitImageSize,
    },
    lora: { ...b.lora, ...over.lora, enabled: mode === 'lora' || (over.lora?.enabled ?? false) },
    export: mode,
  }, 'customize config');
  const characters = typeof character === 'string' ? loadCharacters([character]) : [character];
  return trainSft(config, { ...o, characters });
}

/**
 * The model before customization as a character model folder: the base's final weights, tokenizer
 * and VAE with the character's card (its first `maxImages` images, as customize keeps), written to
 * `<out>/character`, untrained. The "before" column of an evaluation of a customization.
 */
export function baseCharacterModel(character: Character | string, o: { base: string; out: string; maxImages?: number }): string {
  const base = readBaseRun(o.base);
  const c = typeof character === 'string' ? loadCharacters([character])[0]! : character;
  const tok = Tokenizer.fromFile(base.tokenizer);
  const preset = modelConfigForTokenizer(base.config.model, tok);
  const vae = loadVae(base.vae, preset.vae);
  const mc: ModelConfig = { ...preset, vae: structuredClone(vae.config) };
  torch.manualSeed(base.config.seed);
  const model = new Bagel(mc);
  try {
    loadCheckpoint(base.model, model);
    const dir = join(resolve(o.out), 'character');
    new CharacterModel(fewShotCharacter(c, o.maxImages ?? 10), model, vae, tok, {
      format: 1, modelConfig: mc, imageSize: base.config.data.imageSize, provenance: { runDir: resolve(o.base), stage: 'base (not customized)' },
    }).save(dir);
    return dir;
  } finally {
    model.dispose();
    vae.dispose();
  }
}
