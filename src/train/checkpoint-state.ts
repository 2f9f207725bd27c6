// The contents of a checkpoint folder for a model trained with an optimizer: everything a resumed
// run needs to continue bit for bit on the CPU (docs/architecture.md "Training": weights, optimizer,
// RNG, data position). Unlike the reference (docs/method.md 2.6, [quirk]), the EMA is saved too.
//
//   model.safetensors       Module.stateDict (parameters and persistent buffers)
//   optimizer.safetensors   Optimizer.stateDict, parameter groups in the metadata
//   ema.safetensors         EMA averages, the update count in the metadata (when an EMA is given)
//   rng.safetensors         torch.getRngState() of the CPU generator
//   master.safetensors      float32 master weights (precision 'bf16-mixed', docs/precision.md)
//   state.json              JSON state: data position, JS random generators, the precision mode
//                           and activation checkpointing, anything else
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import { loadModule, loadOptimizer, saveModule, saveOptimizer, type EMA, type Module, type Optimizer } from '../nn/index.js';

/** A piece of JS-side state that round-trips through JSON (data position, a seeded JS RNG). */
export interface JsonStateful {
  getState(): unknown;
  setState(state: unknown): void;
}

/** What runTraining needs from a run's state: write it into a folder, read it back. */
export interface TrainingState {
  save(dir: string): void | Promise<void>;
  load(dir: string): void | Promise<void>;
  /** Sharded runs (docs/sharding.md 6): every rank writes its own shard of checkpoint `step` before rank 0's save. */
  saveShard?(step: number): void | Promise<void>;
}

export interface CheckpointStateParts {
  model: Module;
  optimizer?: Optimizer<any, any>;
  ema?: EMA;
  /** Save and restore the global CPU generator (torch.getRngState; default true). */
  torchRng?: boolean;
  /** Where the data stream stands (e.g. jsonState({ epoch: 0, index: 0 })). */
  data?: JsonStateful;
  /** Seeded JS random generators, by name. */
  rngs?: Record<string, JsonStateful>;
  /** Any other JSON state, by name. */
  extra?: Record<string, JsonStateful>;
  /**
   * The precision mode (docs/precision.md) and its master weights: recorded in state.json, with
   * the masters in master.safetensors; a resume in another mode is an error.
   */
  precision?: PrecisionStateful;
}

/** What a checkpoint needs from the training precision (MixedPrecision in src/nn). */
export interface PrecisionStateful {
  mode: string;
  activationCheckpointing?: boolean;
  masterStateDict(): Map<string, torch.Tensor>;
  loadMasterStateDict(state: Map<string, torch.Tensor>, where?: string): void;
}

export const CHECKPOINT_FILES = {
  model: 'model.safetensors',
  optimizer: 'optimizer.safetensors',
  ema: 'ema.safetensors',
  rng: 'rng.safetensors',
  master: 'master.safetensors',
  json: 'state.json',
} as const;

interface JsonFile {
  version: 1;
  data?: unknown;
  rngs: Record<string, unknown>;
  extra: Record<string, unknown>;
  /** Absent in checkpoints written before precision modes: those are 'fp32'. */
  precision?: { mode: string; activationCheckpointing: boolean };
}

/**
 * A JsonStateful over a plain mutable object: getState deep-copies it, setState replaces its
 * fields in place (so code holding the object sees the restored values).
 */
export function jsonState<T extends object>(target: T): JsonStateful & { value: T } {
  return {
    value: target,
    getState: () => structuredClone(target),
    setState: (s: unknown) => {
      for (const k of Object.keys(target)) delete (target as Record<string, unknown>)[k];
      Object.assign(target, structuredClone(s));
    },
  };
}

function collect(parts: Record<string, JsonStateful> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(parts ?? {})) out[k] = s.getState();
  return out;
}

function restore(kind: string, parts: Record<string, JsonStateful> | undefined, saved: Record<string, unknown>, path: string): void {
  const want = Object.keys(parts ?? {}).sort();
  const have = Object.keys(saved).sort();
  const missing = want.filter((k) => !(k in saved));
  const unexpected = have.filter((k) => !(parts && k in parts));
  if (missing.length || unexpected.length) {
    throw new Error(
      `${path}: ${kind} state does not match: ` +
        [missing.length ? `missing ${missing.join(', ')}` : '', unexpected.length ? `unexpected ${unexpected.join(', ')}` : '']
          .filter(Boolean).join('; '),
    );
  }
  for (const k of want) parts![k]!.setState(saved[k]);
}

