// DINOv2 in the transformers layout: the CLS embedding (with the position table interpolated
// bicubically to a smaller grid) against plain-torch reference math, and strict loading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, scope } from '../../src/torch/index.js';
import { Dinov2Embedder, IdentityScorer, loadDinov2Model } from '../../src/reward/index.js';
import { assertClose, fixture, formulaImages, tempDir, writeModelFolder, type ParamSpec } from './helpers.js';

const fx = fixture.dinov2;

test('DINOv2: CLS of last_hidden_state and cosines match the reference math (1e-4), positions interpolated', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeModelFolder(dir, fx.params as ParamSpec[], fx.config);
    const emb = Dinov2Embedder.load(dir, 'tiny-dinov2', { resize: fx.resize, crop: fx.crop });
    scope(() => noGrad(() => {
      const images = formulaImages(fx.image_shape, fx.image_seed);
      const cls = emb.model.cls(emb.pixels(images));
      assert.deepEqual(cls.shape, [3, 32]);
      assertClose(cls.dataSync() as Float32Array, fx.cls, 1e-4, 'CLS');
      const identity = new IdentityScorer(emb);
      assertClose(identity.similarities(images, images).flat(), fx.cos, 1e-4, 'cosines');
      assert.equal(identity.id, 'tiny-dinov2');
    }));
    emb.dispose();
  } finally {
    cleanup();
  }
});

test('DINOv2 loader is strict and names the missing keys', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeModelFolder(dir, fx.params as ParamSpec[], fx.config, { drop: ['encoder.layer.1.layer_scale2.lambda1', 'embeddings.mask_token'] });
    assert.throws(() => loadDinov2Model(dir), (e: Error) =>
      e.message.includes('encoder.layer.1.layer_scale2.lambda1') && e.message.includes('embeddings.mask_token') && /missing keys/.test(e.message));
  } finally {
    cleanup();
  }
});
