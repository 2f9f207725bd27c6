// Module: the owner of named parameters, buffers and child modules, with PyTorch's dotted
// names ("layers.0.self_attn.q_proj.weight"), so checkpoints and intuition carry over from
// torch.nn. Parameters are kept out of scopes (they live until dispose()) and are never
// replaced: loading copies into them and dtype/device conversion swaps their storage
// (set_data, as `p.data = ...` in Python), so optimizers and fields keep valid references.
import { isFloatingDType, noGrad, ops, scope, type Device, type DType, type Tensor } from '../torch/index.js';

/** A module with a one-tensor forward (layers, activations, Sequential). */
export interface UnaryModule extends Module {
  forward(x: Tensor): Tensor;
}

/** What loadStateDict found, by name. */
export interface LoadResult {
  /** Keys the module has but the state dict lacks (left unchanged). */
  missing: string[];
  /** Keys the state dict has but the module lacks (ignored). */
  unexpected: string[];
  /** Keys present in both with different shapes (left unchanged). */
  mismatched: { key: string; expected: number[]; got: number[] }[];
}

export interface LoadOptions {
  /** Throw an Error listing every missing, unexpected or mismatched key (default true). */
  strict?: boolean;
}

export type FloatDType = 'float32' | 'bfloat16' | 'float16' | 'float64';

function checkName(kind: string, name: string): void {
  if (name === '' || name.includes('.')) throw new Error(`${kind} name must be non-empty and contain no '.', got '${name}'`);
}

export class Module {
  /** Training mode (Dropout and friends read it); set by train()/eval(). */
  training = true;
  private readonly _parameters = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, Tensor | null>();
  private readonly _nonPersistent = new Set<string>();
  private readonly _modules = new Map<string, Module>();

  // ---- registration ----

  private checkFree(name: string, kind: string): void {
    checkName(kind, name);
    if (this._parameters.has(name) || this._buffers.has(name) || this._modules.has(name)) {
      throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    }
  }

  /**
   * Registers a parameter (or an absent one, null). The module takes ownership: the tensor
   * leaves scope ownership and is freed by dispose(). Floating tensors get requires_grad.
   */
  registerParameter<T extends Tensor | null>(name: string, t: T): T {
    this.checkFree(name, 'parameter');
    if (t !== null) {
      t.keep();
      if (isFloatingDType(t.dtype) && !t.requiresGrad) t.requiresGrad_(true);
    }
    this._parameters.set(name, t);
    return t;
  }

  /** Registers a buffer: state that is not trained. Non-persistent buffers stay out of the state dict. */
  registerBuffer<T extends Tensor | null>(name: string, t: T, options: { persistent?: boolean } = {}): T {
    this.checkFree(name, 'buffer');
    if (t !== null) t.keep();
    this._buffers.set(name, t);
    if (options.persistent === false) this._nonPersistent.add(name);
    return t;
  }

  /** Registers a child module; its parameters appear under "<name>.". */
  registerModule<M extends Module>(name: string, m: M): M {
    this.checkFree(name, 'module');
    this._modules.set(name, m);
    return m;
  }

  /** Removes a child module (it is not disposed) and returns it. */
  unregisterModule(name: string): Module | undefined {
    const m = this._modules.get(name);
    this._modules.delete(name);
    return m;
  }

