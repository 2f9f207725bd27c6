// The memory plan of one training step per device (docs/planner.md 4): resident state (weights,
// master copies, optimizer moments) plus, at each phase of the step, the gradients, activations
// and transient buffers alive then; the peak is the largest phase.
import type { ModelConfig } from '../model/index.js';
import {
  checkpointedLayerTerms, decoderLayerTerms, headTransient, layerBackwardTransient, outerTerms, sumTerms, type PackShape,
} from './activations.js';
import { countParameters, type LoraShape, type ParameterCounts } from './counts.js';
import { precisionBytes, type Precision } from './precision.js';

export const TRAIN_MODES = ['full', 'lora'] as const;
export type TrainMode = (typeof TRAIN_MODES)[number];
// The trainer's shard modes, so the planner cannot offer one the trainer lacks. Only the type
// comes from src/train: the planner (and scripts/device-check.sh, which carries src/plan without
// src/train's dependencies) must load without the trainer, so the list is spelled here and the
// compiler holds it equal to the trainer's in both directions (test/plan/cli.test.ts compares
// the values).
import type { ShardMode } from '../train/index.js';
export type { ShardMode };
export const PLAN_SHARD_MODES = ['none', 'grad', 'full'] as const satisfies readonly ShardMode[];
type Missing = Exclude<ShardMode, (typeof PLAN_SHARD_MODES)[number]>;
const noShardModeMissing: [Missing] extends [never] ? true : Missing = true;
void noShardModeMissing;

export interface PlanInput {
  model: ModelConfig;
  mode: TrainMode;
  precision: Precision;
  /** Data-parallel ranks, one device each. */
  devices: number;
  /** Memory of one device, bytes. */
  deviceMemory: number;
  pack: PackShape;
  activationCheckpointing: boolean;
  shard: ShardMode;
  /** Adapters of mode lora (the SFT config's lora.r and lora.targets). */
  lora?: LoraShape;
  /** Bytes of a device not available to tensors (runtime context, allocator slack). */
  reserve?: number;
  /**
   * The AdamW implementation of the step (src/nn OptimKernel): 'foreach' (default), the
   * multi-tensor operators that run on GPUs; 'fused', the single native pass that AdamW's 'auto'
   * takes for contiguous float32 CPU parameters, which holds no workspace (docs/planner.md 3).
   */
  optimizerKernel?: PlanOptimizerKernel;
}

export const PLAN_OPTIMIZER_KERNELS = ['foreach', 'fused'] as const;
export type PlanOptimizerKernel = (typeof PLAN_OPTIMIZER_KERNELS)[number];

/** What is alive at one moment of the step, beyond the resident weights and optimizer state. */
export interface Phase {
  name: string;
  gradients: number;
  activations: number;
  workspace: number;
}

export interface MemoryPlan {
  input: PlanInput;
  counts: ParameterCounts;
  /** Per device, bytes: weights (working, master, frozen), optimizer moments. */
  weights: number;
  optimizer: number;
  phases: Phase[];
  /** The phase with the most bytes, and its total (weights + optimizer + its three parts). */
  peak: Phase;
  total: number;
  reserve: number;
  fits: boolean;
}

const F32 = 4;
// src/train/shard/chunked-reduce.ts REDUCE_PIECE_ELEMENTS (src/plan takes no code from src/train)
const REDUCE_PIECE_ELEMENTS = 1 << 22;
const phaseBytes = (p: Phase): number => p.gradients + p.activations + p.workspace;

function checkInput(i: PlanInput): void {
  const errs: string[] = [];
  if (!(Number.isInteger(i.devices) && i.devices >= 1)) errs.push(`devices must be a positive integer, got ${i.devices}`);
  if (!(i.deviceMemory > 0)) errs.push(`device memory must be positive, got ${i.deviceMemory}`);
  if (!(Number.isInteger(i.pack.tokens) && i.pack.tokens >= 1)) errs.push(`tokens per pack must be a positive integer, got ${i.pack.tokens}`);
  const lens = i.pack.sampleLens.reduce((a, b) => a + b, 0);
  if (lens !== i.pack.tokens) errs.push(`sample lengths sum to ${lens}, not the ${i.pack.tokens} tokens of the pack`);
  if (i.pack.ceTokens + i.pack.latentTokens > i.pack.tokens) errs.push(`${i.pack.ceTokens} CE + ${i.pack.latentTokens} latent tokens exceed the ${i.pack.tokens} of the pack`);
  if (i.mode === 'lora' && !i.lora) errs.push('mode lora needs the adapters (lora.r and lora.targets)');
  if (i.shard !== 'none' && i.devices === 1) errs.push(`shard ${i.shard} needs more than one device`);
  if (i.optimizerKernel !== undefined && !(PLAN_OPTIMIZER_KERNELS as readonly string[]).includes(i.optimizerKernel)) {
    errs.push(`optimizer kernel must be one of ${PLAN_OPTIMIZER_KERNELS.join(', ')}, got ${JSON.stringify(i.optimizerKernel)}`);
  }
  if (errs.length) throw new Error(`memory plan: ${errs.join('; ')}`);
}

