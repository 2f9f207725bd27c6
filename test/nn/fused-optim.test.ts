// The fused AdamW step and gradient clipping (native/src/fused_optim.cc, docs/engine.md "Fused
// optimizer step"): the same bits as the multi-tensor operators they replace, the values of a
// hand-worked update, and the cases where they must not apply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { AdamW, clipGradNorm, type OptimKernel } from '../../src/nn/index.js';
import { assertClose, assertSameF32, flat, seq } from './helpers.js';

function param(values: number[], shape: number[] = [values.length]): torch.Tensor {
  return torch.tensor(values, { shape, dtype: 'float32', requiresGrad: true }).keep();
}

function setGrad(p: torch.Tensor, values: number[]): void {
  torch.noGrad(() => {
    p.grad = torch.tensor(values, { shape: p.shape, dtype: p.dtype }).keep();
  });
}

/** Runs `f` with `n` intra-op threads, then restores the count. */
function withThreads<T>(n: number, f: () => T): T {
  const before = torch.getNumThreads();
  torch.setNumThreads(n);
  try {
    return f();
  } finally {
    torch.setNumThreads(before);
  }
}

// Sizes around the vector widths (8, 16), libtorch's grain (32768) and one empty tensor.
const SIZES = [1, 7, 16, 33, 513, 0, 32769, 70001, 5];

interface Run { params: number[][]; state: number[][]; norms: number[]; grads: number[][] }

/**
 * Four steps of AdamW on SIZES with gradients from `seq`, clipped at 1.0 (steps 1, 3, 4 have norms
 * far above it, step 2 below), either clipGradNorm + step or clipAndStep.
 */
function run(kernel: OptimKernel, mode: 'separate' | 'clipAndStep', o: { weightDecay: number; eps: number }): Run {
  const ps = SIZES.map((n, i) => param(seq(n, 11 + i)));
  const opt = new AdamW(ps, { lr: 0.02, betas: [0.9, 0.95], eps: o.eps, weightDecay: o.weightDecay, kernel });
  const norms: number[] = [];
  for (let k = 0; k < 4; k++) {
    const scale = k === 1 ? 1e-4 : 3;
    ps.forEach((p, i) => setGrad(p, seq(p.numel, 100 * k + i + 1).map((g) => g * scale)));
    if (mode === 'separate') {
      norms.push(clipGradNorm(ps, 1.0, 2, kernel));
      opt.step();
    } else norms.push(opt.clipAndStep(1.0));
  }
  const result = torch.scope(() => ({
    params: ps.map(flat),
    grads: ps.map((p) => flat(p.grad!)),
    state: [...opt.stateDict().tensors].filter(([k]) => !k.endsWith('.step')).map(([, t]) => flat(t)),
    norms,
  }));
  opt.dispose();
  for (const p of ps) p.dispose();
  return result;
}

function assertSameRun(a: Run, b: Run, what: string): void {
  assert.deepEqual(a.norms, b.norms, `${what}: norms`);
  a.params.forEach((x, i) => assertSameF32(x, b.params[i]!, `${what}: param ${i}`));
  a.state.forEach((x, i) => assertSameF32(x, b.state[i]!, `${what}: state ${i}`));
}

for (const threads of [1, 2]) {
  test(`fused AdamW and clipping give the multi-tensor operators' bits (${threads} thread(s), with and without weight decay)`, () => {
    withThreads(threads, () => {
      for (const o of [{ weightDecay: 0, eps: 1e-15 }, { weightDecay: 0.1, eps: 1e-8 }]) {
        const reference = run('foreach', 'separate', o);
        assert.ok(reference.norms[0]! > 1 && reference.norms[1]! < 1, `the run clips at some steps only: ${reference.norms}`);
        assertSameRun(run('fused', 'separate', o), reference, `fused, wd ${o.weightDecay}`);
        assertSameRun(run('fused', 'clipAndStep', o), reference, `clipAndStep fused, wd ${o.weightDecay}`);
        assertSameRun(run('foreach', 'clipAndStep', o), reference, `clipAndStep foreach, wd ${o.weightDecay}`);
      }
    });
  });
}

test('clipAndStep leaves p.grad unclipped; clipGradNorm scales it in place', () => {
  const o = { weightDecay: 0.1, eps: 1e-8 };
  const separate = run('auto', 'separate', o);
  const combined = run('auto', 'clipAndStep', o);
  const raw = SIZES.map((n, i) => seq(n, 100 * 3 + i + 1).map((g) => g * 3));
  combined.grads.forEach((g, i) => assertSameF32(g, raw[i]!, `unclipped grad ${i}`));
  const coef = 1 / (separate.norms[3]! + 1e-6);
  separate.grads.forEach((g, i) => assertClose(g, raw[i]!.map((x) => x * coef), 1e-6, 1e-9, `clipped grad ${i}`));
});

/** fma(a, b, c) rounded once to float32 (a * b is exact in double; a tie of the double sum is broken by its error). */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const err = (p - (s - bb)) + (c - bb);
  const r = Math.fround(s);
  if (err === 0 || r === s) return r;
  // s is a float midpoint only if rounding it gives a neighbour at exactly half the gap
  const other = Math.fround(2 * s - r);
  if (other !== r && Math.abs(s - r) === Math.abs(other - s)) return (err > 0) === (other > r) ? other : r;
  return r;
}