  /** The registered parameter (throws when absent or null). */
  getParameter(name: string): Tensor {
    const t = this._parameters.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter '${name}'`);
    return t;
  }
  getBuffer(name: string): Tensor {
    const t = this._buffers.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no buffer '${name}'`);
    return t;
  }
  getModule(name: string): Module {
    const m = this._modules.get(name);
    if (!m) throw new Error(`${this.constructor.name}: no child module '${name}'`);
    return m;
  }

  // ---- traversal ----

  namedChildren(): [string, Module][] {
    return [...this._modules];
  }
  children(): Module[] {
    return [...this._modules.values()];
  }
  /** This module (name '') and every descendant, depth first, each once. */
  namedModules(prefix = '', seen = new Set<Module>()): [string, Module][] {
    if (seen.has(this)) return [];
    seen.add(this);
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this._modules) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n, seen));
    return out;
  }
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Parameters with dotted names; a tensor shared by two modules appears once (first name). */
  namedParameters(options: { trainableOnly?: boolean } = {}): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, p] of m._parameters) {
        if (p === null || seen.has(p)) continue;
        seen.add(p);
        if (options.trainableOnly && !p.requiresGrad) continue;
        out.push([prefix ? `${prefix}.${n}` : n, p]);
      }
    }
    return out;
  }
  parameters(options: { trainableOnly?: boolean } = {}): Tensor[] {
    return this.namedParameters(options).map(([, p]) => p);
  }
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, b] of m._buffers) {
        if (b === null || seen.has(b)) continue;
        seen.add(b);
        out.push([prefix ? `${prefix}.${n}` : n, b]);
      }
    }
    return out;
  }
  /** Total element count of the (distinct) parameters. */
  numParameters(options: { trainableOnly?: boolean } = {}): number {
    let n = 0;
    for (const p of this.parameters(options)) n += p.numel;
    return n;
  }

  /** Calls fn on every module (children first, then this), like nn.Module.apply. */
  apply(fn: (m: Module) => void): this {
    for (const m of this._modules.values()) m.apply(fn);
    fn(this);
    return this;
  }

  // ---- modes ----

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Sets requires_grad on every parameter (false freezes the module). */
  requiresGrad_(value = true): this {
    for (const p of this.parameters()) p.requiresGrad_(value);
    return this;
  }
  /** Drops every parameter's gradient (sets it to null, as zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  // ---- state dicts ----

  /**
   * A flat Map of dotted names to tensors: parameters, then persistent buffers, each module in
   * turn. Values are new detached handles on the same storage (owned by the current scope, so
   * disposing them never touches the module). Shared tensors appear under each of their names.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [key, t] of this.stateEntries()) out.set(key, t.detach());
    return out;
  }

  /** The module's own tensors for each state-dict key (not copies). */
  private stateEntries(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const visit = (m: Module, prefix: string, seen: Set<Module>): void => {
      if (seen.has(m)) return;
      seen.add(m);
      for (const [n, p] of m._parameters) if (p) out.push([prefix + n, p]);
      for (const [n, b] of m._buffers) if (b && !m._nonPersistent.has(n)) out.push([prefix + n, b]);
      for (const [n, c] of m._modules) visit(c, `${prefix}${n}.`, seen);
    };
    visit(this, '', new Set());
    return out;
  }

  /** The state-dict keys with their shapes and dtypes, without making handles. */
  stateDictInfo(): Map<string, { shape: number[]; dtype: DType }> {
    return new Map(this.stateEntries().map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype }]));
  }

  /**
   * Copies tensors from a state dict into this module's parameters and buffers, in place and
   * without recording gradients (dtype and device are converted to the module's). Reports the
   * missing, unexpected and shape-mismatched keys; with strict (the default) any of them is an
   * Error that names them all, and nothing is copied.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, options: LoadOptions = {}): LoadResult {
    const strict = options.strict ?? true;
    const source = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateEntries();
    const ownKeys = new Set(own.map(([k]) => k));
    const result: LoadResult = { missing: [], unexpected: [], mismatched: [] };
    const todo: [Tensor, Tensor][] = [];
    for (const [key, dst] of own) {
      const src = source.get(key);
      if (src === undefined) {
        result.missing.push(key);
        continue;
      }
      const expected = dst.shape;
      const got = src.shape;
      if (expected.length !== got.length || expected.some((d, i) => d !== got[i])) {
        result.mismatched.push({ key, expected, got });
        continue;
      }
      todo.push([dst, src]);
    }
    for (const key of source.keys()) if (!ownKeys.has(key)) result.unexpected.push(key);
    if (strict && (result.missing.length || result.unexpected.length || result.mismatched.length)) {
      throw new Error(describeLoadResult(this.constructor.name, result));
    }
    noGrad(() => scope(() => {
      for (const [dst, src] of todo) dst.copy_(src);
    }));
    return result;
  }

  // ---- conversion and lifetime ----

  /**
   * Converts floating parameters and buffers to dtype in place (their handles stay valid; their
   * gradients are dropped). Integer and bool tensors are left as they are, as in Module.to(dtype).
   */
  toDtype(dtype: FloatDType): this {
    this.convertTensors((t) => (isFloatingDType(t.dtype) && t.dtype !== dtype ? t.to(dtype) : null));
    return this;
  }

  /** Moves every parameter and buffer to a device in place (handles stay valid; gradients dropped). */
  toDevice(device: Device): this {
    this.convertTensors((t) => (t.device !== device ? t.to(device) : null));
    return this;
  }

  private convertTensors(convert: (t: Tensor) => Tensor | null): void {
    const all = new Set<Tensor>([...this.parameters(), ...this.namedBuffers().map(([, b]) => b)]);
    noGrad(() => scope(() => {
      for (const t of all) {
        const next = convert(t);
        if (next === null) continue;
        t.grad = null;
        ops.set_data(t, next);
      }
    }));
  }

  /** Frees every parameter and buffer of this module and its descendants. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const p of m._parameters.values()) p?.dispose();
      for (const b of m._buffers.values()) b?.dispose();
    }
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** The Error message of a failed strict load, naming every offending key. */
export function describeLoadResult(owner: string, r: LoadResult): string {
  const lines = [`Error(s) loading state dict for ${owner}:`];
  if (r.missing.length) lines.push(`  missing keys (${r.missing.length}): ${r.missing.join(', ')}`);
  if (r.unexpected.length) lines.push(`  unexpected keys (${r.unexpected.length}): ${r.unexpected.join(', ')}`);
  for (const m of r.mismatched) {
    lines.push(`  size mismatch for ${m.key}: checkpoint has [${m.got.join(', ')}], module has [${m.expected.join(', ')}]`);
  }
  return lines.join('\n');
}

/** An indexable list of modules; children are named "0", "1", ... (nn.ModuleList). */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  private readonly items: M[] = [];
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }
  push(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items.at(i);
    if (!m) throw new RangeError(`ModuleList: index ${i} out of range (length ${this.items.length})`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** Modules by name; each name is a child (nn.ModuleDict). */
export class ModuleDict<M extends Module = Module> extends Module {
  private readonly items = new Map<string, M>();
  constructor(modules: Record<string, M> | Iterable<[string, M]> = {}) {
    super();
    const entries = Symbol.iterator in modules ? modules : Object.entries(modules);
    for (const [k, m] of entries as Iterable<[string, M]>) this.set(k, m);
  }
  set(name: string, m: M): this {
    this.registerModule(name, m);
    this.items.set(name, m);
    return this;
  }
  get(name: string): M {
    const m = this.items.get(name);
    if (!m) throw new Error(`ModuleDict: no module '${name}'`);
    return m;
  }
  has(name: string): boolean {
    return this.items.has(name);
  }
  keys(): string[] {
    return [...this.items.keys()];
  }
  entries(): [string, M][] {
    return [...this.items];
  }
}

/** Applies its modules in order (nn.Sequential); children are named "0", "1", ... */
export class Sequential extends ModuleList<UnaryModule> {
  constructor(...modules: UnaryModule[]) {
    super(modules);
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this) {
      const next = m.forward(h);
      h = next;
    }
    return h;
  }
}

/** Returns its input (nn.Identity). */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}
