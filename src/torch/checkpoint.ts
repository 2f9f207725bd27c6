// Activation checkpointing (docs/precision.md section 3): run a piece of the forward without
// keeping its intermediates, and recompute it in backward. The node is native
// (native/src/checkpoint.cc); this file keeps the JS pieces it calls back.
import { native } from './native.js';
import { Tensor } from './tensor.js';
import { enableGrad, isGradEnabled, noGrad } from './autograd.js';
import { handOver, scope } from './lifetime.js';
import { getRngState, setRngState } from './runtime.js';
import { zeros } from './creation.js';

export type CheckpointFn = (inputs: Tensor[]) => Tensor | Tensor[];

export interface CheckpointOptions {
  /**
   * Whether the piece has trainable parameters of its own (they are not inputs): then a node is
   * made even when no input requires a gradient (the first layer above a frozen embedding).
   */
  hasTrainableParameters?: boolean;
  /** Save the CPU generator's state and replay it in the recompute (default true): dropout repeats. */
  preserveRng?: boolean;
}

interface Entry {
  fn: CheckpointFn;
  preserveRng: boolean;
  dummy: boolean;
}

const entries = new Map<number, Entry>();
let nextId = 1;
let initialised = false;

function drain(): void {
  for (const id of native.checkpointReleased()) entries.delete(id);
}

// Called by the native node's backward on this thread: saved inputs and output gradients in,
// the inputs' gradients out (handles handed over: the native side releases them).
function recompute(id: number, savedIds: number[], gradIds: (number | null)[]): (number | null)[] {
  const e = entries.get(id);
  if (!e) throw new Error(`activation checkpoint ${id}: its forward is gone (was the graph used twice?)`);
  return scope(() => {
    const saved = savedIds.map((i) => new Tensor(i));
    const grads = gradIds.map((i) => (i === null ? null : new Tensor(i)));
    const n = saved.length - (e.preserveRng ? 1 : 0) - (e.dummy ? 1 : 0);
    const inputs = saved.slice(0, n).map((t) => {
      const d = t.detach();
      return t.requiresGrad ? d.requiresGrad_(true) : d;
    });
    let outs: Tensor[];
    if (e.preserveRng) {
      const now = getRngState();
      setRngState(saved[n]!);
      try {
        outs = enableGrad(() => toList(e.fn(inputs)));
      } finally {
        setRngState(now);
      }
    } else {
      outs = enableGrad(() => toList(e.fn(inputs)));
    }
    const roots: Tensor[] = [];
    const seeds: Tensor[] = [];
    outs.forEach((o, i) => {
      const g = grads[i];
      if (g && o.requiresGrad) {
        roots.push(o);
        seeds.push(g);
      }
    });
    if (roots.length) native.backward(roots.map((t) => t.id), seeds.map((t) => t.id), false, false);
    return saved.map((_, i) => {
      if (i >= n) return null;
      const g = inputs[i]!.requiresGrad ? inputs[i]!.grad : null;
      return g ? handOver(g) : null;
    });
  });
}

function toList(r: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(r) ? r : [r];
}

/**
 * fn(inputs) without recording a graph; in backward fn runs again with gradients on and is
 * backpropagated through, so gradients equal those of running fn directly (the same operations
 * in the same order). Every tensor fn reads besides module parameters and long-lived state must
 * be in `inputs` (they are saved with the node; other tensors may be gone by backward). Without
 * gradient mode, or when nothing could receive a gradient, this is fn(inputs). Gradients reach
 * parameters through backward() only (autograd.grad with respect to parameters inside fn does
 * not see them).
 */
export function checkpoint(fn: CheckpointFn, inputs: Tensor[], o: CheckpointOptions = {}): Tensor | Tensor[] {
  const needs = isGradEnabled() && (o.hasTrainableParameters || inputs.some((t) => t.requiresGrad));
  if (!needs) return fn(inputs);
  if (!initialised) {
    native.checkpointInit(recompute);
    initialised = true;
  }
  drain();
  const preserveRng = o.preserveRng ?? true;
  return scope(() => {
    const rng = preserveRng ? getRngState() : null;
    const result = noGrad(() => fn(inputs));
    const single = !Array.isArray(result);
    const outs = toList(result);
    // A node is only made when an input requires a gradient: a dummy one stands in when only the
    // parameters inside fn do.
    const dummy = !inputs.some((t) => t.requiresGrad);
    const saved = [...inputs, ...(rng ? [rng] : []), ...(dummy ? [zeros([]).requiresGrad_(true)] : [])];
    const id = nextId++;
    entries.set(id, { fn, preserveRng, dummy });
    const wrapped = native.checkpointApply(id, saved.map((t) => t.id), outs.map((t) => t.id)).map((i) => new Tensor(i));
    return single ? wrapped[0]! : wrapped;
  });
}

/** Checkpoint nodes alive on this thread (tests check none leak). */
export function liveCheckpoints(): number {
  drain();
  return native.checkpointLive();
}
