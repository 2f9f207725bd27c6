// `unicharacter train vae|sft|base|grpo` and `unicharacter customize`: thin wrappers over
// src/train that read a config file and flags, join a process group when launched with
// `unicharacter launch` (or torchrun), and print where the results went.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import * as torch from '../torch/index.js';
import { modelConfig } from '../model/index.js';
import { TRAIN_HELP } from './train-help.js';
import {
  loadSftConfig, tinySftConfig, trainSft, trainBase, trainVae, customize, baseCharacterModel, loadCharacters, loadSizedCharacterImages, vaeImageSpec, trainGrpo, grpoConfigFrom,
  parseFaceIdentitySetting, GRPO_PRESETS, CHECKLIST_ANSWERERS, type GrpoConfig, type SftConfig,
} from '../train/index.js';
import { CHARACTER_MODEL_FILES } from '../character/index.js';
import { parsePrecisionMode, type PrecisionMode } from '../nn/index.js';

/** --precision and --activation-checkpointing as config keys (only those given on the command line). */
function precisionFlags(values: { precision?: string; 'activation-checkpointing'?: boolean }): { precision?: PrecisionMode; activationCheckpointing?: boolean } {
  return {
    ...(values.precision !== undefined ? { precision: parsePrecisionMode(values.precision, '--precision') } : {}),
    ...(values['activation-checkpointing'] ? { activationCheckpointing: true } : {}),
  };
}

/** --shard none|grad|full as the config key `shard` (docs/sharding.md 1); only when given. */
function shardFlag(values: { shard?: string }): { shard?: 'none' | 'grad' | 'full' } {
  const v = values.shard;
  if (v === undefined) return {};
  if (v !== 'none' && v !== 'grad' && v !== 'full') throw new Error(`--shard must be one of none, grad, full, got ${JSON.stringify(v)}`);
  return { shard: v };
}

function groupFromEnv(): torch.ProcessGroup | null {
  return process.env.WORLD_SIZE && Number(process.env.WORLD_SIZE) > 1 ? torch.ProcessGroup.fromEnv() : null;
}

function sftConfigFrom(path: string | undefined): SftConfig {
  return path ? loadSftConfig(path) : tinySftConfig();
}

function need(value: string | undefined, flag: string, usage: string): string {
  if (!value) throw new Error(`${flag} is required\nusage: ${usage}`);
  return value;
}

