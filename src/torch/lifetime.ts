// Tensor lifetimes: explicit dispose, scopes that free every tensor created inside them
// except what they return, and garbage collection as a safety net only.
//
// The safety net is generational: a tensor created outside any scope waits in a "young"
// list until the current synchronous run ends (or the list gets long); only then, if it is
// still alive, is it registered with a FinalizationRegistry. Temporaries disposed right away
// never pay for registration, which keeps a small op as cheap as in Python.
import { native } from './native.js';

export interface Owned {
  id: number; // -1 once disposed
  /** 0: untracked, 1: registered with the finalizer, 2: kept (escapes scopes) */
  _life: number;
  dispose(): void;
}

const scopes: Owned[][] = [];
let young: Owned[] = [];
let flushScheduled = false;
const YOUNG_LIMIT = 256;

const finalizer = new FinalizationRegistry<number>((id) => {
  native.dispose(id);
});

function flushYoung(): void {
  flushScheduled = false;
  const list = young;
  young = [];
  for (const t of list) {
    if (t.id >= 0 && t._life === 0) {
      finalizer.register(t, t.id, t);
      t._life = 1;
    }
  }
}

/** Called by every new tensor: the innermost scope owns it, else it is young. */
export function adopt(t: Owned): void {
  const n = scopes.length;
  if (n > 0) {
    scopes[n - 1]!.push(t);
    return;
  }
  young.push(t);
  if (young.length >= YOUNG_LIMIT) flushYoung();
  else if (!flushScheduled) {
    flushScheduled = true;
    queueMicrotask(flushYoung);
  }
}

/** Releases a tensor's native memory now (idempotent). */
export function release(t: Owned): void {
  if (t.id < 0) return;
  native.dispose(t.id);
  t.id = -1;
  // Kept tensors (_life 2) are registered too: unregister them, or the finalizer would later
  // dispose this id again after the native side has reused it for another tensor.
  if (t._life !== 0) finalizer.unregister(t);
}

/** Moves a tensor out of scope ownership for good: the caller (or the GC) frees it. */
export function keep<T extends Owned>(t: T): T {
  if (t._life !== 2) {
    if (t._life === 0) {
      finalizer.register(t, t.id, t);
    }
    t._life = 2;
  }
  return t;
}

/**
 * Hands a tensor's native handle to native code that will release it itself: the JS object
 * lets go of the id (as if disposed) without freeing it. Keeping the object instead would leave
 * it registered with the finalizer, which would later free the id again after the native table
 * has reused it for another, live tensor.
 */
export function handOver(t: Owned): number {
  const id = t.id;
  if (id < 0) throw new Error('handOver: the tensor is already disposed');
  if (t._life !== 0) finalizer.unregister(t);
  t.id = -1;
  return id;
}

function collect(value: unknown, out: Set<Owned>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ('_life' in value && 'id' in value && typeof (value as Owned).dispose === 'function') {
    out.add(value as Owned);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, seen);
  }
}

/**
 * Runs fn and disposes every tensor created during it, except the tensors found in its
 * result (a tensor, or arrays, Maps and plain objects holding tensors), which move to the
 * enclosing scope. fn must be synchronous.
 */
export function scope<T>(fn: () => T): T {
  const mine: Owned[] = [];
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    releaseAll(mine, null);
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    releaseAll(mine, null);
    throw new TypeError('scope(fn): fn must be synchronous (it returned a Promise)');
  }
  // Most scopes return nothing or a number: then there is nothing to search for.
  let kept: Set<Owned> | null = null;
  if (result !== null && typeof result === 'object') {
    kept = new Set<Owned>();
    collect(result, kept, new Set());
  }
  releaseAll(mine, kept);
  return result;
}

// Frees every tensor of a finished scope except kept ones (which move to the parent) in one
// native call.
function releaseAll(mine: Owned[], kept: Set<Owned> | null): void {
  const ids: number[] = [];
  for (const t of mine) {
    if (t._life === 2 || t.id < 0) continue;
    if (kept !== null && kept.has(t)) {
      adopt(t);
      continue;
    }
    ids.push(t.id);
    t.id = -1;
    if (t._life === 1) finalizer.unregister(t);
  }
  if (ids.length > 0) native.disposeMany(ids);
}

/** Live native tensors and their bytes (each storage counted once), for leak checks. */
export function memory(): { tensors: number; bytes: number } {
  const m = native.memory();
  return { tensors: m.tensors, bytes: m.bytes };
}