/** The TrainingState of a model, its optimizer, an optional EMA, the RNGs and the data position. */
export function checkpointState(parts: CheckpointStateParts): TrainingState {
  const torchRng = parts.torchRng ?? true;
  return {
    save(dir: string): void {
      saveModule(join(dir, CHECKPOINT_FILES.model), parts.model);
      if (parts.optimizer) saveOptimizer(join(dir, CHECKPOINT_FILES.optimizer), parts.optimizer);
      if (parts.ema) {
        const ema = parts.ema;
        torch.scope(() => torch.safetensors.save(join(dir, CHECKPOINT_FILES.ema), ema.stateDict(), {
          decay: String(ema.decay),
          updates: String(ema.updates),
        }));
      }
      if (torchRng) {
        torch.scope(() => torch.safetensors.save(join(dir, CHECKPOINT_FILES.rng), { cpu: torch.getRngState() }));
      }
      const json: JsonFile = { version: 1, rngs: collect(parts.rngs), extra: collect(parts.extra) };
      if (parts.data) json.data = parts.data.getState();
      const p = parts.precision;
      if (p) {
        json.precision = { mode: p.mode, activationCheckpointing: p.activationCheckpointing ?? false };
        torch.scope(() => {
          const m = p.masterStateDict();
          if (m.size) torch.safetensors.save(join(dir, CHECKPOINT_FILES.master), m, { precision: p.mode });
        });
      }
      writeFileSync(join(dir, CHECKPOINT_FILES.json), JSON.stringify(json, null, 2) + '\n');
    },

    load(dir: string): void {
      const need = (name: string): string => {
        const p = join(dir, name);
        if (!existsSync(p)) throw new Error(`checkpoint ${dir} has no ${name}`);
        return p;
      };
      // Read and check everything that can be checked before changing anything.
      const jsonPath = need(CHECKPOINT_FILES.json);
      const json = JSON.parse(readFileSync(jsonPath, 'utf8')) as JsonFile;
      if (parts.data && !('data' in json)) throw new Error(`${jsonPath}: no data position saved`);
      const savedMode = json.precision?.mode ?? 'fp32';
      const want = parts.precision?.mode ?? 'fp32';
      if (savedMode !== want) {
        throw new Error(`${jsonPath}: this checkpoint was trained with precision '${savedMode}' and cannot resume as '${want}'; ` +
          `resume with precision '${savedMode}' (config \`precision\` or --precision): a run keeps one precision mode (docs/precision.md)`);
      }
      // bf16-mixed with nothing to master (float32 LoRA adapters only) writes no master file
      const masterPath = parts.precision && savedMode === 'bf16-mixed' ? join(dir, CHECKPOINT_FILES.master) : null;
      loadModule(need(CHECKPOINT_FILES.model), parts.model);
      if (parts.optimizer) loadOptimizer(need(CHECKPOINT_FILES.optimizer), parts.optimizer);
      if (masterPath) {
        const p = parts.precision!;
        torch.scope(() => p.loadMasterStateDict(existsSync(masterPath) ? torch.safetensors.load(masterPath).tensors : new Map(), masterPath));
      }
      if (parts.ema) {
        const ema = parts.ema;
        const path = need(CHECKPOINT_FILES.ema);
        torch.scope(() => {
          const { tensors, metadata } = torch.safetensors.load(path);
          ema.loadStateDict(tensors);
          ema.updates = Number(metadata['updates'] ?? 0);
        });
      }
      if (torchRng) {
        const path = need(CHECKPOINT_FILES.rng);
        torch.scope(() => {
          const t = torch.safetensors.load(path).tensors.get('cpu');
          if (!t) throw new Error(`${path}: no 'cpu' generator state`);
          torch.setRngState(t);
        });
      }
      restore('rngs', parts.rngs, json.rngs ?? {}, jsonPath);
      restore('extra', parts.extra, json.extra ?? {}, jsonPath);
      if (parts.data) parts.data.setState(json.data);
    },
  };
}