export async function trainCommand(args: string[]): Promise<number> {
  const [stage, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' },
      run: { type: 'string' },
      resume: { type: 'boolean', default: false },
      from: { type: 'string' },
      epochs: { type: 'string' },
      'blip-vqa': { type: 'string' },
      'face-identity': { type: 'string' },
      'checklist-answerer': { type: 'string' },
      preset: { type: 'string' },
      precision: { type: 'string' },
      'activation-checkpointing': { type: 'boolean' },
      shard: { type: 'string' },
    },
  });
  const usage = `unicharacter train ${stage ?? '<stage>'} --config <file> --run <dir>`;
  switch (stage) {
    case 'vae': {
      const cfg = sftConfigFrom(values.config);
      const run = need(values.run, '--run', usage);
      const mc = modelConfig(cfg.model);
      const images = await loadSizedCharacterImages(loadCharacters(cfg.data.characters), vaeImageSpec(mc, cfg.data.imageSize, cfg.data.imageSizing));
      const v = cfg.vae;
      const r = await trainVae({
        images, config: mc.vae, steps: v.steps, lr: v.lr, batchSize: v.batchSize, klWeight: v.klWeight, calibrate: v.calibrate,
        seed: v.seed, sampleEvery: v.sampleEvery, saveEvery: v.saveEvery, runDir: run, resume: values.resume,
      });
      images.forEach((t) => t.dispose());
      r.vae?.dispose();
      if (r.interrupted) console.log(`stopped at step ${r.step} (checkpoint saved); continue with --resume`);
      else console.log(`VAE written to ${join(run, 'ae.safetensors')}`);
      return 0;
    }
    case 'sft':
    case 'base': {
      const cfg = { ...sftConfigFrom(values.config), ...precisionFlags(values), ...shardFlag(values) };
      const run = need(values.run, '--run', usage);
      const train = stage === 'sft' ? trainSft : trainBase;
      const r = await train(cfg, { runDir: run, resume: values.resume, group: groupFromEnv() });
      if (r.vaeStage?.interrupted) console.log(`stopped in the VAE stage at step ${r.vaeStage.step} (checkpoint in ${join(run, 'vae')}); continue with --resume`);
      else if (r.interrupted) console.log(`stopped at step ${r.step}; continue with --resume`);
      else console.log(`weights: ${r.modelPath}${r.characterModelPath ? `\ncharacter model: ${r.characterModelPath}` : ''}`);
      return 0;
    }
    case 'grpo': {
      const grpoUsage = 'unicharacter train grpo --from <character model dir | sft run> --run <dir> [--config <file>] [--epochs N] [--blip-vqa <dir>] [--face-identity auto|on|off] [--preset reference|project] [--checklist-answerer model|caption-knn|checklist-probe|auto] [--precision fp32|bf16-mixed|bf16] [--activation-checkpointing] [--shard none|grad|full]';
      const faceIdentity = values['face-identity'] === undefined ? undefined : parseFaceIdentitySetting(values['face-identity'], '--face-identity');
      let from = need(values.from, '--from', grpoUsage);
      if (!existsSync(join(from, CHARACTER_MODEL_FILES.manifest)) && existsSync(join(from, 'character', CHARACTER_MODEL_FILES.manifest))) from = join(from, 'character');
      const file = values.config ? (values.config.endsWith('.json') ? JSON.parse(readFileSync(values.config, 'utf8')) : YAML.parse(readFileSync(values.config, 'utf8'))) : {};
      // Flags override the file; the result is checked by the one GRPO schema (GrpoConfigSchema).
      const blipVqa = values['blip-vqa'];
      if (blipVqa && !existsSync(blipVqa)) throw new Error(`--blip-vqa: no folder ${blipVqa}`);
      const f = (file ?? {}) as Record<string, unknown> & { rewards?: Record<string, unknown> & { scorers?: Record<string, unknown> } };
      const rewards = { ...(f.rewards ?? {}), ...(faceIdentity ? { faceIdentity } : {}), ...(blipVqa ? { scorers: { ...(f.rewards?.scorers ?? {}), blipVqaDir: blipVqa } } : {}) };
      const preset = values.preset;
      if (preset !== undefined && !(GRPO_PRESETS as readonly string[]).includes(preset)) throw new Error(`--preset must be 'reference' or 'project', got ${JSON.stringify(preset)}`);
      const answererFlag = values['checklist-answerer'];
      if (answererFlag !== undefined && !(CHECKLIST_ANSWERERS as readonly string[]).includes(answererFlag)) {
        throw new Error(`--checklist-answerer must be one of ${CHECKLIST_ANSWERERS.join(', ')}, got ${JSON.stringify(answererFlag)}`);
      }
      const cfg: GrpoConfig = grpoConfigFrom({ ...f, rewards, ...(preset ? { preset } : {}), ...(answererFlag ? { checklistAnswerer: answererFlag } : {}), ...(values.epochs ? { epochs: Number(values.epochs) } : {}), ...precisionFlags(values), ...shardFlag(values) }, from, need(values.run, '--run', grpoUsage));
      const r = await trainGrpo(cfg, { resume: values.resume, group: groupFromEnv() });
      console.log(`character model: ${r.modelDir}`);
      return 0;
    }
    default:
      console.error(`unknown training stage '${stage ?? ''}'\n${TRAIN_HELP}`);
      return 2;
  }
}

export async function customizeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      base: { type: 'string' },
      run: { type: 'string' },
      mode: { type: 'string', default: 'full' },
      steps: { type: 'string' },
      'max-images': { type: 'string' },
      resume: { type: 'boolean', default: false },
      precision: { type: 'string' },
      'activation-checkpointing': { type: 'boolean' },
      shard: { type: 'string' },
    },
  });
  const usage = 'unicharacter customize <character> --base <run> --run <dir> [--mode full|lora] [--steps N] [--max-images N] [--precision fp32|bf16-mixed|bf16] [--activation-checkpointing] [--shard none|grad|full]';
  if (positionals.length !== 1) throw new Error(`usage: ${usage}`);
  if (values.mode !== 'full' && values.mode !== 'lora') throw new Error(`--mode must be 'full' or 'lora', got '${values.mode}'`);
  const count = (v: string | undefined, flag: string, min: number): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`${flag} must be an integer of at least ${min}, got '${v}'`);
    return Number(v);
  };
  const steps = count(values.steps, '--steps', 0);
  const maxImages = count(values['max-images'], '--max-images', 1);
  if (steps === 0) {
    // No training: the base as the character's model before customization (for evaluation).
    if (values.mode !== 'full' || values.resume) throw new Error('--steps 0 writes the untrained base as a full character model: it takes neither --mode lora nor --resume');
    const dir = baseCharacterModel(positionals[0]!, { base: need(values.base, '--base', usage), out: need(values.run, '--run', usage), ...(maxImages ? { maxImages } : {}) });
    console.log(`character model (the base, not customized): ${dir}`);
    return 0;
  }
  const r = await customize(positionals[0]!, {
    base: need(values.base, '--base', usage), runDir: need(values.run, '--run', usage), mode: values.mode, resume: values.resume,
    ...(maxImages ? { maxImages } : {}),
    group: groupFromEnv(), config: { ...(steps ? { totalSteps: steps } : {}), ...precisionFlags(values), ...shardFlag(values) },
  });
  console.log(r.characterModelPath ? `character model: ${r.characterModelPath}` : `adapter: ${r.adapterPath}`);
  return 0;
}
