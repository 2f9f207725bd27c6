import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { readFileSync } from 'node:fs';
import { init, Linear, Conv2d, Embedding } from '../../src/nn/index.js';
import { assertClose, assertSameF32, flat } from './helpers.js';

function stats(v: number[]): { mean: number; std: number; min: number; max: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { mean, std, min: Math.min(...v), max: Math.max(...v) };
}

test('fan in / fan out of linear and conv weights', () => {
  assert.deepEqual(init.fanInAndFanOut([8, 3]), { fanIn: 3, fanOut: 8 });
  assert.deepEqual(init.fanInAndFanOut([16, 4, 3, 5]), { fanIn: 60, fanOut: 240 });
  assert.throws(() => init.fanInAndFanOut([5]), /at least 2 dimensions/);
});

test('calculateGain matches torch.nn.init.calculate_gain', () => {
  assert.equal(init.calculateGain('linear'), 1);
  assert.equal(init.calculateGain('relu'), Math.SQRT2);
  assert.equal(init.calculateGain('tanh'), 5 / 3);
  // leaky_relu with a = sqrt(5): sqrt(2 / (1 + 5)) = sqrt(1/3)
  assertClose([init.calculateGain('leaky_relu', Math.sqrt(5))], [Math.sqrt(1 / 3)], 1e-15, 0);
});

test('kaiming and xavier draw with the documented bounds and standard deviations', () => {
  torch.manualSeed(2024);
  torch.scope(() => {
    const t = torch.empty([400, 250]);
    // kaiming uniform, relu, fan_in 250: bound = sqrt(2) * sqrt(3 / 250)
    let s = stats(flat(init.kaimingUniform_(t, { nonlinearity: 'relu' })));
    const kb = Math.SQRT2 * Math.sqrt(3 / 250);
    assert.ok(s.max <= kb && s.min >= -kb && s.max > 0.99 * kb);
    assertClose([s.std], [kb / Math.sqrt(3)], 0.02, 0, 'kaiming uniform std');
    // fan_out mode uses 400
    s = stats(flat(init.kaimingNormal_(t, { nonlinearity: 'relu', mode: 'fan_out' })));
    assertClose([s.std], [Math.SQRT2 / Math.sqrt(400)], 0.02, 0, 'kaiming normal std');
    // xavier uniform: a = sqrt(6 / (250 + 400))
    const xa = Math.sqrt(6 / 650);
    s = stats(flat(init.xavierUniform_(t)));
    assert.ok(s.max <= xa && s.min >= -xa && s.max > 0.99 * xa);
    s = stats(flat(init.xavierNormal_(t, 2)));
    assertClose([s.std], [2 * Math.sqrt(2 / 650)], 0.02, 0, 'xavier normal std');
    s = stats(flat(init.normal_(t, 3, 0.5)));
    assertClose([s.mean, s.std], [3, 0.5], 0.01, 0, 'normal');
    s = stats(flat(init.uniform_(t, -2, 6)));
    assert.ok(s.min >= -2 && s.max < 6);
    assertClose([s.mean], [2], 0.02, 0, 'uniform mean');
    assert.ok(flat(init.zeros_(t)).every((v) => v === 0));
    assert.ok(flat(init.ones_(t)).every((v) => v === 1));
    assert.ok(flat(init.constant_(t, -0.5)).every((v) => v === -0.5));
  });
});

test('initializers repeat exactly under the same seed and do not touch autograd', () => {
  const p = torch.zeros([10, 10], { requiresGrad: true }).keep();
  torch.manualSeed(7);
  const a = flat(init.kaimingUniform_(p, { a: Math.sqrt(5) }));
  torch.manualSeed(7);
  const b = flat(init.kaimingUniform_(p, { a: Math.sqrt(5) }));
  assert.deepEqual(a, b);
  assert.equal(p.isLeaf, true);
  assert.equal(p.requiresGrad, true);
  p.dispose();
});

test('default layer initialisation draws the same numbers as PyTorch 1.13 under the same seed', () => {
  // Produced by test/nn/fixtures/make_init_fixture.py (same libtorch CPU generator).
  const fx = JSON.parse(readFileSync(new URL('../../../test/nn/fixtures/init_fixture.json', import.meta.url), 'utf8'));
  torch.manualSeed(0);
  const lin = new Linear(4, 3);
  assertSameF32(flat(lin.weight), fx.linear_4_3_seed0.weight, 'linear weight');
  assertSameF32(flat(lin.bias!), fx.linear_4_3_seed0.bias, 'linear bias');
  torch.manualSeed(1);
  const conv = new Conv2d(2, 3, 3);
  assertSameF32(flat(conv.weight), fx.conv2d_2_3_k3_seed1.weight, 'conv weight');
  assertSameF32(flat(conv.bias!), fx.conv2d_2_3_k3_seed1.bias, 'conv bias');
  torch.manualSeed(2);
  const emb = new Embedding(5, 3, { paddingIdx: 2 });
  assertSameF32(flat(emb.weight), fx.embedding_5_3_pad2_seed2.weight, 'embedding weight');
  for (const m of [lin, conv, emb]) m.dispose();
});
