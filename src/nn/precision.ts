// Training precision modes (docs/precision.md): where the weights, gradients and optimizer state
// of a model live while it trains.
//
//   fp32        float32 everything (the default).
//   bf16-mixed  the model (forward and backward) in bfloat16; every trainable parameter has a
//               float32 master copy that the optimizer updates (so its state is float32 too);
//               gradients are moved into float32 after every backward and reduced there; after
//               each step the masters are rounded into the model again.
//   bf16        bfloat16 everything: the optimizer updates the bfloat16 weights in place and its
//               state is bfloat16 (no float32 copy anywhere).
//
// Norms, softmax and the losses run in float32 inside the model in both bf16 modes
// (docs/precision.md section 2); this file only owns the weights.
import { noGrad, ops, scope, type Tensor } from '../torch/index.js';
import type { Module } from './module.js';
import { isAdapterKey } from './lora.js';

export const PRECISION_MODES = ['fp32', 'bf16-mixed', 'bf16'] as const;
export type PrecisionMode = (typeof PRECISION_MODES)[number];

export function isPrecisionMode(x: unknown): x is PrecisionMode {
  return typeof x === 'string' && (PRECISION_MODES as readonly string[]).includes(x);
}

/** A precision mode from a flag or config value; an error naming `where` for anything else. */
export function parsePrecisionMode(x: unknown, where = 'precision'): PrecisionMode {
  if (isPrecisionMode(x)) return x;
  throw new Error(`${where} must be one of ${PRECISION_MODES.join(', ')}, got ${JSON.stringify(x)}`);
}

/** The dtype a mode runs the model's forward and backward in. */
export function computeDtype(mode: PrecisionMode): 'float32' | 'bfloat16' {
  return mode === 'fp32' ? 'float32' : 'bfloat16';
}

/**
 * The trainable parameters of a model in a precision mode. Build it once the model has its final
 * set of trainable parameters (after loading and attaching LoRA, in float32); it converts the
 * model to the mode's compute dtype. The optimizer is then built over `params`, and a training
 * step reads: forward + backward -> collectGradients() (after each backward) -> reduce / clip /
 * optimizer.step() on `params` -> syncModel().
 */
export class MixedPrecision {
  /** What the optimizer updates: the float32 masters in bf16-mixed, else the model's own parameters. */
  readonly params: Tensor[];
  /** [model parameter, float32 master] pairs (bf16-mixed only). */
  private readonly pairs: [Tensor, Tensor][] = [];
  /** Dotted names of `params`, in the same order. */
  readonly names: string[];
  /** Dotted names of the masters (the `pairs`), in the same order. */
  private readonly masterNames: string[] = [];

  /**
   * @param model in float32 (parameters of other dtypes are left alone).
   * @param activationCheckpointing recorded beside the mode in checkpoints (docs/precision.md).
   */
  constructor(readonly model: Module, readonly mode: PrecisionMode, readonly activationCheckpointing = false) {
    const named = model.namedParameters({ trainableOnly: true });
    this.names = named.map(([n]) => n);
    // bf16-mixed keeps LoRA adapters float32 themselves (they are small; their branch runs in
    // float32 over the bfloat16 base, docs/precision.md section 4): they need no master.
    const stayFloat32 = new Set(mode === 'bf16-mixed' ? named.filter(([n]) => isAdapterKey(n)).map(([, p]) => p) : []);
    const masters = new Map<Tensor, Tensor>();
    if (mode === 'bf16-mixed') {
      noGrad(() => scope(() => {
        for (const [n, p] of named) {
          if (stayFloat32.has(p)) continue;
          const m = p.detach().to('float32').clone().keep();
          this.pairs.push([p, m]);
          this.masterNames.push(n);
          masters.set(p, m);
        }
      }));
    }
    // Parameters only: buffers (fixed position tables) stay float32 and are cast where they are added.
    if (mode !== 'fp32') {
      noGrad(() => scope(() => {
        for (const p of model.parameters()) {
          if (p.dtype !== 'float32' || stayFloat32.has(p)) continue;
          p.grad = null;
          ops.set_data(p, p.to('bfloat16'));
        }
      }));
    }
    this.params = named.map(([, p]) => masters.get(p) ?? p);
  }

  /** The optimizer's tensors by parameter name (the masters in bf16-mixed). */
  namedParams(): Map<string, Tensor> {
    return new Map(this.names.map((n, i) => [n, this.params[i]!]));
  }

  /**
   * bf16-mixed: adds each model gradient, widened to float32, into its master's gradient and
   * drops the bfloat16 one, so accumulation over packs or micro-steps happens in float32. Call it
   * after every backward. A no-op in the other modes (the gradients already sit on `params`).
   */
  collectGradients(): void {
    if (this.mode !== 'bf16-mixed') return;
    noGrad(() => {
      for (const [p, m] of this.pairs) {
        const g = p.grad;
        if (g === null) continue;
        scope(() => {
          const wide = g.to('float32');
          const acc = m.grad;
          if (acc === null) m.grad = wide.clone();
          else acc.add_(wide);
        });
        p.grad = null;
        g.dispose();
      }
    });
  }

  /** bf16-mixed: rounds the updated masters into the model's bfloat16 weights (after optimizer.step). */
  syncModel(): void {
    if (this.mode !== 'bf16-mixed') return;
    noGrad(() => scope(() => {
      for (const [p, m] of this.pairs) p.copy_(m);
    }));
  }

  /** The masters by name (bf16-mixed; empty otherwise), as new handles: the checkpoint's master file. */
  masterStateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.pairs.forEach(([, m], i) => out.set(this.masterNames[i]!, m.detach()));
    return out;
  }

  /** Restores the masters from masterStateDict() (same names and shapes) and re-rounds the model. */
  loadMasterStateDict(state: Map<string, Tensor>, where = 'master weights'): void {
    if (this.mode !== 'bf16-mixed') return;
    const missing = this.masterNames.filter((n) => !state.has(n));
    const unexpected = [...state.keys()].filter((k) => !this.masterNames.includes(k));
    if (missing.length || unexpected.length) {
      throw new Error(`${where}: master weights do not match the trainable parameters` +
        (missing.length ? `; missing ${missing.join(', ')}` : '') + (unexpected.length ? `; unexpected ${unexpected.join(', ')}` : ''));
    }
    noGrad(() => scope(() => {
      this.pairs.forEach(([, m], i) => {
        const name = this.masterNames[i]!;
        const src = state.get(name)!;
        if (src.shape.join() !== m.shape.join()) throw new Error(`${where}: ${name} has shape [${src.shape}], the parameter [${m.shape}]`);
        if (src.dtype !== 'float32') throw new Error(`${where}: ${name} is ${src.dtype}, master weights are float32`);
        m.copy_(src);
      });
    }));
    this.syncModel();
  }

  /**
   * For export at the end of a run: bf16-mixed puts each trainable parameter back in float32 with
   * its master's exact values (frozen ones stay bfloat16); the other modes leave the model as it is.
   * The model is not meant to train on afterwards.
   */
  exportWeights(): void {
    if (this.mode !== 'bf16-mixed') return;
    noGrad(() => scope(() => {
      for (const [p, m] of this.pairs) {
        p.grad = null;
        ops.set_data(p, m.clone());
      }
    }));
  }

  /** Frees the masters (and their gradients). */
  dispose(): void {
    for (const [, m] of this.pairs) {
      m.grad = null;
      m.dispose();
    }
    this.pairs.length = 0;
  }
}