/** The libtorch kernels' roundings (native/src/optim_kernels.cc), in plain JS. */
function adamwByHand(p: number[], g: number[], m: number[], v: number[], k: { lr: number; b1: number; b2: number; eps: number; wd: number; step: number; scale: number }): void {
  const f = Math.fround;
  const stepSize = k.lr / (1 - k.b1 ** k.step);
  const bc2 = f(Math.sqrt(1 - k.b2 ** k.step));
  for (let i = 0; i < p.length; i++) {
    const gi = f(g[i]! * f(k.scale));
    const pi = f(p[i]! * f(1 - k.lr * k.wd));
    m[i] = fmaf(f(1 - k.b1), gi, f(m[i]! * f(k.b1)));
    v[i] = fmaf(f(f(1 - k.b2) * gi), gi, f(v[i]! * f(k.b2)));
    const denom = f(f(f(Math.sqrt(v[i]!)) / bc2) + f(k.eps));
    p[i] = f(pi + f(f(f(-stepSize) * m[i]!) / denom));
  }
}

test('fused AdamW equals the float32 formula with libtorch\'s roundings, element by element', () => {
  const n = 37;
  const p = param(seq(n, 5));
  const expected = flat(p);
  const m = new Array<number>(n).fill(0);
  const v = new Array<number>(n).fill(0);
  const hyper = { lr: 0.03, b1: 0.9, b2: 0.95, eps: 1e-6, wd: 0.2 };
  const opt = new AdamW([p], { lr: hyper.lr, betas: [hyper.b1, hyper.b2], eps: hyper.eps, weightDecay: hyper.wd, kernel: 'fused' });
  for (let step = 1; step <= 5; step++) {
    const g = seq(n, 40 + step).map((x) => x * step);
    setGrad(p, g);
    const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
    const total = opt.clipAndStep(2.0);
    assertClose([total], [norm], 1e-6, 0, `norm at step ${step}`);
    const scale = Math.min(1, Math.fround(Math.fround(1 / Math.fround(Math.fround(total) + Math.fround(1e-6))) * 2));
    adamwByHand(expected, g.map(Math.fround), m, v, { ...hyper, step, scale });
    assertSameF32(flat(p), expected, `step ${step}`);
  }
  opt.dispose();
  p.dispose();
});

test('a hand-worked AdamW update: bias correction, weight decay, eps and the clip coefficient', () => {
  // lr 0.1, betas (0.5, 0.75), eps 0.1, weight decay 0.5; gradients [3, 4] (norm 5) clipped at 1:
  // g' = [3, 4] / (5 + 1e-6) ~ [0.6, 0.8].
  const p = param([1, -2]);
  const opt = new AdamW([p], { lr: 0.1, betas: [0.5, 0.75], eps: 0.1, weightDecay: 0.5 });
  setGrad(p, [3, 4]);
  assertClose([opt.clipAndStep(1.0)], [5], 1e-7, 0, 'norm');
  // step 1: m = 0.5 g', v = 0.25 g'^2; m / (1 - 0.5) = g', sqrt(v / (1 - 0.75)) = |g'|;
  // p = p (1 - 0.1 * 0.5) - 0.1 * g' / (|g'| + 0.1)
  const c = 1 / (5 + 1e-6);
  const g1 = [3 * c, 4 * c];
  const after1 = [1 * 0.95 - (0.1 * g1[0]!) / (g1[0]! + 0.1), -2 * 0.95 - (0.1 * g1[1]!) / (g1[1]! + 0.1)];
  assertClose(flat(p), after1, 1e-6, 1e-7, 'step 1');
  // step 2: gradients [0.3, -0.4] (norm 0.5, not clipped); m = 0.5 m + 0.5 g, v = 0.75 v + 0.25 g^2,
  // corrected by 1 - 0.5^2 = 0.75 and 1 - 0.75^2 = 0.4375
  setGrad(p, [0.3, -0.4]);
  assertClose([opt.clipAndStep(1.0)], [0.5], 1e-7, 0, 'norm 2');
  const g2 = [0.3, -0.4];
  const after2 = after1.map((x, i) => {
    const m = 0.5 * (0.5 * g1[i]!) + 0.5 * g2[i]!;
    const v = 0.75 * (0.25 * g1[i]! ** 2) + 0.25 * g2[i]! ** 2;
    return x * 0.95 - (0.1 / 0.75) * m / (Math.sqrt(v) / Math.sqrt(0.4375) + 0.1);
  });
  assertClose(flat(p), after2, 1e-6, 1e-7, 'step 2');
  opt.dispose();
  p.dispose();
});

