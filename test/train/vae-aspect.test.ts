// The VAE stage on aspect-preserving images (docs/fidelity.md "Image sizes below the published
// size"): it sees the sizes SFT gives the VAE (data.imageSizing), a batch of mixed sizes counts
// every image equally (the mean over images of each image's per-element mean), a batch of one
// size is exactly the stacked tensor's, and Unified-SFT's VAE stage trains on the aspect images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { AutoEncoder, MICRO, modelConfig } from '../../src/model/index.js';
import { decodeImage, encodePng, loadSampleCharacter, type Character } from '../../src/data/index.js';
import { loadCharacterImages, loadSizedCharacterImages, vaeImageSpec } from '../../src/train/sft-data.js';
import { reconstructionError, trainVae, vaeLoss, vaeLossGroups } from '../../src/train/vae-stage.js';
import { VaeImages } from '../../src/train/vae-images.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { trainSft } from '../../src/train/sft.js';
import { withTempDir } from './helpers.js';
import { smallConfig } from './fixtures/sft-fixtures.js';

/** The sample character with every other reference image replaced by a 300 x 200 ramp. */
async function mixedCharacter(): Promise<Character> {
  const { character } = loadSampleCharacter();
  const w = 300;
  const h = 200;
  const px = new Uint8Array(w * h * 3).map((_, i) => Math.floor((Math.floor(i / 3) % w) * 255 / w));
  const png = new Uint8Array(await encodePng({ width: w, height: h, data: px }));
  return { ...character, referenceImages: character.referenceImages.map((img, i) => (i % 2 === 0 ? { ...img, data: png } : img)) };
}

const shapes = (list: torch.Tensor[]) => list.map((t) => t.shape.join('x'));
const free = (list: torch.Tensor[]) => list.forEach((t) => t.dispose());

test('VAE images are sized as SFT sizes them: 300x200 -> 32x24 under aspect (micro, side 32, stride 8), 32x32 square', async () => {
  const c = await mixedCharacter();
  const mc = modelConfig('micro');
  const aspect = await loadSizedCharacterImages([c], vaeImageSpec(mc, 32, 'aspect'));
  const square = await loadSizedCharacterImages([c], vaeImageSpec(mc, 32, 'square'));
  // scaledRule(VAE_RULE, 32, 8) = 32 / 16 / 8: 200 * 32 / 300 = 21.3 -> 24; the 256 x 256 images stay 32 x 32.
  assert.deepEqual(shapes(aspect), c.referenceImages.map((_, i) => (i % 2 === 0 ? '3x24x32' : '3x32x32')));
  assert.deepEqual(shapes(square), c.referenceImages.map(() => '3x32x32'));
  // square is the stacked loader's tensor, image by image
  const stacked = await loadCharacterImages([c], 32);
  square.forEach((t, i) => assert.ok(t.equal(stacked.select(0, i)), `image ${i}`));
  stacked.dispose();
  free(aspect);
  free(square);
});

test('mixed sizes: every image counts equally in the reconstruction error and the loss', async () => {
  torch.manualSeed(11);
  const vae = new AutoEncoder(structuredClone(MICRO.vae));
  const list = torch.scope(() => [
    torch.randn([3, 24, 32]).clamp(-1, 1), torch.randn([3, 32, 32]).clamp(-1, 1), torch.randn([3, 24, 32]).clamp(-1, 1),
  ]);
  list.forEach((t) => t.keep());
  const images = new VaeImages(list);
  try {
    assert.equal(images.count, 3);
    assert.equal(images.uniform, false);
    // each image alone, averaged with equal weights (not by pixel count)
    const alone = list.map((t) => torch.scope(() => reconstructionError(vae, t.unsqueeze(0))));
    const want = (alone[0]! + alone[1]! + alone[2]!) / 3;
    assert.ok(Math.abs(reconstructionError(vae, images) - want) < 1e-6, `${reconstructionError(vae, images)} vs ${want}`);
    // The loss of batch [0, 1] is the mean of the two images' losses, with the same posterior draws.
    torch.manualSeed(5);
    const both = vaeLossGroups(vae, images.select([0, 1]), 0.5);
    torch.manualSeed(5);
    const a = vaeLoss(vae, list[0]!.unsqueeze(0), 0.5);
    const b = vaeLoss(vae, list[1]!.unsqueeze(0), 0.5);
    assert.ok(Math.abs(both.loss.item() - (a.loss.item() + b.loss.item()) / 2) < 1e-6);
    assert.ok(Math.abs(both.l1 - (a.l1 + b.l1) / 2) < 1e-7);
    assert.ok(Math.abs(both.kl - (a.kl + b.kl) / 2) < 1e-7);
    // images 0 and 2 share a size: one group of two, the whole batch
    const g = images.select([2, 0]);
    assert.deepEqual(g.map((x) => [x.x.shape.join('x'), x.share]), [['2x3x24x32', 1]]);
    assert.ok(g[0]!.x.select(0, 0).equal(list[2]!));
    for (const r of [both, a, b]) r.loss.dispose();
    g.forEach((x) => x.x.dispose());
  } finally {
    images.dispose();
    free(list);
    vae.dispose();
  }
});

