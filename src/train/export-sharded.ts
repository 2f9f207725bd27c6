// `unicharacter export`: consolidates a checkpoint of a sharded run (shards/rank-R.safetensors,
// docs/sharding.md 6) into the published single-file layout (model.safetensors with BAGEL key
// names, docs/bagel-7b-mot-keys.md) and, for a one-character run, a character model folder. The
// model is rebuilt from the run's config.json as trainSft builds it (seed, init, LoRA), so the
// frozen parameters are the run's; the trainable ones are the saved chunks joined, exported as
// the run's own end does (float32 masters in bf16-mixed, docs/precision.md "Export").
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as torch from '../torch/index.js';
import { applyLoRA, removeLoRA, saveLoRA, type PrecisionMode } from '../nn/index.js';
import { Bagel, loadCheckpoint, saveCheckpoint, type ModelConfig } from '../model/index.js';
import { Tokenizer } from '../data/index.js';
import { CharacterModel } from '../character/index.js';
import { parseSftConfig } from './sft-config.js';
import { fewShotCharacter, modelConfigForTokenizer } from './sft-data.js';
import { loadCharacters } from './sft.js';
import { loadVae } from './vae-stage.js';
import { readLatestCheckpoint } from './run-dir.js';
import { ShardedModel, joinChunks, readRankFiles, readShardedJson } from './shard/index.js';

export interface ExportShardedOptions {
  /** The run directory (config.json, tokenizer.json, checkpoints/). */
  run: string;
  /** A checkpoint folder, or its name under checkpoints/ (step-N); default the latest. */
  checkpoint?: string;
  /** Where model.safetensors (and character/, adapter.safetensors) are written. */
  out: string;
  /** The character of the character model folder ('sample' or a RoleScape-20 folder); default
   * the run's config.data.characters when it names exactly one. */
  character?: string;
  /** Write no character model folder. */
  noCharacter?: boolean;
}

export interface ExportShardedResult {
  step: number;
  checkpoint: string;
  modelPath: string;
  adapterPath: string | null;
  characterModelPath: string | null;
}

function checkpointDir(root: string, name: string | undefined): { dir: string; step: number } {
  if (name === undefined) {
    const latest = readLatestCheckpoint(root);
    if (!latest) throw new Error(`export: ${root} has no checkpoint (checkpoints/latest is missing)`);
    return latest;
  }
  const dir = existsSync(join(root, 'checkpoints', name)) ? join(root, 'checkpoints', name) : resolve(name);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`export: no checkpoint folder '${name}' (looked in ${join(root, 'checkpoints')} and as a path)`);
  const m = /step-(\d+)$/.exec(dir);
  return { dir, step: m ? Number(m[1]) : -1 };
}

/** Consolidates a sharded checkpoint (see the file comment). */
export function exportShardedRun(o: ExportShardedOptions): ExportShardedResult {
  const root = resolve(o.run);
  const cfgPath = join(root, 'config.json');
  if (!existsSync(cfgPath)) throw new Error(`export: ${root} is not a training run (config.json is missing)`);
  const config = parseSftConfig(JSON.parse(readFileSync(cfgPath, 'utf8')), cfgPath);
  const ck = checkpointDir(root, o.checkpoint);
  const saved = readShardedJson(ck.dir).sharded;
  const tokPath = config.tokenizer ?? join(root, 'tokenizer.json');
  if (!existsSync(tokPath)) throw new Error(`export: the run's tokenizer ${tokPath} is missing`);
  const tok = Tokenizer.fromFile(tokPath);
  const vaePath = config.vae.path ?? join(root, 'vae', 'ae.safetensors');
  if (!existsSync(vaePath)) throw new Error(`export: the run's VAE ${vaePath} is missing`);
  const presetConfig = modelConfigForTokenizer(config.model, tok);
  const vae = loadVae(vaePath, presetConfig.vae);
  const mc: ModelConfig = { ...presetConfig, vae: structuredClone(vae.config) };
  // as trainSft builds it: the same seed gives the same frozen parameters
  torch.manualSeed(config.seed);
  const model = new Bagel(mc);
  let sharded: ShardedModel | null = null;
  try {
    if (config.init) loadCheckpoint(config.init, model);
    if (config.lora.enabled) applyLoRA(model, { targets: config.lora.targets, r: config.lora.r, alpha: config.lora.alpha, dropout: config.lora.dropout });
    sharded = new ShardedModel(model, { mode: 'grad', group: null, precision: saved.precision as PrecisionMode });
    loadWholeMasters(sharded, ck.dir, saved);
    sharded.prepareExport();
    sharded.exportWeights();
    mkdirSync(o.out, { recursive: true });
    let adapterPath: string | null = null;
    if (config.lora.enabled) {
      adapterPath = join(o.out, 'adapter.safetensors');
      saveLoRA(adapterPath, model, { base: config.init ?? '', model_config: JSON.stringify(mc) });
      removeLoRA(model, { merge: true });
    }
    const modelPath = join(o.out, 'model.safetensors');
    saveCheckpoint(modelPath, model);
    const characterModelPath = o.noCharacter ? null : writeCharacterFolder(o, config, model, vae, tok, mc, root, ck.step);
    return { step: ck.step, checkpoint: ck.dir, modelPath, adapterPath, characterModelPath };
  } finally {
    sharded?.dispose();
    model.dispose();
    vae.dispose();
  }
}

// Every unit's saved chunks joined into the one-process shard (world 1: the whole unit).
function loadWholeMasters(s: ShardedModel, dir: string, saved: ReturnType<typeof readShardedJson>['sharded']): void {
  const want = s.units.map((u) => `${u.key}:${u.numel}`).join(',');
  const have = saved.units.map((u) => `${u.key}:${u.numel}`).join(',');
  if (want !== have) throw new Error(`export: ${dir} holds units (${have}) that are not the run config's model (${want})`);
  const files = readRankFiles(dir, saved.world);
  try {
    torch.noGrad(() => torch.scope(() => {
      for (const u of s.units) {
        const whole = joinChunks(files, u.key, 'param', u.numel);
        if (!whole) throw new Error(`export: ${dir} has no ${u.key}.param`);
        u.shard.copy_(whole);
      }
    }));
  } finally {
    for (const f of files) for (const t of f.tensors.values()) t.dispose();
  }
}

function writeCharacterFolder(
  o: ExportShardedOptions, config: ReturnType<typeof parseSftConfig>, model: Bagel, vae: ReturnType<typeof loadVae>,
  tok: Tokenizer, mc: ModelConfig, root: string, step: number,
): string | null {
  const names = o.character !== undefined ? [o.character] : config.data.characters;
  if (names.length !== 1) return null; // a multi-character (base) run has no character folder
  let character = loadCharacters(names)[0]!;
  if (config.data.maxImages !== undefined) character = fewShotCharacter(character, config.data.maxImages);
  const dir = join(o.out, 'character');
  new CharacterModel(character, model, vae, tok, {
    format: 1, modelConfig: mc, imageSize: config.data.imageSize, provenance: { runDir: root, step },
  }).save(dir);
  return dir;
}
