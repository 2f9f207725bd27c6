// CLIP in the transformers layout: the tokenizer from vocab.json + merges.txt, both towers and the
// CLIP-T / CLIP-I scores against plain-torch reference math (fixtures/make_reward_fixture.py), and
// strict loading that names missing keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { arange, noGrad, scope } from '../../src/torch/index.js';
import { ClipScorer, ClipTokenizer, bytesToUnicode, CLIPT_SCALE, loadClipModel } from '../../src/reward/index.js';
import { assertClose, fixture, formulaImages, tempDir, writeModelFolder, type ParamSpec } from './helpers.js';

const fx = fixture.clip;

function writeClipFolder(dir: string, options: { drop?: string[]; extra?: Map<string, torch.Tensor> } = {}): void {
  writeModelFolder(dir, fx.params as ParamSpec[], fx.config, options);
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(fx.vocab));
  writeFileSync(join(dir, 'merges.txt'), fx.merges_txt);
}

test('bytesToUnicode is the GPT-2/CLIP byte map (printable bytes map to themselves)', () => {
  const m = bytesToUnicode();
  assert.equal(m.length, 256);
  assert.equal(m['a'.charCodeAt(0)], 'a');
  assert.equal(m[0x20], String.fromCharCode(256 + 32)); // space -> 'Ġ'
  assert.equal(new Set(m).size, 256);
});

test('CLIP tokenizer: vocab.json + merges.txt layout, lower-casing, </w> merges, bos/eos, truncation', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeClipFolder(dir);
    const tok = ClipTokenizer.load(dir);
    assert.equal(tok.bosId, fx.vocab['<|startoftext|>']);
    assert.equal(tok.eosId, fx.vocab['<|endoftext|>']);
    fx.texts.forEach((t: string, i: number) => assert.deepEqual(tok.encode(t, fx.config.text_config.max_position_embeddings), fx.ids[i], t));
    // 'tessel' is merged down to one symbol with its end-of-word marker
    assert.deepEqual(tok.encodeText('Tessel'), [fx.vocab['tessel</w>']]);
  } finally {
    cleanup();
  }
});

test('CLIP: image and text embeddings, CLIP-T and CLIP-I match the reference math (1e-4)', () => {
  const { dir, cleanup } = tempDir();
  try {
    // Older transformers saved position_ids buffers; the loader skips them.
    writeClipFolder(dir, { extra: new Map([['text_model.embeddings.position_ids', arange(0, 16).reshape([1, 16])]]) });
    const scorer = ClipScorer.load(dir, 'tiny-clip');
    assert.equal(scorer.id, 'tiny-clip');
    scope(() => noGrad(() => {
      const images = formulaImages(fx.image_shape, fx.image_seed);
      const img = scorer.model.imageFeatures(scorer.pixels(images));
      assertClose(img.dataSync() as Float32Array, fx.image_embeds, 1e-4, 'image embeds');
      const ids = scorer.tokenizer.encodeBatch(fx.texts, fx.config.text_config.max_position_embeddings);
      const txt = scorer.model.textFeatures(ids);
      assertClose(txt.dataSync() as Float32Array, fx.text_embeds, 1e-4, 'text embeds');
      assertClose(scorer.score(images, fx.texts), fx.clip_t, 1e-4, 'CLIP-T');
      assertClose(scorer.imageSimilarity(images, images).flat(), fx.clip_i, 1e-4, 'CLIP-I');
      // CLIP-T is (100/30) cos, and one image scored alone equals its batched score
      const cos = scorer.cosine(images, fx.texts);
      assertClose(cos.map((c) => c * CLIPT_SCALE), fx.clip_t, 1e-5, 'scale');
      assertClose(scorer.score(images.narrow(0, 1, 1), [fx.texts[1]]), [fx.clip_t[1]], 1e-4, 'alone vs batched');
      // decoded CHW images in [-1, 1] score like the [0, 1] tensor batch
      const chw = [0, 1].map((i) => ({ channels: 3 as const, height: 40, width: 48, data: images.select(0, i).mul(2).sub(1).dataSync() as Float32Array }));
      assertClose(scorer.score(chw, fx.texts.slice(0, 2)), fx.clip_t.slice(0, 2), 1e-4, 'CHW input');
    }));
    scorer.dispose();
  } finally {
    cleanup();
  }
});

test('CLIP loader is strict: a missing key is named; a shape mismatch is reported', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeClipFolder(dir, { drop: ['vision_model.pre_layrnorm.weight', 'text_projection.weight'] });
    assert.throws(() => loadClipModel(dir), (e: Error) =>
      /missing keys \(2\)/.test(e.message) && e.message.includes('vision_model.pre_layrnorm.weight') && e.message.includes('text_projection.weight'));
    const { dir: d2, cleanup: c2 } = tempDir();
    try {
      writeClipFolder(d2, { extra: new Map([['visual_projection.weight', torch.zeros([3, 3])]]) });
      assert.throws(() => loadClipModel(d2), /size mismatch for visual_projection\.weight/);
    } finally {
      c2();
    }
  } finally {
    cleanup();
  }
});
