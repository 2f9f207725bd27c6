import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import {
  AdamW, SGD, clipGradNorm, Linear, Sequential, SiLU, EMA, warmupCosineSchedule, saveOptimizer, loadOptimizer,
} from '../../src/nn/index.js';
import { assertClose, assertSameF32, flat, seq } from './helpers.js';

// Produced by test/nn/fixtures/make_optim_fixture.py with PyTorch 1.13 (foreach=False).
interface Case { shape: number[]; p0: number[]; grads: number[][]; after: number[][]; state: Record<string, number | number[]> }
const fixture = JSON.parse(readFileSync(new URL('../../../test/nn/fixtures/optim_fixture.json', import.meta.url), 'utf8')) as {
  optim: Record<string, Case>;
  clip: Record<string, { max_norm: number; norm_type: number | 'inf'; g1: number[]; g2: number[]; total: number; g1_after: number[]; g2_after: number[] }>;
};

const makers: Record<string, (ps: torch.Tensor[]) => AdamW | SGD> = {
  adamw_default: (ps) => new AdamW(ps, { lr: 1e-2 }),
  adamw_bagel: (ps) => new AdamW(ps, { lr: 2e-5, betas: [0.9, 0.95], eps: 1e-15, weightDecay: 0 }),
  adamw_wd: (ps) => new AdamW(ps, { lr: 0.1, betas: [0.8, 0.9], eps: 1e-6, weightDecay: 0.5 }),
  adamw_amsgrad: (ps) => new AdamW(ps, { lr: 0.05, weightDecay: 0.1, amsgrad: true }),
  sgd_plain: (ps) => new SGD(ps, { lr: 0.1 }),
  sgd_momentum_wd: (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
  sgd_nesterov: (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
};

function param(values: number[], shape: number[]): torch.Tensor {
  return torch.tensor(values, { shape, dtype: 'float32', requiresGrad: true }).keep();
}

for (const [name, c] of Object.entries(fixture.optim)) {
  test(`${name}: every step equals PyTorch 1.13's to the bit`, () => {
    const p = param(c.p0, c.shape);
    const opt = makers[name]!([p]);
    for (let k = 0; k < c.grads.length; k++) {
      torch.scope(() => {
        p.grad = torch.tensor(c.grads[k]!, { shape: c.shape });
        opt.step();
      });
      assertSameF32(flat(p), c.after[k]!, `${name} step ${k + 1}`);
    }
    torch.scope(() => {
      const sd = opt.stateDict();
      for (const [k, v] of Object.entries(c.state)) {
        const t = sd.tensors.get(`state.0.${k}`);
        assert.ok(t, `state ${k}`);
        if (typeof v === 'number') assert.equal(t.item(), v);
        else assertSameF32(flat(t), v, `${name} state ${k}`);
      }
    });
    opt.dispose();
    p.dispose();
  });
}

/** PyTorch's single-tensor AdamW in plain JS, every tensor op rounded to float32. */
function adamwReference(p0: number[], grads: number[][], o: { lr: number; b1: number; b2: number; eps: number; wd: number }): number[][] {
  const f = Math.fround;
  const p = p0.map(f);
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const out: number[][] = [];
  grads.forEach((g, k) => {
    const step = k + 1;
    const bc1 = 1 - o.b1 ** step;
    const bc2 = 1 - o.b2 ** step;
    const stepSize = o.lr / bc1;
    const bc2Sqrt = Math.sqrt(bc2);
    for (let i = 0; i < p.length; i++) {
      p[i] = f(p[i]! * f(1 - o.lr * o.wd));
      m[i] = f(f(m[i]! * f(o.b1)) + f(f(1 - o.b1) * g[i]!));
      v[i] = f(f(v[i]! * f(o.b2)) + f(f(1 - o.b2) * f(g[i]! * g[i]!)));
      const denom = f(f(f(Math.sqrt(v[i]!)) / f(bc2Sqrt)) + f(o.eps));
      p[i] = f(p[i]! + f(f(-stepSize) * f(m[i]! / denom)));
    }
    out.push([...p]);
  });
  return out;
}

test('AdamW matches a plain-JS reimplementation of the PyTorch formula', () => {
  const shape = [4, 5];
  const p0 = seq(20, 1);
  const grads = [0, 1, 2, 3, 4, 5].map((k) => seq(20, 100 + k).map((g) => g * (1 + k)));
  const o = { lr: 0.03, b1: 0.9, b2: 0.95, eps: 1e-8, wd: 0.1 };
  const ref = adamwReference(p0, grads, o);
  const p = param(p0, shape);
  const opt = new AdamW([p], { lr: o.lr, betas: [o.b1, o.b2], eps: o.eps, weightDecay: o.wd });
  grads.forEach((g, k) => {
    torch.scope(() => {
      p.grad = torch.tensor(g, { shape });
      opt.step();
    });
    // libtorch may fuse multiply-adds, so allow a few float32 ulps
    assertClose(flat(p), ref[k]!, 1e-6, 1e-7, `step ${k + 1}`);
  });
  opt.dispose();
  p.dispose();
});

test('SGD with momentum and weight decay matches the closed form on a quadratic', () => {
  // loss = 0.5 * p^2 elementwise, so g = p; with wd: d = (1 + wd) p; buf = mu buf + d (dampening 0)
  const p = param([1, -2], [2]);
  const opt = new SGD([p], { lr: 0.1, momentum: 0.5, weightDecay: 0.2 });
  let ref = [1, -2];
  let buf: number[] | null = null;
  for (let k = 0; k < 4; k++) {
    torch.scope(() => {
      p.pow(2).mul(0.5).sum().backward();
      opt.step();
      opt.zeroGrad();
    });
    const d = ref.map((x) => x + 0.2 * x);
    buf = buf === null ? d : buf.map((b, i) => 0.5 * b + d[i]!);
    ref = ref.map((x, i) => x - 0.1 * buf![i]!);
    assertClose(flat(p), ref, 1e-6, 1e-7, `step ${k + 1}`);
  }
  assert.equal(p.grad, null);
  opt.dispose();
  p.dispose();
});

test('parameters without gradients are skipped; param groups take their own hyperparameters', () => {
  const a = param([1, 1], [2]);
  const b = param([1, 1], [2]);
  const c = param([5], [1]);
  const opt = new SGD([{ params: [a], lr: 1 }, { params: [b, c] }], { lr: 0.1 });
  torch.scope(() => {
    a.grad = torch.tensor([1, 2], { dtype: 'float32' });
    b.grad = torch.tensor([1, 2], { dtype: 'float32' });
    opt.step();
  });
  assert.deepEqual(flat(a), [0, -1]);
  assertClose(flat(b), [0.9, 0.8], 1e-7, 0);
  assert.deepEqual(flat(c), [5]);
  opt.setLr(0.5);
  assert.deepEqual(opt.paramGroups.map((g) => g.lr), [0.5, 0.5]);
  assert.throws(() => new SGD([{ params: [a] }, { params: [a] }], { lr: 1 }), /more than one group/);
  for (const t of [a, b, c]) t.dispose();
});

test('AdamW state saved to safetensors and loaded resumes exactly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nn-optim-'));
  try {
    const shape = [3, 2];
    const gradAt = (k: number): number[] => seq(6, 50 + k);
    const p = param(seq(6, 9), shape);
    const opt = new AdamW([p], { lr: 0.01, betas: [0.9, 0.95], weightDecay: 0.05 });
    const run = (o: AdamW, t: torch.Tensor, k: number): void => torch.scope(() => {
      t.grad = torch.tensor(gradAt(k), { shape });
      o.step();
    });
    for (let k = 0; k < 3; k++) run(opt, p, k);
    saveOptimizer(join(dir, 'opt.safetensors'), opt);
    // a fresh parameter with the same values and a fresh optimizer with other hyperparameters
    const q = param(flat(p), shape);
    const opt2 = new AdamW([q], { lr: 1 });
    loadOptimizer(join(dir, 'opt.safetensors'), opt2);
    assert.equal(opt2.lr, 0.01);
    assert.deepEqual(opt2.paramGroups[0]!.betas, [0.9, 0.95]);
    for (let k = 3; k < 6; k++) {
      run(opt, p, k);
      run(opt2, q, k);
    }
    assertSameF32(flat(q), flat(p), 'resumed');
    torch.scope(() => assert.equal(opt2.stateDict().tensors.get('state.0.step')!.item(), 6));
    assert.throws(() => loadOptimizer(join(dir, 'opt.safetensors'), new SGD([q], { lr: 1 })), /holds AdamW optimizer state, not SGD/);
    for (const x of [opt, opt2]) x.dispose();
    p.dispose();
    q.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [name, c] of Object.entries(fixture.clip)) {
  test(`clipGradNorm ${name} equals torch.nn.utils.clip_grad_norm_`, () => {
    const a = param([0, 0, 0, 0, 0, 0], [2, 3]);
    const b = param([0, 0, 0, 0], [4]);
    const unused = param([0], [1]);
    torch.scope(() => {
      a.grad = torch.tensor(c.g1, { shape: [2, 3] });
      b.grad = torch.tensor(c.g2, { shape: [4] });
    });
    const normType = c.norm_type === 'inf' ? Infinity : c.norm_type;
    const total = clipGradNorm([a, b, unused], c.max_norm, normType);
    assert.equal(Math.fround(total), c.total);
    torch.scope(() => {
      assertSameF32(flat(a.grad!), c.g1_after, 'g1');
      assertSameF32(flat(b.grad!), c.g2_after, 'g2');
    });
    // the closed form, independently: total = ||(g1, g2)||_p, and g <- g * min(1, max / (total + 1e-6))
    const all = [...c.g1, ...c.g2];
    const expected = normType === Infinity ? Math.max(...all.map(Math.abs)) : all.reduce((s, g) => s + Math.abs(g) ** normType, 0) ** (1 / normType);
    assertClose([total], [expected], 1e-6, 0, 'total');
    const coef = Math.min(1, c.max_norm / (expected + 1e-6));
    torch.scope(() => assertClose(flat(a.grad!), c.g1.map((g) => g * coef), 1e-6, 1e-7, 'scaled'));
    for (const t of [a, b, unused]) t.dispose();
  });
}

function makeMlp(): Sequential {
  return new Sequential(new Linear(2, 32), new SiLU(), new Linear(32, 32), new SiLU(), new Linear(32, 1));
}

/** Regression target y = sin(2 x0) + x1^2 on a fixed grid. */
function dataset(): { x: torch.Tensor; y: torch.Tensor } {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < 64; i++) {
    const x0 = (i % 8) / 4 - 1;
    const x1 = Math.floor(i / 8) / 4 - 1;
    xs.push(x0, x1);
    ys.push(Math.sin(2 * x0) + x1 * x1);
  }
  return { x: torch.tensor(xs, { shape: [64, 2] }).keep(), y: torch.tensor(ys, { shape: [64, 1] }).keep() };
}

