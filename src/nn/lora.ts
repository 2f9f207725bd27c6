// LoRA (Hu et al. 2021) for Linear layers chosen by name: y = x W^T + b + (alpha/r) B A drop(x),
// A: [r, in] kaiming-uniform (a = sqrt(5), as PEFT), B: [out, r] zeros, so an adapter starts
// as the identity change. The adapter's weights are children of the Linear itself, so its keys
// are "<name>.lora_A.weight" and "<name>.lora_B.weight" beside the untouched "<name>.weight",
// and every reference to the Linear (fields, optimizers) stays valid.
import { noGrad, safetensors, scope, type Tensor } from '../torch/index.js';
import { type FloatDType, type LoadOptions, type LoadResult, describeLoadResult, type Module } from './module.js';
import { Linear } from './linear.js';
import { Dropout } from './activation.js';
import { zeros_ } from './init.js';

export interface LoRAConfig {
  /** Rank r of the update. */
  r: number;
  /** Scale numerator: the update is multiplied by alpha / r (default r, i.e. scale 1). */
  alpha?: number;
  /** Dropout on the adapter's input (training mode only; default 0). */
  dropout?: number;
  /**
   * The adapter weights' dtype (default: the host weight's). A float32 adapter on a bfloat16
   * host computes its branch in float32 and adds it rounded once (docs/precision.md section 4).
   */
  dtype?: FloatDType;
}

/** Which Linear layers get adapters: a RegExp (tested on the dotted name), a glob, or several. */
export type NamePattern = RegExp | string | (RegExp | string)[];

/** The adapter of one Linear layer. Not a Module: its A and B are registered on the host. */
export class LoRAAdapter {
  readonly A: Linear;
  readonly B: Linear;
  readonly dropout: Dropout;
  readonly scale: number;
  /** True while (alpha/r) B A is folded into the host's weight (forward then skips the adapter). */
  merged = false;
  private original: Tensor | null = null;

  constructor(
    readonly host: Linear,
    readonly r: number,
    readonly alpha: number,
    dropout: number,
    dtype?: FloatDType,
  ) {
    if (!(Number.isInteger(r) && r > 0)) throw new RangeError(`LoRA: rank r must be a positive integer, got ${r}`);
    const o = { dtype: dtype ?? host.weight.dtype, device: host.weight.device };
    this.A = new Linear(host.inFeatures, r, { ...o, bias: false }); // kaiming-uniform(a = sqrt(5))
    this.B = new Linear(r, host.outFeatures, { ...o, bias: false });
    zeros_(this.B.weight);
    this.dropout = new Dropout(dropout);
    this.scale = alpha / r;
  }

  /** y + scale * B(A(drop(x))), unless merged. */
  addTo(y: Tensor, x: Tensor): Tensor {
    if (this.merged) return y;
    return scope(() => {
      const w = this.A.weight.dtype;
      const h = this.B.forward(this.A.forward(this.dropout.forward(x.dtype === w ? x : x.to(w))));
      if (h.dtype === y.dtype) return y.add(h, this.scale);
      return y.add(h.mul(this.scale).to(y.dtype), 1);
    });
  }

  /** The dense update scale * B A, [out, in] (a new tensor, no gradient). */
  delta(): Tensor {
    return noGrad(() => scope(() => this.B.weight.matmul(this.A.weight).mul(this.scale)));
  }

  /**
   * Folds the update into the host weight in place: W <- W + (alpha/r) B A. With keepOriginal,
   * a copy of W is kept so unmerge() restores it bit for bit; otherwise unmerge subtracts.
   */
  merge(options: { keepOriginal?: boolean } = {}): void {
    if (this.merged) return;
    noGrad(() => scope(() => {
      if (options.keepOriginal) this.original = this.host.weight.detach().clone().keep();
      const d = this.delta();
      this.host.weight.add_(d);
    }));
    this.merged = true;
  }

  /** Takes the update out of the host weight again (exactly, when merged with keepOriginal). */
  unmerge(): void {
    if (!this.merged) return;
    noGrad(() => scope(() => {
      if (this.original) {
        this.host.weight.copy_(this.original);
        this.original.dispose();
        this.original = null;
      } else {
        this.host.weight.sub_(this.delta());
      }
    }));
    this.merged = false;
  }