/** The per-device plan (docs/planner.md 4). */
export function planMemory(input: PlanInput, counts: ParameterCounts = countParameters(input.model, input.mode === 'lora' ? input.lora! : null)): MemoryPlan {
  checkInput(input);
  const b = precisionBytes(input.precision, input.mode === 'lora');
  const n = input.devices;
  const s = b.activation;
  const ck = input.activationCheckpointing;
  const shardAll = input.shard === 'full' ? n : 1; // weights split only under full sharding
  const shardState = input.shard === 'none' ? 1 : n; // gradients and optimizer state under grad and full

  // resident: working weights, the master copy (grad sharding keeps a copy of each rank's shard for
  // the optimizer, docs/sharding.md 1), frozen parameters, buffers and the VAE (float32 always), AdamW moments
  const T = counts.trainable;
  const master = input.shard === 'grad' ? Math.max(b.master, b.working) : b.master;
  const frozen = (counts.frozen - counts.buffers) * b.frozen + (counts.buffers + counts.vae) * F32;
  const weights = (T * b.working + frozen) / shardAll + (T * master) / shardState;
  const optimizer = (T * b.optimizer) / shardState;

  // gradients per unit (fp32 or bf16 by mode); a unit's whole gradient exists until it is
  // reduce-scattered, then only its shard (docs/sharding.md 3)
  // (bf16-mixed: the model's bfloat16 gradients in backward, widened to fp32 for the step)
  const unitGrad = counts.units.map((u) => u.trainable * b.backwardGradient);
  const headGrad = unitGrad[unitGrad.length - 1]!;
  const layerGrads = unitGrad.slice(1, -1);
  const L = layerGrads.length;
  const layerGrad = Math.max(0, ...layerGrads);
  const allGrad = T * b.gradient;
  // full sharding (docs/sharding.md 4): the embedding unit whole through the pack, the head unit
  // until the top layer's backward begins, two decoder layers whole at a time (the one
  // computing, the one gathered for the next)
  const unitBytes = counts.units.map((u) => u.trainable * b.working + u.frozen * b.frozen);
  const isFull = input.shard === 'full';
  const layersGathered = isFull ? unitBytes[0]! + 2 * Math.max(0, ...unitBytes.slice(1, -1)) : 0;
  const gathered = isFull ? layersGathered + unitBytes[unitBytes.length - 1]! : 0;
  // sharded: every unit's float32 gradient shard is kept from step to step (zeroed, not freed),
  // and a reduce-scatter holds a send and a receive piece (docs/sharding.md 2)
  const shardGrads = shardState > 1 ? (T * F32) / n : 0;
  const reducePieces = shardState > 1 ? 2 * F32 * Math.min(REDUCE_PIECE_ELEMENTS, Math.max(...counts.units.map((u) => u.trainable))) : 0;
  // whole gradients in the layers' backward: none and grad hold the head's and every finished
  // layer's until the pack ends; full reduces the head before the top layer's backward and each
  // layer once the backward has left it, so one layer's (docs/sharding.md 4)
  const lastLayers = isFull ? layerGrad : headGrad + layerGrad;
  const firstLayers = isFull ? layerGrad : headGrad + L * layerGrad;

  const lora = input.mode === 'lora' ? input.lora!.r : 0;
  const adapterBytes = input.mode === 'lora' ? b.working : s; // the adapters' own dtype
  const full = sumTerms(decoderLayerTerms(input.model, input.pack, s, lora, adapterBytes));
  const kept = ck ? sumTerms(checkpointedLayerTerms(input.model, input.pack, s)) : full;
  const outer = sumTerms(outerTerms(input.model, input.pack, s));
  const recompute = ck ? full : 0; // the one layer rebuilt for its backward
  const bwd = layerBackwardTransient(input.model, input.pack, s);

  const phases: Phase[] = [
    { name: 'forward end', gradients: shardGrads, activations: L * kept + outer, workspace: headTransient(input.model, input.pack, s) + gathered },
    { name: 'backward, loss head', gradients: shardGrads + headGrad, activations: L * kept + outer, workspace: headTransient(input.model, input.pack, s) + gathered },
    { name: 'backward, last decoder layer', gradients: shardGrads + lastLayers, activations: L * kept + outer + recompute, workspace: bwd + layersGathered + reducePieces },
    {
      name: 'backward, first decoder layer',
      gradients: shardGrads + firstLayers,
      activations: kept + outer + recompute, workspace: bwd + layersGathered + reducePieces,
    },
    // AdamW's multi-tensor step holds sqrt(v) for a whole group (src/nn/optim.ts): one fp32-sized
    // moment; the fused pass computes it element by element
    { name: 'optimizer step', gradients: allGrad / shardState, activations: 0, workspace: input.optimizerKernel === 'fused' ? 0 : optimizer / 2 },
  ];
  const peak = phases.reduce((a, p) => (phaseBytes(p) > phaseBytes(a) ? p : a));
  const total = weights + optimizer + phaseBytes(peak);
  const reserve = input.reserve ?? 0;
  return { input, counts, weights, optimizer, phases, peak, total, reserve, fits: total + reserve <= input.deviceMemory };
}
