// `unicharacter plan`: the memory planner (docs/planner.md) on a preset or a model config file.
// Flags are checked here and every one changes the plan; a bad value is an error naming it.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { PRESETS, modelConfig, validateConfig, type ModelConfig } from '../model/index.js';
import { SftConfigSchema } from '../train/index.js';
import {
  PRECISIONS, PLAN_OPTIMIZER_KERNELS, PLAN_SHARD_MODES, TRAIN_MODES, isPrecision, parseBytes, planMemory, planTable, type PackShape, type PlanOptimizerKernel, type ShardMode, type TrainMode,
} from '../plan/index.js';

export const PLAN_HELP = `unicharacter plan --model <preset|file> --tokens-per-pack T [options]

Per-device memory of one training step (weights, gradients, optimizer state, activations,
workspace) and whether it fits; the model is built on the meta device to count its parameters.
See docs/planner.md for the formulas.

  --model <preset|file>        ${Object.keys(PRESETS).join(', ')}, or a JSON/YAML model config: a full
                               config, or { base: <preset>, llm: {...}, vit: {...}, vae: {...} }
                               overriding sections of a preset
  --mode full|lora             train every weight but the VAE, or LoRA adapters only (default full)
  --precision P                ${PRECISIONS.join(' | ')} (default fp32)
  --devices N                  data-parallel devices (default 1)
  --device-memory SIZE         memory of one device, e.g. 80GiB, 80GB, 24GiB (default 80GiB)
  --tokens-per-pack T          tokens of one pack on one device (required)
  --sample-tokens L            tokens per sample: attention is within a sample (default T: one
                               sample); the last sample takes the remainder
  --ce-tokens N                tokens with a cross-entropy target (default T/2)
  --latent-tokens N            latent (generated image) tokens (default T/2)
  --activation-checkpointing   recompute each decoder layer in backward
  --shard none|grad|full       shard gradients and optimizer state (grad) or also weights (full)
                               over the devices (default none)
  --lora-r R                   adapter rank of --mode lora (default: the SFT config's, ${SftConfigSchema.shape.lora.parse(undefined).r})
  --reserve SIZE               memory of a device not available to tensors: runtime context,
                               allocator slack (default 2GiB)
  --optimizer-kernel K         foreach (default: AdamW's multi-tensor step, what GPUs run) or
                               fused (the single native pass AdamW takes for float32 CPU tensors;
                               it holds no sqrt(v) workspace)
  --help                       this text
`;

function positiveInt(v: string | undefined, flag: string, fallback?: number): number {
  if (v === undefined) {
    if (fallback === undefined) throw new Error(`${flag} is required (unicharacter plan --help)`);
    return fallback;
  }
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`${flag} must be a positive integer, got '${v}'`);
  return n;
}

function nonNegativeInt(v: string | undefined, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`${flag} must be a non-negative integer, got '${v}'`);
  return n;
}

