// Sharded data parallel of a model's trainable parameters (docs/sharding.md): `grad` (ZeRO-2:
// gradients, optimizer state and a master copy of the parameters sharded, the parameters whole)
// and `full` (ZeRO-3 / FSDP FULL_SHARD: the parameters too; a unit is whole only while it is
// used). The optimizer is built over `params`, one flat shard per unit. A step reads:
//   zeroGrad() -> per pack: beforeForward(), forward, backward, collectGradients()
//   -> clipGradNorm(max) -> optimizer.step() -> afterStep().
import {
  ITEM_SIZE, empty, isGradEnabled, noGrad, ops, resizeStorage, scope, tensor, zeros, type PendingCollective, type ProcessGroup, type Tensor,
} from '../../torch/index.js';
import { isAdapterKey, type Module, type PrecisionMode } from '../../nn/index.js';
import type { Bagel } from '../../model/index.js';
import { layerOf, unitLayouts, type UnitLayout } from './units.js';
import { beforeBackward } from './backward-hook.js';
import { reduceScatterInPieces } from './chunked-reduce.js';

export const SHARD_MODES = ['none', 'grad', 'full'] as const;
export type ShardMode = (typeof SHARD_MODES)[number];

export interface ShardOptions {
  mode: 'grad' | 'full';
  /** The ranks a unit is sharded over (null: one process). */
  group: ProcessGroup | null;
  /** Hybrid sharding (docs/sharding.md 5): the ranks holding the same shard, gradients all-reduced over them. */
  replicas?: ProcessGroup | null;
  precision: PrecisionMode;
  /** full: gather the next layer while this one computes (default true). */
  prefetch?: boolean;
  /** Elements per piece of a gradient reduce-scatter (docs/sharding.md 2; default REDUCE_PIECE_ELEMENTS). */
  reducePieceElements?: number;
}

/** One unit: its parameters (views of `flat`), this rank's shard and its gradient. */
export interface ShardUnit extends UnitLayout {
  params: Tensor[];
  /** The whole unit in the compute dtype; its storage is freed while the unit is not whole (full). */
  flat: Tensor;
  /** This rank's chunk in the master dtype: what the optimizer updates. */
  shard: Tensor;
  /** float32 sum over ranks and packs of this rank's chunk of the gradient (null until the first pack). */
  grad: Tensor | null;
  whole: boolean;
  pending: { work: PendingCollective | null; local: Tensor | null } | null;
  /** This pack's gradients are reduced (or the unit had no backward yet). */
  reduced: boolean;
  /** full: this pack's forward passes through the layer with a backward hook, and the hooks backward has reached. */
  passes: number;
  backwards: number;
}

export class ShardedModel {
  readonly units: ShardUnit[];
  /** The optimizer's tensors: one flat shard per unit. */
  readonly params: Tensor[];
  readonly rank: number;
  readonly world: number;
  readonly mode: 'grad' | 'full';
  readonly precision: PrecisionMode;
  private readonly layerUnits = new Map<number, ShardUnit>();
  private pinned = false;
  private exported: Tensor[] | null = null;

  constructor(readonly model: Bagel, readonly o: ShardOptions) {
    this.mode = o.mode;
    this.precision = o.precision;
    this.rank = o.group?.rank ?? 0;
    this.world = o.group?.worldSize ?? 1;
    const named = model.namedParameters({ trainableOnly: true });
    const byName = new Map(named);
    const layouts = unitLayouts(named.map(([name, p]) => ({ name, shape: p.shape })), this.world);
    const masterDtype = o.precision === 'bf16' ? 'bfloat16' : 'float32';
    // masters from the float32 weights, before the model is converted to its compute dtype
    const shards = noGrad(() => layouts.map((l) => scope(() => this.flatOf(l.names.map((n) => byName.get(n)!), l).narrow(0, this.rank * l.size, l.size).to(masterDtype).clone().keep())));
    convertModel(model, o.precision);
    this.units = layouts.map((l, i) => this.makeUnit(l, l.names.map((n) => byName.get(n)!), shards[i]!));
    this.params = this.units.map((u) => u.shard);
    for (const u of this.units) {
      const li = layerOf(u.key);
      if (li !== null) this.layerUnits.set(li, u);
    }
    if (this.mode === 'full') {
      for (const u of this.units) this.free(u);
      model.language_model.model.layerHook = (i, run, h) => this.runLayer(i, run, h);
    }
  }

