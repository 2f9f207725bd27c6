import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { Linear, Embedding } from '../../src/nn/index.js';
import { assertClose, flat, seq } from './helpers.js';

test('Linear computes x W^T + b (checked against plain loops)', () => {
  const lin = new Linear(3, 2);
  torch.scope(() => {
    const xs = seq(4 * 3, 7);
    const x = torch.tensor(xs, { shape: [4, 3] });
    const W = flat(lin.weight);
    const b = flat(lin.bias!);
    const expected: number[] = [];
    for (let n = 0; n < 4; n++) {
      for (let o = 0; o < 2; o++) {
        let s = b[o]!;
        for (let i = 0; i < 3; i++) s += xs[n * 3 + i]! * W[o * 3 + i]!;
        expected.push(s);
      }
    }
    const y = lin.forward(x);
    assert.deepEqual(y.shape, [4, 2]);
    assertClose(flat(y), expected, 1e-6, 1e-6, 'linear');
    // leading batch dims pass through
    assert.deepEqual(lin.forward(torch.zeros([2, 5, 3])).shape, [2, 5, 2]);
  });
  lin.dispose();
});

test('Linear without bias has no bias key', () => {
  const lin = new Linear(4, 5, { bias: false });
  assert.equal(lin.bias, null);
  assert.deepEqual([...lin.stateDictInfo().keys()], ['weight']);
  assert.equal(lin.numParameters(), 20);
  lin.dispose();
});

test('Linear default init lies in U(-1/sqrt(in), 1/sqrt(in)) and is seeded', () => {
  torch.manualSeed(123);
  const a = new Linear(64, 256);
  torch.manualSeed(123);
  const b = new Linear(64, 256);
  const w = flat(a.weight);
  assert.deepEqual(w, flat(b.weight));
  const bound = 1 / Math.sqrt(64);
  assert.ok(w.every((v) => Math.abs(v) <= bound));
  // the variance of U(-c, c) is c^2 / 3; 16384 samples pin it within a few percent
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  const variance = w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length;
  assertClose([variance], [bound * bound / 3], 0.05, 0, 'variance');
  assert.ok(Math.max(...w) > 0.95 * bound && Math.min(...w) < -0.95 * bound);
  assert.ok(flat(a.bias!).every((v) => Math.abs(v) <= bound));
  a.dispose();
  b.dispose();
});

test('Linear gradients match finite differences', () => {
  const lin = new Linear(3, 2, { dtype: 'float64' });
  const xs = seq(6, 3);
  const loss = (): torch.Tensor => {
    const x = torch.tensor(xs, { dtype: 'float64', shape: [2, 3] });
    return lin.forward(x).tanh().sum();
  };
  torch.scope(() => {
    loss().backward();
    const g = Array.from(lin.weight.grad!.dataSync() as Float64Array);
    const h = 1e-6;
    for (let k = 0; k < 6; k++) {
      const bump = (d: number): number => torch.scope(() => {
        torch.noGrad(() => {
          const wf = lin.weight.view([-1]);
          wf.select(0, k).add_(d);
        });
        return torch.noGrad(() => loss().item());
      });
      const up = bump(h);
      const down = bump(-2 * h);
      bump(h);
      assertClose([g[k]!], [(up - down) / (2 * h)], 1e-6, 1e-8, `dW[${k}]`);
    }
  });
  lin.dispose();
});

test('Embedding looks rows up, zeroes the padding row, and gives it no gradient', () => {
  torch.manualSeed(0);
  const emb = new Embedding(5, 3, { paddingIdx: 1 });
  const W = flat(emb.weight);
  assert.deepEqual(W.slice(3, 6), [0, 0, 0]);
  torch.scope(() => {
    const ids = torch.tensor([[4, 1], [0, 4]]);
    const y = emb.forward(ids);
    assert.deepEqual(y.shape, [2, 2, 3]);
    const expected = [4, 1, 0, 4].flatMap((r) => W.slice(r * 3, r * 3 + 3));
    assert.deepEqual(flat(y), expected);
    y.sum().backward();
    const g = flat(emb.weight.grad!);
    // row 4 used twice, row 0 once, padding row 1 never gets gradient
    assert.deepEqual(g, [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2]);
  });
  // N(0, 1) init: 5x3 is too small for statistics; check a big table
  const big = new Embedding(1000, 64);
  const v = flat(big.weight);
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
  assert.ok(Math.abs(mean) < 0.02 && Math.abs(sd - 1) < 0.02, `mean ${mean} sd ${sd}`);
  emb.dispose();
  big.dispose();
});
