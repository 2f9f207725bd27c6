// SFT image sizing (docs/fidelity.md "Image sizes below the published size"): with data.imageSizing 'aspect' (the default)
// a non-square image keeps its aspect under the official VAE rule scaled to data.imageSize, in
// the packed latents and in packing's token counts; 'square' stretches it as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { disposeBatch, latentDownsample } from '../../src/model/index.js';
import { encodePng, loadSampleCharacter } from '../../src/data/index.js';
import { SftData, modelConfigForTokenizer, resolveRecipe } from '../../src/train/sft-data.js';
import { parseSftConfig } from '../../src/train/sft-config.js';
import { runTokenizer } from '../../src/train/sft.js';
import { loadVae } from '../../src/train/vae-stage.js';
import { randomVae, smallConfig } from './fixtures/sft-fixtures.js';

test('SFT keeps a 300x200 image at 32x24 (aspect) or stretches it to 32x32 (square)', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sft-aspect-'));
  try {
    const vaePath = randomVae(work);
    const { character } = loadSampleCharacter();
    // Every reference image replaced by one 300 x 200 picture (a horizontal ramp).
    const w = 300;
    const h = 200;
    const px = new Uint8Array(w * h * 3).map((_, i) => Math.floor((Math.floor(i / 3) % w) * 255 / w));
    const png = new Uint8Array(await encodePng({ width: w, height: h, data: px }));
    const wide = { ...character, referenceImages: character.referenceImages.map((img) => ({ ...img, data: png })) };
    assert.equal(parseSftConfig({}).data.imageSizing, 'aspect');
    const config = parseSftConfig(smallConfig(vaePath));
    const tok = runTokenizer(config, [wide]);
    const mc = modelConfigForTokenizer('micro', tok);
    const vae = loadVae(vaePath, mc.vae);
    const px16 = latentDownsample(mc); // pixels per latent token side
    const shapes = async (imageSizing: 'aspect' | 'square') => {
      const data = await SftData.create({
        characters: [wide], tokenizer: tok, model: mc, vae, recipe: resolveRecipe('full'), packing: config.data.packing,
        imageSize: 32, vitImageSize: 28, imageSizing, textDropProb: 0, seed: 1,
      });
      try {
        const b = data.packBatch(0);
        const out = b.batch.vae!.images.map((im) => [im.h, im.w]);
        disposeBatch(b.batch);
        b.noise?.dispose();
        return { out, tokens: b.tokens };
      } finally {
        data.dispose();
      }
    };
    // scaledRule(VAE_RULE, 32, stride 8) = 32 / 16 / 8: scale 32/300, 200 * 32/300 = 21.3 -> 21 -> 24.
    const aspect = await shapes('aspect');
    assert.ok(aspect.out.length > 0);
    for (const s of aspect.out) assert.deepEqual(s, [24 / px16, 32 / px16]);
    const square = await shapes('square');
    for (const s of square.out) assert.deepEqual(s, [32 / px16, 32 / px16]);
    vae.dispose();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