  /** Concatenation of the parameters, zero-padded to the unit's padded size (a new tensor). */
  private flatOf(ps: Tensor[], l: UnitLayout, dtype?: 'float32'): Tensor {
    const parts = ps.map((p) => p.detach().reshape([-1]));
    if (l.padded > l.numel) parts.push(zeros([l.padded - l.numel], { dtype: ps[0]!.dtype, device: ps[0]!.device }));
    const f = ops.cat(parts, 0);
    return dtype && f.dtype !== dtype ? f.to(dtype) : f;
  }

  // The unit's parameters become views of one flat buffer (docs/sharding.md 3).
  private makeUnit(l: UnitLayout, params: Tensor[], shard: Tensor): ShardUnit {
    const dtype = params[0]!.dtype;
    const bad = params.findIndex((p) => p.dtype !== dtype);
    if (bad >= 0) throw new Error(`sharding: unit '${l.key}' mixes ${dtype} (${l.names[0]}) and ${params[bad]!.dtype} (${l.names[bad]}) parameters; a unit is one flat buffer of one dtype`);
    const flat = noGrad(() => scope(() => {
      const f = empty([l.padded], { dtype, device: params[0]!.device });
      if (l.padded > l.numel) f.narrow(0, l.numel, l.padded - l.numel).zero_();
      params.forEach((p, i) => {
        const view = f.narrow(0, l.offsets[i]!, p.numel).view(p.shape);
        view.copy_(p);
        p.grad = null;
        ops.set_data(p, view);
      });
      return f.keep();
    }));
    return { ...l, params, flat, shard, grad: null, whole: true, pending: null, reduced: true, passes: 0, backwards: 0 };
  }

  // ---- gather and free (docs/sharding.md 2, 3) ----

  private startGather(u: ShardUnit): void {
    if (u.whole || u.pending) return;
    noGrad(() => {
      resizeStorage(u.flat, u.padded * itemBytes(u.flat));
      const local = u.shard.dtype === u.flat.dtype ? null : u.shard.to(u.flat.dtype).keep();
      const src = local ?? u.shard;
      if (!this.o.group) {
        u.flat.copy_(src);
        u.pending = { work: null, local };
      } else {
        u.pending = { work: this.o.group.allGatherInto(src, u.flat, { async: true }), local };
      }
    });
  }

  private ensureWhole(u: ShardUnit): void {
    if (u.whole) return;
    this.startGather(u);
    const p = u.pending!;
    p.work?.wait();
    p.local?.dispose();
    u.pending = null;
    u.whole = true;
  }

  private free(u: ShardUnit): void {
    if (this.mode !== 'full' || this.pinned || !u.whole) return;
    resizeStorage(u.flat, 0);
    u.whole = false;
  }

  /** Every unit whole until unpin() (sampling, export); a collective: every rank calls it. */
  pin(): void {
    for (const u of this.units) this.startGather(u);
    for (const u of this.units) this.ensureWhole(u);
    this.pinned = true;
  }

  unpin(): void {
    this.pinned = false;
    for (const u of this.units) this.free(u);
  }

  // ---- forward and backward (full) ----

  /** Before each pack's forward: the embedding and head units whole (full). */
  beforeForward(): void {
    if (this.pinned) this.unpin();
    for (const u of this.units) {
      u.reduced = false;
      u.passes = 0;
      u.backwards = 0;
    }
    if (this.mode !== 'full') return;
    for (const u of this.units) if (layerOf(u.key) === null) this.startGather(u);
    const first = this.layerUnits.get(0);
    if (first && this.o.prefetch !== false) this.startGather(first);
    for (const u of this.units) if (layerOf(u.key) === null) this.ensureWhole(u);
  }

  // Layer i's forward with its unit gathered, the next one prefetched, and a hook that gathers it
  // again for the backward (docs/sharding.md 4).
  private runLayer(i: number, run: (h: Tensor) => Tensor, h: Tensor): Tensor {
    const u = this.layerUnits.get(i);
    if (!u || this.pinned) return run(h);
    this.ensureWhole(u);
    const next = this.layerUnits.get(i + 1);
    if (next && this.o.prefetch !== false) this.startGather(next);
    let out = run(h);
    if (isGradEnabled() && out.requiresGrad) {
      u.passes++;
      out = beforeBackward(out, () => this.onLayerBackward(u, i));
    }
    this.free(u);
    return out;
  }