  dispose(): void {
    this.original?.dispose();
    this.original = null;
    this.A.dispose();
    this.B.dispose();
  }
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^.]*';
    } else if (c === '?') re += '[^.]';
    else re += c.replace(/[\\^$+.()|{}[\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * A predicate on dotted module names. A RegExp is tested as given (anchor it for a full match).
 * A string is a glob over the whole name: '*' matches within one segment, '**' across segments,
 * '?' one character. A string with no '.' and no wildcard matches the last segment, as PEFT's
 * target_modules do ('q_proj' matches 'layers.3.self_attn.q_proj').
 */
export function nameMatcher(pattern: NamePattern): (name: string) => boolean {
  const list = Array.isArray(pattern) ? pattern : [pattern];
  const tests = list.map((p): ((n: string) => boolean) => {
    if (p instanceof RegExp) return (n) => { p.lastIndex = 0; return p.test(n); };
    if (!/[.*?]/.test(p)) return (n) => n === p || n.endsWith(`.${p}`);
    const re = globToRegExp(p);
    return (n) => re.test(n);
  });
  return (n) => tests.some((t) => t(n));
}

/** The Linear layers of a model that carry an adapter, by dotted name. */
export function loraLayers(model: Module): [string, Linear][] {
  return model.namedModules().filter((e): e is [string, Linear] => e[1] instanceof Linear && e[1].lora !== null);
}

export interface ApplyLoRAOptions extends LoRAConfig {
  /** The Linear layers to adapt, by dotted name. */
  targets: NamePattern;
  /** Set requires_grad false on every non-adapter parameter of the model (default true). */
  freezeBase?: boolean;
}

/**
 * Attaches an adapter to every Linear whose dotted name matches (adapters' own A and B are never
 * targets) and returns their names. Throws when nothing matches, naming the pattern.
 */
export function applyLoRA(model: Module, options: ApplyLoRAOptions): string[] {
  const match = nameMatcher(options.targets);
  const chosen = model.namedModules().filter(([n, m]) => m instanceof Linear && m.lora === null && !isAdapterPart(model, m) && n !== '' && match(n));
  if (chosen.length === 0) throw new Error(`applyLoRA: no Linear layer matches ${String(options.targets)}`);
  for (const [, m] of chosen) attachLoRA(m as Linear, options);
  if (options.freezeBase ?? true) freezeBase(model);
  return chosen.map(([n]) => n);
}

function isAdapterPart(model: Module, m: Module): boolean {
  for (const [, l] of loraLayers(model)) if (l.lora!.A === m || l.lora!.B === m) return true;
  return false;
}

/** Attaches an adapter to one Linear (its children lora_A, lora_B and lora_dropout). */
export function attachLoRA(layer: Linear, config: LoRAConfig): LoRAAdapter {
  if (layer.lora) throw new Error('attachLoRA: this Linear already has an adapter');
  const adapter = new LoRAAdapter(layer, config.r, config.alpha ?? config.r, config.dropout ?? 0, config.dtype);
  layer.registerModule('lora_A', adapter.A);
  layer.registerModule('lora_B', adapter.B);
  layer.registerModule('lora_dropout', adapter.dropout);
  adapter.dropout.training = layer.training;
  layer.lora = adapter;
  return adapter;
}

/**
 * Removes every adapter. With merge, its update is folded into the weight first (the usual way
 * to export a fine-tuned model); otherwise the base weights are left as they were before LoRA.
 */
export function removeLoRA(model: Module, options: { merge?: boolean } = {}): void {
  for (const [, layer] of loraLayers(model)) {
    const a = layer.lora!;
    if (options.merge) a.merge();
    else a.unmerge();
    layer.unregisterModule('lora_A');
    layer.unregisterModule('lora_B');
    layer.unregisterModule('lora_dropout');
    layer.lora = null;
    a.dispose();
  }
}

/** requires_grad false on every parameter except the adapters' A and B. */
export function freezeBase(model: Module): void {
  const adapterParams = new Set(loraParameters(model));
  for (const p of model.parameters()) p.requiresGrad_(adapterParams.has(p));
}

/** The adapters' trainable tensors (A and B of each layer), for the optimizer. */
export function loraParameters(model: Module): Tensor[] {
  return loraLayers(model).flatMap(([, l]) => [l.lora!.A.weight, l.lora!.B.weight]);
}

export function mergeLoRA(model: Module, options: { keepOriginal?: boolean } = {}): void {
  for (const [, l] of loraLayers(model)) l.lora!.merge(options);
}
export function unmergeLoRA(model: Module): void {
  for (const [, l] of loraLayers(model)) l.lora!.unmerge();
}

/** True for state-dict keys that belong to an adapter ("...lora_A.weight", "...lora_B.weight"). */
export const isAdapterKey = (k: string): boolean => /(^|\.)lora_[AB]\.weight$/.test(k);

/** Only the adapter weights ("<name>.lora_A.weight", "<name>.lora_B.weight"), as detached handles. */
export function loraStateDict(model: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [n, l] of loraLayers(model)) {
    out.set(`${n}.lora_A.weight`, l.lora!.A.weight.detach());
    out.set(`${n}.lora_B.weight`, l.lora!.B.weight.detach());
  }
  return out;
}

/**
 * Loads adapter weights into the model's adapters in place. Missing, unexpected (including any
 * non-adapter key) and mismatched keys are reported by name; strict (default) throws on any.
 */
export function loadLoRAStateDict(model: Module, state: Map<string, Tensor>, options: LoadOptions = {}): LoadResult {
  const own = new Map<string, Tensor>();
  for (const [n, l] of loraLayers(model)) {
    own.set(`${n}.lora_A.weight`, l.lora!.A.weight);
    own.set(`${n}.lora_B.weight`, l.lora!.B.weight);
  }
  const r: LoadResult = { missing: [], unexpected: [], mismatched: [] };
  const todo: [Tensor, Tensor][] = [];
  for (const [k, dst] of own) {
    const src = state.get(k);
    if (!src) r.missing.push(k);
    else if (src.shape.join() !== dst.shape.join()) r.mismatched.push({ key: k, expected: dst.shape, got: src.shape });
    else todo.push([dst, src]);
  }
  for (const k of state.keys()) if (!own.has(k)) r.unexpected.push(k);
  if ((options.strict ?? true) && (r.missing.length || r.unexpected.length || r.mismatched.length)) {
    throw new Error(describeLoadResult('LoRA adapters', r));
  }
  const merged = loraLayers(model).filter(([, l]) => l.lora!.merged);
  if (merged.length) throw new Error(`loadLoRAStateDict: unmerge first (merged: ${merged.map(([n]) => n).join(', ')})`);
  noGrad(() => scope(() => {
    for (const [dst, src] of todo) dst.copy_(src);
  }));
  return r;
}

/** Metadata keys written beside the adapter tensors. */
const META = { format: 'unicharacter.lora', layers: 'lora_layers', r: 'lora_r', alpha: 'lora_alpha', dropout: 'lora_dropout' } as const;

/** Writes only the adapter weights, with r, alpha, dropout and the layer names as metadata. */
export function saveLoRA(path: string, model: Module, metadata: Record<string, string> = {}): void {
  const layers = loraLayers(model);
  if (layers.length === 0) throw new Error('saveLoRA: the model has no LoRA adapters');
  const first = layers[0]![1].lora!;
  const meta: Record<string, string> = {
    ...metadata,
    format: META.format,
    [META.layers]: JSON.stringify(layers.map(([n]) => n)),
    [META.r]: String(first.r),
    [META.alpha]: String(first.alpha),
    [META.dropout]: String(first.dropout.p),
  };
  scope(() => safetensors.save(path, loraStateDict(model), meta));
}

/**
 * Loads an adapter file. Layers named in its metadata that have no adapter yet get one (with the
 * saved r, alpha and dropout, and the base frozen), so a bare base model can take the file.
 */
export function loadLoRA(path: string, model: Module, options: LoadOptions = {}): LoadResult {
  return scope(() => {
    const { tensors, metadata } = safetensors.load(path);
    if (metadata[META.layers] && metadata[META.r]) {
      const names: string[] = JSON.parse(metadata[META.layers]!);
      const byName = new Map(model.namedModules());
      const bare = names.filter((n) => byName.get(n) instanceof Linear && (byName.get(n) as Linear).lora === null);
      if (bare.length) {
        const r = Number(metadata[META.r]);
        const first = tensors.get(`${bare[0]}.lora_A.weight`);
        applyLoRA(model, {
          ...(first && (first.dtype === 'float32' || first.dtype === 'bfloat16' || first.dtype === 'float16' || first.dtype === 'float64') ? { dtype: first.dtype } : {}),
          targets: bare.map((n) => new RegExp(`^${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)),
          r,
          alpha: Number(metadata[META.alpha] ?? r),
          dropout: Number(metadata[META.dropout] ?? 0),
        });
      }
    }
    return loadLoRAStateDict(model, tensors, options);
  });
}

