import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { GELU, SiLU, ReLU, Tanh, Sigmoid, Dropout, Sequential, Linear } from '../../src/nn/index.js';
import { assertClose, flat } from './helpers.js';

const xs = [-3, -1.5, -0.5, 0, 0.25, 1, 2.5];

/** erf by Abramowitz-Stegun 7.1.26 is too coarse; use a series/continued fraction to ~1e-12. */
function erf(x: number): number {
  const t = Math.abs(x);
  if (t < 3) {
    // Maclaurin series
    let sum = 0;
    let term = t;
    for (let n = 0; n < 80; n++) {
      sum += term / (2 * n + 1);
      term *= -(t * t) / (n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // continued fraction for erfc
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}

const closedForms: [string, () => { forward(x: torch.Tensor): torch.Tensor; dispose(): void }, (x: number) => number][] = [
  ['GELU (exact)', () => new GELU(), (x) => 0.5 * x * (1 + erf(x / Math.SQRT2))],
  ['GELU (tanh)', () => new GELU('tanh'), (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))],
  ['SiLU', () => new SiLU(), (x) => x / (1 + Math.exp(-x))],
  ['ReLU', () => new ReLU(), (x) => Math.max(0, x)],
  ['Tanh', () => new Tanh(), (x) => Math.tanh(x)],
  ['Sigmoid', () => new Sigmoid(), (x) => 1 / (1 + Math.exp(-x))],
];

for (const [name, make, f] of closedForms) {
  test(`${name} matches its closed form`, () => {
    const m = make();
    torch.scope(() => {
      const y = m.forward(torch.tensor(xs, { dtype: 'float64' }));
      assertClose(flat(y), xs.map(f), 1e-6, 1e-7, name);
    });
    m.dispose();
  });
}

test('GELU tanh and exact differ (by < 1e-3 on this range)', () => {
  torch.scope(() => {
    const x = torch.tensor(xs, { dtype: 'float64' });
    const a = flat(new GELU().forward(x));
    const b = flat(new GELU('tanh').forward(x));
    assert.ok(a.some((v, i) => v !== b[i]));
    assertClose(a, b, 0, 1e-3);
  });
});

test('Dropout zeroes about p of the values and rescales the rest in training; identity in eval', () => {
  const d = new Dropout(0.25);
  torch.manualSeed(42);
  torch.scope(() => {
    const x = torch.ones([20000]);
    const y = flat(d.forward(x));
    const zeros = y.filter((v) => v === 0).length;
    assert.ok(Math.abs(zeros / y.length - 0.25) < 0.015, `dropped fraction ${zeros / y.length}`);
    assert.ok(y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
    d.eval();
    assert.deepEqual(flat(d.forward(x)), flat(x));
  });
  // inside a model: eval() on the parent switches it off
  const net = new Sequential(new Linear(4, 4), new Dropout(0.9));
  torch.scope(() => {
    const x = torch.ones([2, 4]);
    net.eval();
    assert.deepEqual(flat(net.forward(x)), flat((net.at(0) as Linear).forward(x)));
  });
  net.dispose();
  assert.throws(() => new Dropout(1.5), /p must be in \[0, 1\]/);
});
