// Small helpers shared by the nn tests: read tensors back as flat numbers and compare them.
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/torch/index.js';

/** The values of a floating tensor as plain numbers (other float dtypes converted exactly). */
export function flat(t: Tensor): number[] {
  if (t.dtype === 'float32' || t.dtype === 'float64') return Array.from(t.dataSync() as Float32Array);
  const f = t.to('float32');
  try {
    return Array.from(f.dataSync() as Float32Array);
  } finally {
    f.dispose();
  }
}

/** |a - e| <= atol + rtol |e| elementwise, with the first failing index in the message. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = ''): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what} element ${i}: got ${a}, expected ${e}`);
    }
  }
}

/** Bitwise equality of float32 values (NaN-safe, -0 vs 0 distinguished). */
export function assertSameF32(actual: ArrayLike<number>, expected: ArrayLike<number>, what = ''): void {
  const a = Float32Array.from(actual);
  const e = Float32Array.from(expected);
  assert.equal(a.length, e.length, `${what} length`);
  const ai = new Uint32Array(a.buffer);
  const ei = new Uint32Array(e.buffer);
  for (let i = 0; i < a.length; i++) {
    if (ai[i] !== ei[i]) assert.fail(`${what} element ${i}: got ${a[i]}, expected ${e[i]} (bits differ)`);
  }
}

/** A deterministic pseudo-random sequence in [-1, 1) for test inputs (no global RNG involved). */
export function seq(n: number, seed = 1): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(Math.fround(s / 2 ** 31 - 1));
  }
  return out;
}
