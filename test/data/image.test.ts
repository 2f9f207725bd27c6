import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeImage, encodePng, fromChw, prepareImage, pyRound, scaledRule, sniffImageFormat, targetSize, toChw, VAE_RULE, VIT_RULE } from '../../src/data/image.js';

test('Python rounding: halves go to even', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 2.4, 2.6].map(pyRound), [0, 2, 2, 0, 2, 3]);
});

test('VAE rule: long ≤ 1024, short ≥ 512, stride 16 (docs/method.md 2.1)', () => {
  assert.deepEqual(targetSize(240, 240, VAE_RULE), { width: 512, height: 512 });
  assert.deepEqual(targetSize(452, 571, VAE_RULE), { width: 512, height: 640 });
  assert.deepEqual(targetSize(1685, 1685, VAE_RULE), { width: 1024, height: 1024 });
  assert.deepEqual(targetSize(2000, 500, VAE_RULE), { width: 1024, height: 256 });
  for (const [w, h] of [[378, 1024], [1000, 700], [640, 1023]] as const) {
    const t = targetSize(w, h, VAE_RULE);
    assert.equal(t.width % 16, 0);
    assert.equal(t.height % 16, 0);
    assert.ok(Math.max(t.width, t.height) <= 1024);
  }
});

test('ViT rule: long ≤ 980, short ≥ 378, stride 14', () => {
  assert.deepEqual(targetSize(240, 240, VIT_RULE), { width: 378, height: 378 });
  assert.deepEqual(targetSize(1024, 1024, VIT_RULE), { width: 980, height: 980 });
  const t = targetSize(452, 571, VIT_RULE);
  assert.deepEqual(t, { width: 448, height: 574 }); // scale 1: only snapped to stride 14
});

test('decodes JPEG bytes by content and composites alpha on white', async () => {
  const rgba = await sharp({ create: { width: 4, height: 2, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
  const img = await decodeImage(rgba);
  assert.deepEqual([...img.data.subarray(0, 3)], [255, 255, 255]);
  const half = await sharp({ create: { width: 2, height: 2, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
  const h = await decodeImage(half);
  assert.ok(Math.abs(h.data[0]! - 128) <= 1, `got ${h.data[0]}`);
  const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 0, b: 255 } } }).jpeg().toBuffer();
  assert.equal(sniffImageFormat(jpeg), 'jpeg');
  const j = await decodeImage(jpeg);
  assert.equal(j.width, 8);
  assert.ok(j.data[2]! > 240 && j.data[0]! < 15);
  await assert.rejects(decodeImage(new Uint8Array([1, 2, 3, 4])), /not a PNG/);
});

test('CHW float in [-1, 1], and back to identical pixels and PNG', async () => {
  const px = new Uint8Array([0, 128, 255, 10, 20, 30]);
  const chw = toChw({ width: 2, height: 1, data: px });
  assert.deepEqual([chw.data[0], chw.data[2], chw.data[4]], [-1, -1 + (128 / 255) * 2, 1].map(Math.fround));
  assert.equal(chw.data[1], Math.fround((10 / 255) * 2 - 1)); // channel R of pixel 1 is in plane 0
  assert.deepEqual(fromChw(chw).data, px);
  const png = await encodePng(fromChw(chw));
  assert.deepEqual((await decodeImage(png)).data, px);
});

test('prepareImage applies the rule or a fixed size for tiny models', async () => {
  const png = await sharp({ create: { width: 240, height: 240, channels: 3, background: '#808080' } }).png().toBuffer();
  const a = await prepareImage(png, { rule: 'vae' });
  assert.deepEqual([a.height, a.width, a.data.length], [512, 512, 3 * 512 * 512]);
  const b = await prepareImage(png, { rule: 'fixed', width: 32, height: 16 });
  assert.deepEqual([b.height, b.width], [16, 32]);
  assert.ok(Math.abs(b.data[0]! - ((128 / 255) * 2 - 1)) < 0.02);
});

test('scaledRule: the published rules at their own size, scaled bounds below it, aspect and stride kept', () => {
  assert.deepEqual(scaledRule(VAE_RULE, 1024, 16), VAE_RULE);
  assert.deepEqual(scaledRule(VIT_RULE, 980, 14), VIT_RULE);
  // tiny: 64 px, stride 8 (4x VAE x 2x2 latent patches): 1024/512 -> 64/32, pixels / 16^2.
  const tiny = scaledRule(VAE_RULE, 64, 8);
  assert.deepEqual(tiny, { maxSize: 64, minSize: 32, stride: 8, maxPixels: 7056 });
  // 300x200: scale 64/300, 42.67 rounds to 43, to a multiple of 8: 40.
  assert.deepEqual(targetSize(300, 200, tiny), { width: 64, height: 40 });
  // 100x400: the short side's bound gives 32x128, then the long side's cap halves it (as the reference does).
  assert.deepEqual(targetSize(100, 400, tiny), { width: 16, height: 64 });
  assert.deepEqual(targetSize(240, 240, tiny), { width: 64, height: 64 });
  // ViT at 56 px: 378 * 56/980 = 21.6 -> 2 patches = 28; pixels 2,007,040 * (2/35)^2 = 6553.6 -> 6554.
  assert.deepEqual(scaledRule(VIT_RULE, 56), { maxSize: 56, minSize: 28, stride: 14, maxPixels: 6554 });
  assert.throws(() => scaledRule(VAE_RULE, 4, 8), /smaller than the stride/);
  assert.throws(() => scaledRule(VAE_RULE, 64, 0), /stride/);
});
