// Timestep embedding, the fixed 2-D sin-cos tables, patchify/unpatchify and flattened ids
// (docs/method.md 1.3-1.4), each against a closed form or a hand-made example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { tensor } from '../../src/torch/index.js';
import {
  flattenedPositionIds, patchify, PositionEmbedding, sincos2dTable, timestepFeatures, TimestepEmbedder, unpatchify,
} from '../../src/model/index.js';

test('timestep features: raw t, cos first, freq_k = exp(-ln(10000) k / 128)', () => {
  torch.scope(() => {
    const ts = [0, 0.25, 1];
    const f = timestepFeatures(tensor(ts), 256).toArray() as number[][];
    assert.deepEqual([f.length, f[0]!.length], [3, 256]);
    ts.forEach((t, i) => {
      for (const k of [0, 1, 17, 127]) {
        const freq = Math.exp(-Math.log(10000) * k / 128);
        assert.ok(Math.abs(f[i]![k]! - Math.cos(t * freq)) < 1e-6);
        assert.ok(Math.abs(f[i]![128 + k]! - Math.sin(t * freq)) < 1e-6);
      }
    });
    // t = 0 gives cos = 1 in the first half, sin = 0 in the second
    assert.ok(f[0]!.slice(0, 128).every((v) => v === 1) && f[0]!.slice(128).every((v) => v === 0));
    const emb = new TimestepEmbedder(8);
    assert.deepEqual([...emb.stateDictInfo().keys()], ['mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias']);
    assert.deepEqual(emb.forward(tensor([0.5, 0.1])).shape, [2, 8]);
    emb.dispose();
  });
});

test('2-D sin-cos table: the column fills the first half, row r*G + c', () => {
  const D = 8, G = 3;
  const tab = sincos2dTable(D, G);
  const w = [1, 1 / 100]; // 10000^(-k/2), k = 0, 1
  for (let r = 0; r < G; r++) for (let c = 0; c < G; c++) {
    const row = Array.from(tab.subarray((r * G + c) * D, (r * G + c + 1) * D));
    const want = [Math.sin(c * w[0]!), Math.sin(c * w[1]!), Math.cos(c * w[0]!), Math.cos(c * w[1]!),
      Math.sin(r * w[0]!), Math.sin(r * w[1]!), Math.cos(r * w[0]!), Math.cos(r * w[1]!)];
    row.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `r${r} c${c} i${i}`));
  }
  torch.scope(() => {
    const pe = new PositionEmbedding(G, D);
    assert.deepEqual([...pe.stateDictInfo().keys()], ['pos_embed']);
    const rows = pe.forward(tensor([5])).toArray() as number[][]; // r = 1, c = 2
    assert.ok(Math.abs(rows[0]![0]! - Math.sin(2)) < 1e-6 && Math.abs(rows[0]![4]! - Math.sin(1)) < 1e-6);
    pe.dispose();
  });
});

test('patchify orders rows raster over the grid and features (p, q, c), channel fastest', () => {
  torch.scope(() => {
    // C=2, H=2, W=4, p=2: value = 100 c + 10 y + x
    const img: number[][][] = [0, 1].map((c) => [0, 1].map((y) => [0, 1, 2, 3].map((x) => 100 * c + 10 * y + x)));
    const t = tensor(img, { dtype: 'float32' });
    const rows = patchify(t, 2).toArray();
    assert.deepEqual(rows, [
      [0, 100, 1, 101, 10, 110, 11, 111], // patch (0, 0): (y0,x0,c0) (y0,x0,c1) (y0,x1,c0) ...
      [2, 102, 3, 103, 12, 112, 13, 113], // patch (0, 1)
    ]);
    assert.deepEqual(unpatchify(patchify(t, 2), 1, 2, 2, 2).toArray(), img);
    const big = torch.randn([4, 6, 8]);
    assert.ok(unpatchify(patchify(big, 2), 3, 4, 2, 4).equal(big));
    assert.throws(() => patchify(big, 4), /not a multiple/);
  });
});

test('flattened position ids: row * side + col', () => {
  assert.deepEqual(flattenedPositionIds(2, 3, 70), [0, 1, 2, 70, 71, 72]);
  assert.throws(() => flattenedPositionIds(5, 1, 4), /exceeds/);
});