  // Backward reaches layer i: gather it. The layer above has finished this pass's backward, so
  // free it, and when every forward pass through it has had its backward (a pack may run the
  // layers more than once, docs/sharding.md 7) reduce-scatter its complete gradients first; a
  // later pass's hook gathers it again. Then prefetch the one below.
  private onLayerBackward(u: ShardUnit, i: number): void {
    u.backwards++;
    this.ensureWhole(u);
    const above = this.layerUnits.get(i + 1);
    if (above && above.backwards > 0) {
      if (above.backwards >= above.passes) this.reduce(above);
      this.free(above);
    }
    // prefetched after the reduce, so two layers are whole at a time, not three; it still
    // overlaps with this layer's backward (docs/sharding.md 4)
    const below = this.layerUnits.get(i - 1);
    if (below && this.o.prefetch !== false) this.startGather(below);
  }

  // ---- gradients ----

  /** Drops the summed gradients (start of a step). */
  zeroGrad(): void {
    for (const u of this.units) {
      u.shard.grad = null;
      u.grad?.zero_();
    }
  }

  // Reduce-scatters a unit's gradients onto its shard's float32 sum, in rank order (exact,
  // docs/sharding.md 2, 4), in pieces read from the parameters' gradients (no whole-unit copy),
  // and drops the whole gradients.
  private reduce(u: ShardUnit): void {
    if (u.reduced) return;
    noGrad(() => scope(() => {
      const parts = u.params.map((p) => p.grad?.reshape([-1]) ?? zeros([p.numel], { dtype: p.dtype, device: p.device }));
      const offsets = [...u.offsets];
      if (u.padded > u.numel) {
        parts.push(zeros([u.padded - u.numel], { dtype: u.flat.dtype, device: u.flat.device }));
        offsets.push(u.numel);
      }
      if (!u.grad) u.grad = zeros([u.size], { dtype: 'float32', device: u.flat.device }).keep();
      const group = this.o.group;
      const replicas = this.o.replicas;
      const scatter = (send: Tensor, out: Tensor): void => {
        if (replicas && replicas.worldSize > 1) this.chainReduce(send, out, replicas);
        else if (group) group.reduceScatter(send, out, { accumulate: true });
        else out.add_(send);
      };
      reduceScatterInPieces({ parts, offsets }, this.world, u.grad, scatter, this.o.reducePieceElements);
      for (const p of u.params) p.grad = null;
    }));
    u.reduced = true;
  }

  // Hybrid sharding in global rank order (docs/sharding.md 5): shard group i adds its ranks'
  // chunks onto the running sum, then hands the sum to the other groups; group i + 1 goes on from it.
  private chainReduce(g: Tensor, acc: Tensor, replicas: ProcessGroup): void {
    for (let i = 0; i < replicas.worldSize; i++) {
      if (i === replicas.rank) this.o.group!.reduceScatter(g, acc, { accumulate: true });
      replicas.broadcast([acc], i);
    }
  }

  /** After each backward: every unit's gradients reduce-scattered (in unit order), the units freed (full). */
  collectGradients(): void {
    for (const u of this.units) {
      this.reduce(u);
      this.free(u);
    }
  }

  /**
   * The global norm of the gradient (the
   * shards' squares summed over ranks), clipped to maxNorm as clip_grad_norm_ does; the shards'
   * gradients are set for the optimizer. Returns the norm before clipping.
   */
  clipGradNorm(maxNorm: number): number {
    return noGrad(() => scope(() => {
      for (const u of this.units) if (!u.grad) u.grad = zeros([u.size], { dtype: 'float32', device: u.flat.device }).keep();
      let sq = 0;
      for (const u of this.units) sq += ops.norm(u.grad!, 2).item() ** 2;
      const t = tensor([sq], { dtype: 'float64' });
      if (this.o.group) this.o.group.allReduce(t, 'sum');
      const total = Math.sqrt(t.item());
      const coef = Math.min(1, maxNorm / (total + 1e-6));
      for (const u of this.units) {
        if (coef < 1) u.grad!.mul_(coef);
        u.shard.grad = u.shard.dtype === 'float32' ? u.grad! : u.grad!.to(u.shard.dtype);
      }
      return total;
    }));
  }

  /** Multiplies the summed gradients by `f` (GRPO averages over the ranks, docs/sharding.md 7). */
  scaleGradients(f: number): void {
    noGrad(() => {
      for (const u of this.units) u.grad?.mul_(f);
    });
  }

