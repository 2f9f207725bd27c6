// Samplers (docs/method.md 1.8, 3.3, 6.2) on analytic velocity fields and fixed tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { tensor } from '../../src/torch/index.js';
import { cfgActive, cfgCombine, eulerStep, sampleOde, sdeSigma, sdeStep, shift, timestepGrid } from '../../src/model/index.js';

const maxAbs = (a: torch.Tensor, b: torch.Tensor): number => a.sub(b).abs().max().item();

test('shift and the shifted grid (the 15-step values of docs/method.md 3.3)', () => {
  assert.equal(shift(0.3, 1), 0.3);
  assert.ok(Math.abs(shift(0.5, 3) - 0.75) < 1e-12);
  const g = timestepGrid(15, 3);
  assert.equal(g.length, 15);
  assert.equal(g[0], 1);
  assert.equal(g[14], 0);
  const want = [1, 0.975, 0.947, 0.917, 0.882, 0.844, 0.8, 0.75, 0.692, 0.625, 0.545, 0.45, 0.333, 0.188, 0];
  g.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-3, `tau_${i} = ${v}`));
  // sigma at a = 1.3 for the first transitions (docs/method.md 3.3)
  const sig = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => sdeSigma(g, j, 1.3));
  [8.22, 8.12, 5.52, 4.31, 3.56, 3.02, 2.60, 2.25].forEach((s, j) => assert.ok(Math.abs(sig[j]! - s) < 0.01, `sigma_${j} = ${sig[j]}`));
});

test('Euler ODE on v = (x - x0)/t lands exactly on x0 (noise at t = 1, x moves against v)', () => {
  torch.scope(() => {
    torch.manualSeed(0);
    const target = torch.randn([4, 16]);
    const noise = torch.randn([4, 16]);
    for (const [n, s] of [[2, 1], [10, 3], [50, 3]] as const) {
      const calls: number[] = [];
      const out = sampleOde(noise, (x, tau) => {
        calls.push(tau);
        return x.sub(target).div(tau);
      }, timestepGrid(n, s));
      assert.equal(calls.length, n - 1);
      assert.ok(maxAbs(out, target) < 1e-5, `${n} steps`);
    }
    // one step subtracts v |dt|
    const x = tensor([1, 2], { dtype: 'float32' });
    assert.deepEqual(eulerStep(x, tensor([1, -1], { dtype: 'float32' }), 1, 0.75).toArray(), [0.75, 2.25]);
  });
});

test('CFG: formula, renorm, image branch, and scale 1 equals the conditional branch', () => {
  torch.scope(() => {
    const f = (v: number[][]): torch.Tensor => tensor(v, { dtype: 'float32' });
    const c = f([[1, 0], [0, 1]]);
    const u = f([[0, 0], [0, 0.5]]);
    // renormMin 1 pins the renorm scale to 1: the raw guidance formula
    const raw = cfgCombine(c, u, null, { textScale: 4, renormMin: 1 });
    assert.deepEqual(raw.toArray(), [[4, 0], [0, 2.5]]);
    // global renorm: v' scaled by ||c|| / ||v'||
    const g = cfgCombine(c, u, null, { textScale: 4, renormType: 'global' });
    const ratio = Math.SQRT2 / Math.sqrt(16 + 6.25);
    assert.ok(maxAbs(g, f([[4 * ratio, 0], [0, 2.5 * ratio]])) < 1e-6);
    // channel renorm: per token
    const ch = cfgCombine(c, u, null, { textScale: 4, renormType: 'channel' });
    assert.ok(maxAbs(ch, f([[1, 0], [0, 1]])) < 1e-6);
    // image branch
    const ui = f([[0, 0], [0, 0]]);
    const img = cfgCombine(c, u, ui, { textScale: 4, imgScale: 2, renormMin: 1 });
    assert.deepEqual(img.toArray(), [[8, 0], [0, 5]]);
    // scale 1: the conditional velocity, whatever the other branches
    assert.deepEqual(cfgCombine(c, u, ui, { textScale: 1, imgScale: 2 }).toArray(), c.toArray());
    assert.ok(cfgActive(0.5, [0.4, 1]) && cfgActive(1, [0.4, 1]) && !cfgActive(0.4, [0.4, 1]));
  });
});

test('SDE step: a = 0 is the Euler step; the log-prob of its own draw is -mean(eps^2)/2', () => {
  torch.scope(() => {
    torch.manualSeed(1);
    const x = torch.randn([8, 4]);
    const v = torch.randn([8, 4]);
    const ode = sdeStep(x, v, 0.8, 0.75, 0);
    assert.ok(maxAbs(ode.next, eulerStep(x, v, 0.8, 0.75)) < 1e-6);
    const eps = torch.randn([8, 4]);
    const tau = 0.8, next = 0.75, sigma = 2.6;
    const s = sdeStep(x, v, tau, next, sigma, { noise: eps });
    assert.ok(Math.abs(s.logProb.item() + eps.pow(2).mean().item() / 2) < 1e-5);
    const dt = next - tau;
    const mu = x.mul(1 + (sigma * sigma * dt) / (2 * tau)).add(v.mul((1 + (sigma * sigma * (1 - tau)) / (2 * tau)) * dt));
    assert.ok(maxAbs(s.mean, mu) < 1e-5);
    // scoring a stored sample reproduces the same log-prob
    const again = sdeStep(x, v, tau, next, sigma, { sample: s.next });
    assert.ok(Math.abs(again.logProb.item() - s.logProb.item()) < 1e-6);
  });
});