function oneOf<T extends string>(v: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`${flag} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** A preset by name, or a model config file (full, or `base` plus section overrides). */
export function resolveModel(spec: string): ModelConfig {
  if (spec in PRESETS) return modelConfig(spec);
  if (!existsSync(spec)) throw new Error(`--model '${spec}' is neither a preset (${Object.keys(PRESETS).join(', ')}) nor a file`);
  const raw = YAML.parse(readFileSync(spec, 'utf8')) as Record<string, unknown> | null;
  if (!raw || typeof raw !== 'object') throw new Error(`--model ${spec}: not a JSON/YAML object`);
  const { base, ...rest } = raw as { base?: unknown } & Record<string, unknown>;
  let c: ModelConfig;
  if (base !== undefined) {
    if (typeof base !== 'string' || !(base in PRESETS)) throw new Error(`--model ${spec}: base must be a preset (${Object.keys(PRESETS).join(', ')}), got ${JSON.stringify(base)}`);
    const b = modelConfig(base);
    const merged = { ...b, name: `${b.name} (${spec})` } as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(rest)) {
      if (!(k in b)) throw new Error(`--model ${spec}: unknown key '${k}'`);
      const cur = merged[k];
      merged[k] = cur && typeof cur === 'object' && !Array.isArray(cur) && v && typeof v === 'object' ? { ...cur, ...v } : v;
    }
    c = merged as unknown as ModelConfig;
  } else {
    for (const k of ['llm', 'vit', 'vae', 'tokens'] as const) if (!(k in rest)) throw new Error(`--model ${spec}: a full config needs '${k}' (or give base: <preset>)`);
    c = { name: spec, latentPatchSize: 2, maxLatentSize: 64, timestepFreqDim: 256, ...rest } as unknown as ModelConfig;
  }
  validateConfig(c);
  return c;
}

/** Sample lengths of L tokens each, the last taking the remainder. */
export function splitSamples(tokens: number, sample: number): number[] {
  const lens: number[] = [];
  for (let left = tokens; left > 0; left -= sample) lens.push(Math.min(sample, left));
  return lens;
}

export function planCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      mode: { type: 'string', default: 'full' },
      precision: { type: 'string', default: 'fp32' },
      devices: { type: 'string' },
      'device-memory': { type: 'string', default: '80GiB' },
      'tokens-per-pack': { type: 'string' },
      'sample-tokens': { type: 'string' },
      'ce-tokens': { type: 'string' },
      'latent-tokens': { type: 'string' },
      'activation-checkpointing': { type: 'boolean', default: false },
      shard: { type: 'string', default: 'none' },
      'lora-r': { type: 'string' },
      reserve: { type: 'string', default: '2GiB' },
      'optimizer-kernel': { type: 'string', default: 'foreach' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(PLAN_HELP);
    return 0;
  }
  if (positionals.length) throw new Error(`plan takes no positional arguments, got '${positionals.join(' ')}' (unicharacter plan --help)`);
  if (!values.model) throw new Error('--model is required (unicharacter plan --help)');
  const model = resolveModel(values.model);
  const mode = oneOf<TrainMode>(values.mode!, TRAIN_MODES, '--mode');
  if (!isPrecision(values.precision!)) throw new Error(`--precision must be one of ${PRECISIONS.join(', ')}, got '${values.precision}'`);
  const shard = oneOf<ShardMode>(values.shard!, PLAN_SHARD_MODES, '--shard');
  if (values['lora-r'] !== undefined && mode !== 'lora') throw new Error('--lora-r applies to --mode lora only');
  const tokens = positiveInt(values['tokens-per-pack'], '--tokens-per-pack');
  const sample = positiveInt(values['sample-tokens'], '--sample-tokens', tokens);
  if (sample > tokens) throw new Error(`--sample-tokens ${sample} exceeds --tokens-per-pack ${tokens}`);
  const pack: PackShape = {
    tokens,
    sampleLens: splitSamples(tokens, sample),
    ceTokens: nonNegativeInt(values['ce-tokens'], '--ce-tokens', Math.floor(tokens / 2)),
    latentTokens: nonNegativeInt(values['latent-tokens'], '--latent-tokens', Math.floor(tokens / 2)),
  };
  const loraDefaults = SftConfigSchema.shape.lora.parse(undefined);
  const plan = planMemory({
    model, mode, precision: values.precision, shard, pack,
    devices: positiveInt(values.devices, '--devices', 1),
    deviceMemory: parseBytes(values['device-memory']!),
    activationCheckpointing: values['activation-checkpointing']!,
    lora: { r: positiveInt(values['lora-r'], '--lora-r', loraDefaults.r), targets: loraDefaults.targets },
    reserve: parseBytes(values.reserve!, { allowZero: true }),
    optimizerKernel: oneOf<PlanOptimizerKernel>(values['optimizer-kernel']!, PLAN_OPTIMIZER_KERNELS, '--optimizer-kernel'),
  });
  console.log(planTable(plan).join('\n'));
  return plan.fits ? 0 : 3;
}