test('trainVae: a list of one size is exactly the stacked tensor; a mixed list trains and writes padded grids', async () => {
  await withTempDir(async (work) => {
    const { character } = loadSampleCharacter();
    const opts = { config: MICRO.vae, steps: 3, lr: 2e-3, batchSize: 3, seed: 2, sampleEvery: 0, progress: null, handleSigint: false };
    const stacked = await loadCharacterImages([character], 32);
    const list = await loadSizedCharacterImages([character], vaeImageSpec(modelConfig('micro'), 32, 'square'));
    const s = await trainVae({ ...opts, images: stacked, runDir: join(work, 'stacked') });
    const l = await trainVae({ ...opts, images: list, runDir: join(work, 'list') });
    const m = (dir: string) => readMetrics(join(work, dir, 'metrics.jsonl')).map((r) => [r.loss, r.l1, r.l2, r.kl]);
    assert.deepEqual(m('list'), m('stacked'));
    assert.equal(l.config.scaleFactor, s.config.scaleFactor);
    s.vae!.dispose();
    l.vae!.dispose();
    stacked.dispose();
    free(list);

    const mixed = await loadSizedCharacterImages([await mixedCharacter()], vaeImageSpec(modelConfig('micro'), 32, 'aspect'));
    const r = await trainVae({ ...opts, images: mixed, runDir: join(work, 'mixed') });
    assert.ok(!r.interrupted);
    assert.ok(Number.isFinite(r.reconstructionAfter) && r.metrics.every((x) => Number.isFinite(x.loss)));
    // the first 4 images, 32 wide each, in 2 rows of 32 (the 24-high images padded to the tallest)
    assert.ok(mixed.length >= 4);
    const png = await decodeImage(new Uint8Array(readFileSync(join(work, 'mixed', 'samples', 'step-000003-vae-recon.png'))));
    assert.deepEqual([png.width, png.height], [4 * 32, 2 * 32]);
    r.vae!.dispose();
    free(mixed);
  });
});

test("Unified-SFT's VAE stage trains on the aspect-sized images and records the sizing", async () => {
  await withTempDir(async (work) => {
    const character = await mixedCharacter();
    const vae = { steps: 2, saveEvery: 2, sampleEvery: 0, batchSize: 3, lr: 2e-3, seed: 3 };
    const cfg = smallConfig('', { totalSteps: 1, saveEvery: 1, vae });
    delete (cfg.vae as { path?: string }).path;
    const r = await trainSft(cfg, { runDir: join(work, 'sft'), characters: [character], progress: null, handleSigint: false });
    assert.ok(!r.interrupted);
    const recorded = JSON.parse(readFileSync(join(work, 'sft', 'vae', 'config.json'), 'utf8')) as { imageSizing?: string };
    assert.equal(recorded.imageSizing, 'aspect');
    // The same stage by hand on the aspect images gives the same metrics; on squares it does not.
    const numbers = (dir: string) => readMetrics(join(dir, 'metrics.jsonl')).map((x) => x.loss);
    const run = async (sizing: 'aspect' | 'square') => {
      const images = await loadSizedCharacterImages([character], vaeImageSpec(modelConfig('micro'), 32, sizing));
      const v = await trainVae({ images, config: MICRO.vae, ...vae, runDir: join(work, sizing), progress: null, handleSigint: false });
      v.vae!.dispose();
      free(images);
      return numbers(join(work, sizing));
    };
    assert.deepEqual(numbers(join(work, 'sft', 'vae')), await run('aspect'));
    assert.notDeepEqual(numbers(join(work, 'sft', 'vae')), await run('square'));
  });
});