  /**
   * fn() with every unit's shard replaced by `values` (in unit order; GRPO's frozen reference
   * policy, docs/sharding.md 7), the shards restored after; the units whole now are gathered
   * again from the swapped shards before and from the restored ones after (a collective).
   */
  withShards<T>(values: readonly Tensor[], fn: () => T): T {
    if (values.length !== this.units.length) throw new Error(`ShardedModel.withShards: ${values.length} shards for ${this.units.length} units`);
    const saved = noGrad(() => this.units.map((u) => u.shard.detach().clone().keep()));
    const swapIn = (from: readonly Tensor[]): void => {
      // finish gathers in flight (they read the shards), then write the shards and gather again
      const again = this.units.filter((u) => u.whole || u.pending);
      for (const u of again) this.ensureWhole(u);
      noGrad(() => this.units.forEach((u, k) => u.shard.copy_(from[k]!)));
      for (const u of again) {
        u.whole = false;
        this.startGather(u);
      }
      for (const u of again) this.ensureWhole(u);
    };
    try {
      swapIn(values);
      return fn();
    } finally {
      swapIn(saved);
      for (const t of saved) t.dispose();
    }
  }

  /** After the shards were loaded from a checkpoint: the model's weights follow them. */
  refresh(): void {
    if (this.mode === 'grad' || this.pinned) {
      const pinned = this.pinned;
      this.pinned = false;
      for (const u of this.units) {
        u.whole = false;
        this.startGather(u);
      }
      for (const u of this.units) this.ensureWhole(u);
      this.pinned = pinned;
    }
  }

  /** After optimizer.step(): grad mode gathers the updated shards into the whole parameters. */
  afterStep(): void {
    if (this.mode !== 'grad') return;
    for (const u of this.units) {
      u.whole = false;
      this.startGather(u);
    }
    for (const u of this.units) this.ensureWhole(u);
  }

  /** The optimizer's step is followed by the model's weights (MixedPrecision.syncModel's place). */
  syncModel(): void {
    this.afterStep();
  }

  /**
   * Before export at the end of a run (every rank calls it: a collective): the model whole, and
   * each unit's master weights gathered for exportWeights().
   */
  prepareExport(): void {
    this.pin();
    this.exported = noGrad(() => this.units.map((u) => this.gatherMasters(u).keep()));
  }

  /**
   * Each trainable parameter whole again as its own tensor in the master dtype (float32 in
   * bf16-mixed, docs/precision.md "Export"), from prepareExport(). The model is not meant to train
   * on afterwards.
   */
  exportWeights(): void {
    const masters = this.exported;
    if (!masters) throw new Error('ShardedModel.exportWeights: call prepareExport() on every rank first (it is a collective)');
    noGrad(() => scope(() => {
      this.units.forEach((u, k) => {
        const whole = masters[k]!;
        u.params.forEach((p, i) => ops.set_data(p, whole.narrow(0, u.offsets[i]!, p.numel).view(p.shape).clone()));
      });
    }));
    this.model.language_model.model.layerHook = null;
  }

  /** The whole flat master of a unit (a collective; a new tensor of `padded` elements). */
  gatherMasters(u: ShardUnit): Tensor {
    const whole = empty([u.padded], { dtype: u.shard.dtype, device: u.shard.device });
    if (this.o.group) this.o.group.allGatherInto(u.shard, whole);
    else whole.copy_(u.shard);
    return whole;
  }

  /** Per-rank bytes held now: parameters' storage (whole units), shards and gradients (docs/sharding.md 1). */
  residentBytes(): { params: number; shards: number; grads: number } {
    let params = 0;
    let shards = 0;
    let grads = 0;
    for (const u of this.units) {
      if (u.whole) params += u.padded * itemBytes(u.flat);
      shards += u.size * itemBytes(u.shard);
      if (u.grad) grads += u.size * 4;
    }
    return { params, shards, grads };
  }

  dispose(): void {
    for (const t of this.exported ?? []) t.dispose();
    this.exported = null;
    for (const u of this.units) {
      u.pending?.work?.wait();
      u.pending?.local?.dispose();
      u.pending = null;
      u.shard.grad = null;
      u.shard.dispose();
      u.grad?.dispose();
      u.grad = null;
    }
    if (this.model.language_model.model.layerHook) this.model.language_model.model.layerHook = null;
  }
}

function itemBytes(t: Tensor): number {
  return ITEM_SIZE[t.dtype];
}

// The precision modes' weights (docs/precision.md 1) without whole float32 masters: the shards
// are the masters. bf16-mixed keeps LoRA adapters float32 (their own masters); buffers stay float32.
function convertModel(model: Module, mode: PrecisionMode): void {
  if (mode === 'fp32') return;
  noGrad(() => scope(() => {
    for (const [n, p] of model.namedParameters()) {
      if (p.dtype !== 'float32' || (mode === 'bf16-mixed' && isAdapterKey(n))) continue;
      p.grad = null;
      ops.set_data(p, p.to('bfloat16'));
    }
  }));
}