test('a small MLP trained with AdamW, clipping and a cosine schedule lowers its loss', () => {
  torch.manualSeed(0);
  const model = makeMlp();
  const { x, y } = dataset();
  const opt = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0 });
  const lrAt = warmupCosineSchedule({ lr: 1e-2, warmupSteps: 10, totalSteps: 300, minLr: 1e-3 });
  const losses: number[] = [];
  for (let step = 0; step < 300; step++) {
    losses.push(torch.scope(() => {
      opt.setLr(lrAt(step));
      const loss = torch.ops.mse_loss(model.forward(x), y);
      loss.backward();
      clipGradNorm(model.parameters(), 1.0);
      opt.step();
      opt.zeroGrad();
      return loss.item();
    }));
  }
  const first = losses[0]!;
  const last = losses.at(-1)!;
  assert.ok(last < first * 0.05, `loss ${first} -> ${last}`);
  assert.ok(last < 0.02, `final loss ${last}`);
  model.dispose();
  opt.dispose();
  x.dispose();
  y.dispose();
});

test('200 training steps in scopes leak no tensors', () => {
  const start = torch.memory().tensors;
  torch.manualSeed(1);
  const model = makeMlp();
  const { x, y } = dataset();
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const ema = new EMA(model, 0.99);
  const step = (): void => torch.scope(() => {
    const loss = torch.ops.mse_loss(model.forward(x), y);
    loss.backward();
    clipGradNorm(model.parameters(), 1.0);
    opt.step();
    opt.zeroGrad();
    ema.update(model);
  });
  step(); // creates the optimizer state
  const afterFirst = torch.memory().tensors;
  for (let i = 0; i < 200; i++) step();
  assert.equal(torch.memory().tensors, afterFirst, 'live tensors after 200 steps');
  model.dispose();
  opt.dispose();
  ema.dispose();
  x.dispose();
  y.dispose();
  assert.equal(torch.memory().tensors, start, 'live tensors after disposing everything');
});
