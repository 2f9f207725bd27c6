// Runtime helpers of the generated operator functions (ops.generated.ts): operator-id
// caching, argument checks, and result wrapping. Kept tiny: they run on every op call.
import { native } from './native.js';
import { Tensor } from './tensor.js';
import { isDType } from './dtype.js';

/** [type, name, optional] of one schema argument. */
export type Param = [string, string, boolean];
/** [name, overload, schema, params] per generated overload, filled by ops.generated.ts. */
export const OPS: [string, string, string, Param[]][] = [];
/** Dispatcher ids, looked up on first use and cached. */
export const O: number[] = [];

export function op(i: number): number {
  const [name, overload] = OPS[i]!;
  return (O[i] = native.opId(name, overload));
}

// ---- argument checks (one per schema argument kind) ----
export const t = (x: unknown): boolean => x instanceof Tensor;
export const ot = (x: unknown): boolean => x == null || x instanceof Tensor;
export const tl = (x: unknown): boolean => Array.isArray(x);
export const i = (x: unknown): boolean => (typeof x === 'number' ? Number.isInteger(x) : typeof x === 'bigint');
export const il = (x: unknown): boolean => Array.isArray(x) || i(x);
export const f = (x: unknown): boolean => typeof x === 'number';
export const fl = (x: unknown): boolean => Array.isArray(x);
export const b = (x: unknown): boolean => typeof x === 'boolean';
export const bl = (x: unknown): boolean => Array.isArray(x);
export const sc = (x: unknown): boolean => typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint';
export const st = (x: unknown): boolean => isDType(x);
export const s = (x: unknown): boolean => typeof x === 'string';
export const g = (x: unknown): boolean => x == null;

// ---- conversions ----
/** Tensor ids of a Tensor[] argument. */
export function ids(xs: readonly Tensor[], fn: string, arg: string): number[] {
  const out = new Array<number>(xs.length);
  for (let k = 0; k < xs.length; k++) {
    const x = xs[k];
    if (!(x instanceof Tensor)) throw new TypeError(`${fn}(): argument '${arg}' must be an array of Tensors (element ${k} is ${describe(x)})`);
    out[k] = x.id;
  }
  return out;
}
/** Tensor ids of a Tensor?[] argument (null for absent entries). */
export function oids(xs: readonly (Tensor | null)[], fn: string, arg: string): (number | null)[] {
  return xs.map((x, k) => {
    if (x == null) return null;
    if (!(x instanceof Tensor)) throw new TypeError(`${fn}(): argument '${arg}' must be an array of Tensors or nulls (element ${k} is ${describe(x)})`);
    return x.id;
  });
}
export const T = (id: number | null): Tensor => (id === null ? (null as unknown as Tensor) : new Tensor(id));
export const Ts = (xs: (number | null)[]): Tensor[] => xs.map(T);

export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (x instanceof Tensor) return 'Tensor';
  if (Array.isArray(x)) return `array(${x.length})`;
  if (typeof x === 'number') return Number.isInteger(x) ? 'integer' : 'number';
  return typeof x;
}

/** The TypeError for a call no overload accepts, naming the arguments and the candidates. */
export function noOverload(fn: string, candidates: number[], args: ArrayLike<unknown>): TypeError {
  let n = args.length;
  while (n > 0 && args[n - 1] === undefined) n--;
  const given = Array.from({ length: n }, (_, k) => describe(args[k])).join(', ');
  if (candidates.length === 1) {
    const bad = firstBadArgument(OPS[candidates[0]!]![3], args);
    if (bad) return new TypeError(`${fn}(): ${bad}`);
  }
  const list = candidates.map((c) => '  ' + OPS[c]![2]).join('\n');
  return new TypeError(`${fn}(): no overload accepts (${given}); candidates:\n${list}`);
}

// Names the first argument whose value does not fit its schema type.
function firstBadArgument(params: Param[], args: ArrayLike<unknown>): string | null {
  for (let k = 0; k < Math.max(params.length, args.length); k++) {
    const p = params[k];
    const v = args[k];
    if (p === undefined) return v === undefined ? null : `too many arguments (expected at most ${params.length})`;
    const [type, name, optional] = p;
    if (v === undefined) {
      if (!optional) return `missing required argument '${name}' (${type})`;
      continue;
    }
    if (!fits(type, v)) return `argument '${name}' must be ${type}, got ${describe(v)}`;
  }
  return null;
}

function fits(type: string, v: unknown): boolean {
  const optional = type.endsWith('?');
  const base = optional ? type.slice(0, -1) : type;
  if (optional && v === null) return true;
  if (base.startsWith('Tensor?[') || base.startsWith('Tensor[')) return tl(v);
  if (base === 'Tensor') return t(v);
  if (base === 'int' || base === 'SymInt') return i(v);
  if (/^(int|SymInt)\[/.test(base)) return il(v);
  if (base === 'float') return f(v);
  if (base.startsWith('float[')) return fl(v);
  if (base === 'bool') return b(v);
  if (base.startsWith('bool[')) return bl(v);
  if (base === 'Scalar') return sc(v);
  if (base === 'ScalarType') return st(v);
  if (base === 'Generator') return g(v);
  return s(v);
}

// ---- generic calls by name (an escape hatch for operators the generator skipped) ----
let returnKinds: Map<string, string[]> | null = null;

function kindsOf(name: string, overload: string): string[] {
  if (!returnKinds) {
    returnKinds = new Map();
    for (const o of native.listOps()) returnKinds.set(`${o.name}.${o.overload}`, o.returns.map((r) => r.kind));
  }
  return returnKinds.get(`${name}.${overload}`) ?? [];
}

function toNative(x: unknown): unknown {
  if (x instanceof Tensor) return x.id;
  if (Array.isArray(x)) return x.map(toNative);
  return x;
}

// every opId() call registers a new id in the addon, so callOp keeps one per operator
const callOpIds = new Map<string, number>();

/**
 * Calls any registered operator by qualified name and overload, e.g.
 * callOp('aten::add', 'Tensor', a, b). Arguments in schema order; unknown operators throw.
 */
export function callOp(name: string, overload: string, ...args: unknown[]): unknown {
  const qualified = name.includes('::') ? name : `aten::${name}`;
  const key = `${qualified}.${overload}`;
  let id = callOpIds.get(key);
  if (id === undefined) callOpIds.set(key, (id = native.opId(qualified, overload)));
  const r = native.call(id, ...args.map(toNative));
  const kinds = kindsOf(qualified, overload);
  const wrap = (v: unknown, kind: string | undefined): unknown =>
    kind === 'Tensor' && typeof v === 'number' ? new Tensor(v) : kind === 'Tensor[]' && Array.isArray(v) ? v.map((x) => new Tensor(x)) : v;
  if (kinds.length > 1 && Array.isArray(r)) return r.map((v, k) => wrap(v, kinds[k]));
  return wrap(r, kinds[0]);
}
