// scaledDotProductAttention (src/torch/ops-attention.ts) on whichever libtorch the addon has:
// values against softmax(q k^T / sqrt(d) + mask) v worked out in plain JS, keep-where-true bool
// masks, and gradients against finite differences (docs/engine.md, "libtorch versions").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { gradcheck, input, seededValues } from './gradcheck.js';

/** softmax(q k^T / sqrt(d) + mask) v for one head: q [Lq, d], k and v [Lk, d], mask [Lq, Lk]. */
function reference(q: number[][], k: number[][], v: number[][], mask: number[][] | null): number[][] {
  const d = q[0]!.length;
  return q.map((qi, i) => {
    const s = k.map((kj, j) => qi.reduce((a, x, c) => a + x * kj[c]!, 0) / Math.sqrt(d) + (mask ? mask[i]![j]! : 0));
    const m = Math.max(...s);
    const e = s.map((x) => Math.exp(x - m));
    const z = e.reduce((a, x) => a + x, 0);
    return v[0]!.map((_, c) => e.reduce((a, w, j) => a + (w / z) * v[j]![c]!, 0));
  });
}

const rows = (values: number[], n: number, d: number): number[][] => Array.from({ length: n }, (_, i) => values.slice(i * d, (i + 1) * d));

test('attention equals the closed form, with and without an additive mask', () => {
  torch.scope(() => {
    const [Lq, Lk, d] = [3, 5, 4];
    const qv = seededValues(Lq * d, 1), kv = seededValues(Lk * d, 2), vv = seededValues(Lk * d, 3);
    const mv = seededValues(Lq * Lk, 4);
    const q = torch.tensor(qv, { dtype: 'float64', shape: [1, 1, Lq, d] });
    const k = torch.tensor(kv, { dtype: 'float64', shape: [1, 1, Lk, d] });
    const v = torch.tensor(vv, { dtype: 'float64', shape: [1, 1, Lk, d] });
    const mask = torch.tensor(mv, { dtype: 'float64', shape: [Lq, Lk] });
    for (const [m, mr] of [[null, null], [mask, rows(mv, Lq, Lk)]] as const) {
      const out = torch.scaledDotProductAttention(q, k, v, m);
      assert.deepEqual(out.shape, [1, 1, Lq, d]);
      const want = reference(rows(qv, Lq, d), rows(kv, Lk, d), rows(vv, Lk, d), mr).flat();
      const got = Array.from(out.dataSync() as Float64Array);
      got.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-12, `element ${i}: ${x} vs ${want[i]}`));
    }
  });
});

test('a bool mask keeps the keys where it is true', () => {
  torch.scope(() => {
    const [Lq, Lk, d] = [2, 4, 3];
    const qv = seededValues(Lq * d, 5), kv = seededValues(Lk * d, 6), vv = seededValues(Lk * d, 7);
    const keep = [[true, false, true, true], [false, false, true, false]];
    const q = torch.tensor(qv, { dtype: 'float32', shape: [1, Lq, d] });
    const k = torch.tensor(kv, { dtype: 'float32', shape: [1, Lk, d] });
    const v = torch.tensor(vv, { dtype: 'float32', shape: [1, Lk, d] });
    const out = torch.scaledDotProductAttention(q, k, v, torch.tensor(keep.flat(), { dtype: 'bool', shape: [Lq, Lk] }));
    const additive = keep.map((r) => r.map((x) => (x ? 0 : -Infinity)));
    const want = reference(rows(qv, Lq, d), rows(kv, Lk, d), rows(vv, Lk, d), additive).flat();
    const got = Array.from(out.dataSync() as Float32Array);
    got.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-5, `element ${i}: ${x} vs ${want[i]}`));
    // the second query sees key 2 only: its output is that value row
    assert.ok(Math.abs(got[d]! - vv[2 * d]!) < 1e-6);
  });
});

test('attention gradients match finite differences', () => {
  const mask = () => torch.tensor(seededValues(12, 8), { dtype: 'float64', shape: [3, 4] });
  gradcheck(
    ([q, k, v]) => torch.scope(() => {
      const w = torch.tensor(seededValues(2 * 3 * 2, 9), { dtype: 'float64', shape: [2, 3, 2] });
      return torch.scaledDotProductAttention(q!, k!, v!, mask()).mul(w).sum();
    }),
    [input([2, 3, 2], 10), input([2, 4, 2], 11), input([2, 4, 2], 12)],
  );
});