test('where the fused pass does not apply, auto takes the multi-tensor path and fused says why', () => {
  const cases: [string, () => torch.Tensor][] = [
    ['float64', () => torch.tensor(seq(6, 3), { shape: [3, 2], dtype: 'float64', requiresGrad: true }).keep()],
    ['non-contiguous', () => torch.noGrad(() => {
      const t = torch.tensor(seq(6, 3), { shape: [2, 3], dtype: 'float32' }).t().keep();
      t.requiresGrad = true;
      return t;
    })],
  ];
  for (const [what, make] of cases) {
    const results = (['auto', 'foreach'] as const).map((kernel) => {
      const p = make();
      const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.1, kernel });
      for (let k = 0; k < 2; k++) {
        torch.noGrad(() => {
          p.grad = torch.tensor(seq(6, 9 + k), { shape: [3, 2], dtype: p.dtype }).mul(4).keep();
        });
        opt.clipAndStep(1.0);
      }
      const out = flat(p);
      opt.dispose();
      p.dispose();
      return out;
    });
    assert.deepEqual(results[0], results[1], `${what}: auto = foreach`);
    const p = make();
    torch.noGrad(() => {
      p.grad = torch.ones([3, 2], { dtype: p.dtype }).keep();
    });
    const opt = new AdamW([p], { kernel: 'fused' });
    assert.throws(() => opt.step(), /kernel 'fused' needs contiguous float32 CPU/, what);
    // (the non-contiguous parameter's gradient here is contiguous: its norm is fused)
    if (p.dtype === 'float64') assert.throws(() => clipGradNorm([p], 1, 2, 'fused'), /clipGradNorm: kernel 'fused' needs contiguous float32 CPU gradients/, what);
    opt.dispose();
    p.dispose();
  }
  const q = param([1, 2]);
  setGrad(q, [1, 1]);
  assert.throws(() => new AdamW([q], { amsgrad: true, kernel: 'fused' }).step(), /does not apply to a group using amsgrad/);
  assert.throws(() => clipGradNorm([q], 1, Infinity, 'fused'), /normType 2/);
  assert.throws(() => new AdamW([q], { kernel: 'fast' as OptimKernel }), /AdamW: kernel must be one of auto, fused, foreach, got "fast"/);
  assert.throws(() => clipGradNorm([q], 1, 2, 'x' as OptimKernel), /clipGradNorm: kernel must be one of/);
  q.dispose();
});

test('amsgrad and bfloat16 parameters keep their paths under clipAndStep (same as clipGradNorm + step)', () => {
  const cases: { amsgrad: boolean; dtype: 'float32' | 'bfloat16' }[] = [{ amsgrad: true, dtype: 'float32' }, { amsgrad: false, dtype: 'bfloat16' }];
  for (const c of cases) {
    const out = (['clipAndStep', 'separate'] as const).map((mode) => {
      const p = torch.tensor(seq(8, 2), { dtype: c.dtype, requiresGrad: true }).keep();
      const opt = new AdamW([p], { lr: 0.05, amsgrad: c.amsgrad });
      for (let k = 0; k < 3; k++) {
        setGrad(p, seq(8, 20 + k).map((g) => g * 5));
        if (mode === 'clipAndStep') opt.clipAndStep(1.0);
        else {
          clipGradNorm([p], 1.0);
          opt.step();
        }
      }
      const r = flat(p);
      opt.dispose();
      p.dispose();
      return r;
    });
    assertSameF32(out[0]!, out[1]!, `${c.dtype}${c.amsgrad ? ' amsgrad' : ''}`);
  }
});

test('the fused step counts as an in-place change for autograd', () => {
  const p = param([1, 2, 3]);
  const y = p.mul(p).sum().keep(); // saves p for its backward
  setGrad(p, [1, 1, 1]);
  const opt = new AdamW([p], { kernel: 'fused' });
  opt.step();
  assert.throws(() => y.backward(), /modified by an inplace operation/);
  opt.dispose();
  y.dispose();
  p.dispose();
});

test('the native kernels refuse overlapping tensors and change nothing', () => {
  const base = torch.tensor(seq(8, 4), { dtype: 'float32' }).keep();
  const a = base.narrow(0, 0, 5).keep();
  const b = base.narrow(0, 3, 5).keep();
  const g = torch.ones([5]).keep();
  const [m1, v1, m2, v2] = [0, 1, 2, 3].map(() => torch.zeros([5]).keep());
  const before = flat(base);
  const constants = { gradScale: 1, decay: 1, beta1: 0.9, gradWeight1: 0.1, beta2: 0.99, gradWeight2: 0.01, biasCorrection2Sqrt: 0.1, eps: 1e-8, negStepSize: -0.1 };
  assert.equal(torch.optimKernels.adamwStep([a, b], [g, g], [m1!, m2!], [v1!, v2!], constants), false);
  assert.equal(torch.optimKernels.scaleTensors([a, b], 0.5), false);
  assertSameF32(flat(base), before, 'unchanged');
  // a gradient that is a view of its own parameter is refused too
  assert.equal(torch.optimKernels.adamwStep([a], [a], [m1!], [v1!], constants), false);
  assert.equal(torch.optimKernels.scaleTensors([a, g], 0.5), true);
  assertSameF32(flat(a), before.slice(0, 5).map((x) => Math.fround(x * 0.5)), 'scaled');
  for (const t of [base, a, b, g, m1!, v1!, m2!, v2!]) t.dispose();
});
