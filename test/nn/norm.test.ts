import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { LayerNorm, RMSNorm, GroupNorm, init } from '../../src/nn/index.js';
import { assertClose, flat, seq } from './helpers.js';

/** Normalises each consecutive run of `size` values (biased variance), in float64. */
function normalizeRuns(xs: number[], size: number, eps: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < xs.length; s += size) {
    const run = xs.slice(s, s + size);
    const mean = run.reduce((a, b) => a + b, 0) / size;
    const variance = run.reduce((a, b) => a + (b - mean) ** 2, 0) / size;
    for (const v of run) out.push((v - mean) / Math.sqrt(variance + eps));
  }
  return out;
}

test('LayerNorm matches (x - mean) / sqrt(var + eps) * w + b over the last dim', () => {
  const ln = new LayerNorm(4, 1e-5);
  init.normal_(ln.weight!);
  init.normal_(ln.bias!);
  const w = flat(ln.weight!);
  const b = flat(ln.bias!);
  torch.scope(() => {
    const xs = seq(3 * 4, 11).map((v) => v * 3 + 1);
    const y = ln.forward(torch.tensor(xs, { shape: [3, 4] }));
    const expected = normalizeRuns(xs, 4, 1e-5).map((v, i) => v * w[i % 4]! + b[i % 4]!);
    assertClose(flat(y), expected, 1e-5, 1e-5, 'layer_norm');
  });
  ln.dispose();
});

test('LayerNorm over two trailing dims, and without affine parameters', () => {
  const ln = new LayerNorm([2, 3], 1e-6, { elementwiseAffine: false });
  assert.equal(ln.numParameters(), 0);
  torch.scope(() => {
    const xs = seq(2 * 2 * 3, 5);
    const y = ln.forward(torch.tensor(xs, { shape: [2, 2, 3] }));
    assertClose(flat(y), normalizeRuns(xs, 6, 1e-6), 1e-5, 1e-5);
  });
  ln.dispose();
});

test('RMSNorm is x * rsqrt(mean(x^2) + eps) * w, as Qwen2RMSNorm', () => {
  const n = new RMSNorm(5, 1e-6);
  init.uniform_(n.weight, 0.5, 1.5);
  const w = flat(n.weight);
  const xs = seq(2 * 5, 3).map((v) => v * 4);
  const expected: number[] = [];
  for (let r = 0; r < 2; r++) {
    const row = xs.slice(r * 5, r * 5 + 5);
    const ms = row.reduce((a, v) => a + v * v, 0) / 5;
    for (let i = 0; i < 5; i++) expected.push((row[i]! / Math.sqrt(ms + 1e-6)) * w[i]!);
  }
  torch.scope(() => {
    const y = n.forward(torch.tensor(xs, { shape: [2, 5] }));
    assert.equal(y.dtype, 'float32');
    assertClose(flat(y), expected, 1e-6, 1e-6, 'rms_norm fp32');
  });
  // bf16 input: normalised in float32, rounded to bf16, then times the (bf16) weight
  n.toDtype('bfloat16');
  torch.scope(() => {
    const x = torch.tensor(xs, { shape: [2, 5] }).to('bfloat16');
    const y = n.forward(x);
    assert.equal(y.dtype, 'bfloat16');
    const xb = flat(x);
    const wb = flat(n.weight);
    const toBf16 = (v: number): number => torch.scope(() => flat(torch.tensor([v]).to('bfloat16'))[0]!);
    const ref: number[] = [];
    for (let r = 0; r < 2; r++) {
      const row = xb.slice(r * 5, r * 5 + 5).map(Math.fround);
      const ms = Math.fround(row.reduce((a, v) => Math.fround(a + Math.fround(v * v)), 0) / 5);
      const inv = Math.fround(1 / Math.sqrt(Math.fround(ms + Math.fround(1e-6))));
      for (let i = 0; i < 5; i++) ref.push(toBf16(wb[i]! * toBf16(Math.fround(row[i]! * inv))));
    }
    // each value is within one bf16 rounding step (2^-8 relative) of the reference
    assertClose(flat(y), ref, 2 ** -8, 0, 'rms_norm bf16');
  });
  n.dispose();
});

test('GroupNorm normalises each (sample, group) over its channels and positions', () => {
  const N = 2, C = 4, G = 2, H = 2, W = 3;
  const gn = new GroupNorm(G, C, 1e-5);
  init.normal_(gn.weight!);
  init.normal_(gn.bias!);
  const w = flat(gn.weight!);
  const b = flat(gn.bias!);
  const xs = seq(N * C * H * W, 9).map((v, i) => v * (1 + (i % 5)) + 0.5);
  // In NCHW layout one (sample, group) is a contiguous run of (C/G)*H*W values
  const normed = normalizeRuns(xs, (C / G) * H * W, 1e-5);
  const expected = normed.map((v, i) => {
    const c = Math.floor(i / (H * W)) % C;
    return v * w[c]! + b[c]!;
  });
  torch.scope(() => {
    const y = gn.forward(torch.tensor(xs, { shape: [N, C, H, W] }));
    assert.deepEqual(y.shape, [N, C, H, W]);
    assertClose(flat(y), expected, 1e-5, 1e-5, 'group_norm');
  });
  assert.throws(() => new GroupNorm(3, 4), /not divisible/);
  gn.dispose();
});

test('norm layers pass gradients to their weights', () => {
  const n = new RMSNorm(3);
  torch.scope(() => {
    const x = torch.tensor([[1, 2, 2]], { dtype: 'float32' });
    n.forward(x).sum().backward();
    // d/dw_i sum(w * x / rms) = x_i / rms, rms = sqrt((1 + 4 + 4) / 3 + 1e-6)
    const rms = Math.sqrt(3 + 1e-6);
    assertClose(flat(n.weight.grad!), [1 / rms, 2 / rms, 2 / rms], 1e-6, 0);
  });
  n.dispose();
});
