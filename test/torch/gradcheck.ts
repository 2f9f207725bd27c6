// Test helper: compares autograd gradients with central finite differences in float64.
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';

export interface GradInput {
  shape: number[];
  values: number[];
}

/** Random float64 values in [-1, 1) from a seeded JS generator (independent of libtorch). */
export function seededValues(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push((s / 2 ** 32) * 2 - 1);
  }
  return out;
}

export function input(shape: number[], seed: number): GradInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, values: seededValues(n, seed) };
}

function evaluate(f: (xs: Tensor[]) => Tensor, inputs: GradInput[]): number {
  return torch.scope(() => {
    const xs = inputs.map((i) => torch.tensor(i.values, { dtype: 'float64', shape: i.shape }));
    return f(xs).item();
  });
}

/**
 * Asserts that d f / d inputs from autograd matches central differences. f must return a
 * scalar tensor; inputs listed in `which` (default all) are checked.
 */
export function gradcheck(f: (xs: Tensor[]) => Tensor, inputs: GradInput[], opts: { eps?: number; tol?: number; which?: number[] } = {}): void {
  const eps = opts.eps ?? 1e-6;
  const tol = opts.tol ?? 1e-6;
  const which = opts.which ?? inputs.map((_, k) => k);
  const analytic = torch.scope(() => {
    const xs = inputs.map((i) => torch.tensor(i.values, { dtype: 'float64', shape: i.shape, requiresGrad: true }));
    const y = f(xs);
    assert.equal(y.numel, 1, 'gradcheck: f must return a scalar');
    const grads = torch.grad(y, which.map((k) => xs[k]!));
    return grads.map((g) => (g ? Array.from(g.dataSync() as Float64Array) : null));
  });
  which.forEach((k, gi) => {
    const got = analytic[gi];
    assert.ok(got, `input ${k} received no gradient`);
    for (let e = 0; e < inputs[k]!.values.length; e++) {
      const plus = inputs.map((i) => ({ shape: i.shape, values: [...i.values] }));
      const minus = inputs.map((i) => ({ shape: i.shape, values: [...i.values] }));
      plus[k]!.values[e]! += eps;
      minus[k]!.values[e]! -= eps;
      const numeric = (evaluate(f, plus) - evaluate(f, minus)) / (2 * eps);
      const a = got[e]!;
      const err = Math.abs(a - numeric) / Math.max(1, Math.abs(numeric));
      assert.ok(err < tol, `input ${k} element ${e}: autograd ${a} vs finite difference ${numeric} (rel err ${err})`);
    }
  });
}
