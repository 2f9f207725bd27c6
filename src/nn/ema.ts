// Exponential moving average of a model's parameters (docs/method.md 2.6: decay 0.9999, updated every
// step): shadow <- decay * shadow + (1 - decay) * param, as BAGEL's fsdp_ema_update does.
import { noGrad, scope, type Tensor } from '../torch/index.js';
import type { LoadOptions, LoadResult, Module } from './module.js';
import { describeLoadResult } from './module.js';

export class EMA {
  /** The averaged copy of each parameter, by dotted name (owned by this object). */
  readonly shadow = new Map<string, Tensor>();
  /** Number of update() calls so far. */
  updates = 0;

  /**
   * Starts the average at the model's current parameters (all of them, or the trainable ones), or
   * at the given tensors by name (e.g. float32 master weights, MixedPrecision.namedParams()).
   */
  constructor(
    model: Module | Map<string, Tensor>,
    readonly decay = 0.9999,
    options: { trainableOnly?: boolean } = {},
  ) {
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`EMA: decay must be in [0, 1], got ${decay}`);
    noGrad(() => scope(() => {
      const named = model instanceof Map ? [...model] : model.namedParameters(options);
      for (const [n, p] of named) this.shadow.set(n, p.detach().clone().keep());
    }));
  }

  private pairs(model: Module | Map<string, Tensor>): [Tensor, Tensor][] {
    const params = model instanceof Map ? model : new Map(model.namedParameters());
    const out: [Tensor, Tensor][] = [];
    for (const [n, s] of this.shadow) {
      const p = params.get(n);
      if (!p) throw new Error(`EMA: the model has no parameter '${n}'`);
      out.push([s, p]);
    }
    return out;
  }

  /** shadow <- decay * shadow + (1 - decay) * param, for every tracked parameter. */
  update(model: Module | Map<string, Tensor>): void {
    const pairs = this.pairs(model);
    noGrad(() => scope(() => {
      for (const [s, p] of pairs) s.mul_(this.decay).add_(p, 1 - this.decay);
    }));
    this.updates++;
  }

  /** Writes the averages into the model's parameters (e.g. for evaluation or export). */
  copyTo(model: Module): void {
    const pairs = this.pairs(model);
    noGrad(() => scope(() => {
      for (const [s, p] of pairs) p.copy_(s);
    }));
  }

  /** Resets the averages to the model's current parameters. */
  copyFrom(model: Module): void {
    const pairs = this.pairs(model);
    noGrad(() => scope(() => {
      for (const [s, p] of pairs) s.copy_(p);
    }));
  }

  /** The averages by parameter name, as new handles (a state dict the model itself can load). */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, s] of this.shadow) out.set(n, s.detach());
    return out;
  }

  /** Copies saved averages in (strict by default, reporting keys by name like Module.loadStateDict). */
  loadStateDict(state: Map<string, Tensor>, options: LoadOptions = {}): LoadResult {
    const r: LoadResult = { missing: [], unexpected: [], mismatched: [] };
    const todo: [Tensor, Tensor][] = [];
    for (const [n, s] of this.shadow) {
      const src = state.get(n);
      if (!src) r.missing.push(n);
      else if (src.shape.join() !== s.shape.join()) r.mismatched.push({ key: n, expected: s.shape, got: src.shape });
      else todo.push([s, src]);
    }
    for (const k of state.keys()) if (!this.shadow.has(k)) r.unexpected.push(k);
    if ((options.strict ?? true) && (r.missing.length || r.unexpected.length || r.mismatched.length)) {
      throw new Error(describeLoadResult('EMA', r));
    }
    noGrad(() => scope(() => {
      for (const [s, src] of todo) s.copy_(src);
    }));
    return r;
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
    this.shadow.clear();
  }
}
