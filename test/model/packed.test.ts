// Packing (docs/method.md 1.5-1.7, 2.1-2.4) on hand-worked examples: positions, routing, the
// per-sample masks with causal / full / noise splits, CE targets, MSE rows and caption dropout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { buildPackedBatch, packedMasks, sampleAttention, disposeBatch, MICRO, type PackSample } from '../../src/model/index.js';

const { bos, eos, startOfImage: soi, endOfImage: eoi } = MICRO.tokens;
const bits = (m: boolean[][]): string[] => m.map((r) => r.map((b) => (b ? '1' : '0')).join(''));

test('two samples: text, generated VAE image, text | text', () => {
  torch.scope(() => {
    const latent = torch.randn([MICRO.vae.zChannels, 2, 2]); // one 2x2 latent token
    const batch = buildPackedBatch([
      [{ kind: 'text', ids: [1, 2], loss: 0 }, { kind: 'vae_image', latent, loss: 1 }, { kind: 'text', ids: [3], loss: 1 }],
      [{ kind: 'text', ids: [5], loss: 1 }],
    ], MICRO, { random: () => 0.5 });
    assert.equal(batch.length, 13);
    assert.deepEqual(batch.sampleLens, [10, 3]);
    assert.deepEqual(batch.splits[0], { lens: [4, 3, 3], modes: ['causal', 'noise', 'causal'] });
    // a generated image shares one position and does not advance it; positions restart per sample
    assert.deepEqual(batch.positionIds, [0, 1, 2, 3, 4, 4, 4, 4, 5, 6, 0, 1, 2]);
    // only the latent token is on the gen expert; its markers are und text tokens
    assert.deepEqual(batch.isGen.map((g, i) => (g ? i : -1)).filter((i) => i >= 0), [5]);
    assert.deepEqual(batch.textIndexes, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(batch.textIds, [bos, 1, 2, eos, soi, eoi, bos, 3, eos, bos, 5, eos]);
    // CE: inputs bos, t1..tn predict t1..tn, eos, only in loss segments
    assert.deepEqual(batch.ceIndexes, [7, 8, 10, 11]);
    assert.deepEqual(batch.ceLabels, [3, eos, 5, eos]);
    assert.deepEqual(batch.vae!.mseIndexes, [5]);
    assert.deepEqual(batch.vae!.mseRows, [0]);
    assert.ok(Number.isFinite(batch.vae!.timestepNormals[0]!));
    assert.deepEqual(bits(sampleAttention(batch.splits[0]!.lens, batch.splits[0]!.modes)), [
      '1000000000',
      '1100000000',
      '1110000000',
      '1111000000',
      '1111111000', // the noise split: everything before plus itself
      '1111111000',
      '1111111000',
      '1111000100', // later text never sees the noisy image (nor its markers)
      '1111000110',
      '1111000111',
    ]);
    const masks = packedMasks(batch);
    assert.deepEqual(masks.map((m) => m.shape), [[10, 10], [3, 3]]);
    const m0 = masks[0]!.toArray() as number[][];
    assert.equal(m0[7]![5], -Infinity);
    assert.equal(m0[7]![3], 0);
    assert.deepEqual(masks[1]!.toArray(), [[0, -Infinity, -Infinity], [0, 0, -Infinity], [0, 0, 0]]);
    disposeBatch(batch);
  });
});

test('ViT and clean VAE images are full splits that advance the position by one', () => {
  torch.scope(() => {
    const image = torch.randn([3, 28, 14]); // 2 x 1 patches of 14
    const latent = torch.randn([MICRO.vae.zChannels, 4, 2]); // 2 x 1 tokens
    const batch = buildPackedBatch([[
      { kind: 'vit_image', image },
      { kind: 'vae_image', latent, loss: 0 },
      { kind: 'text', ids: [9], loss: 1 },
    ]], MICRO);
    assert.deepEqual(batch.splits[0], { lens: [4, 4, 3], modes: ['full', 'full', 'causal'] });
    assert.deepEqual(batch.positionIds, [0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 4]);
    assert.deepEqual(batch.isGen, [false, false, false, false, false, true, true, false, false, false, false]);
    assert.deepEqual(batch.vit!.tokenIndexes, [1, 2]);
    assert.deepEqual(batch.vit!.positionIds, [0, MICRO.vit.maxNumPatchPerSide]);
    assert.deepEqual(batch.vit!.patches.shape, [2, 588]);
    assert.deepEqual(batch.vae!.positionIds, [0, MICRO.maxLatentSize]);
    assert.deepEqual(batch.vae!.timestepNormals, [-Infinity, -Infinity]); // clean: t = 0
    assert.deepEqual(batch.vae!.mseRows, []);
    assert.deepEqual(bits(sampleAttention(batch.splits[0]!.lens, batch.splits[0]!.modes)).slice(0, 5), [
      '11110000000', '11110000000', '11110000000', '11110000000', '11111111000',
    ]);
    disposeBatch(batch);
  });
});

test('caption dropout removes the whole text segment (only enableCfg items)', () => {
  torch.scope(() => {
    const latent = torch.randn([MICRO.vae.zChannels, 2, 2]);
    const plan: PackSample = [{ kind: 'text', ids: [1, 2], loss: 0, enableCfg: 1 }, { kind: 'vae_image', latent, loss: 1 }];
    const dropped = buildPackedBatch([[...plan]], MICRO, { random: () => 0.05 });
    assert.deepEqual(dropped.positionIds, [0, 0, 0]);
    assert.deepEqual(dropped.textIds, [soi, eoi]);
    assert.deepEqual(dropped.splits[0]!.modes, ['noise']);
    const kept = buildPackedBatch([[...plan]], MICRO, { random: () => 0.5 });
    assert.deepEqual(kept.textIds, [bos, 1, 2, eos, soi, eoi]);
    // without enableCfg nothing is dropped, whatever the draw
    const noCfg = buildPackedBatch([[{ kind: 'text', ids: [1], loss: 1 }]], MICRO, { random: () => 0 });
    assert.equal(noCfg.length, 3);
  });
});
