// The drawing shows what the captions say: identity colours are present in every image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderPng, PALETTE } from '../../../src/data/sample-character/draw.js';
import { decodeImage } from '../../../src/data/image.js';
import { TRAIN_IMAGES } from '../../../src/data/sample-character/content.js';

function hasColour(data: Uint8Array, hex: string, tol = 6): boolean {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  for (let i = 0; i < data.length; i += 3) if (Math.abs(data[i]! - r!) <= tol && Math.abs(data[i + 1]! - g!) <= tol && Math.abs(data[i + 2]! - b!) <= tol) return true;
  return false;
}

test('every train image shows teal fur and the orange star/tail rings; non-sleeping ones the yellow scarf', async () => {
  for (const [i, s] of TRAIN_IMAGES.entries()) {
    const img = await decodeImage(await renderPng(s.spec, i));
    assert.equal(img.width, 256);
    assert.ok(hasColour(img.data, PALETTE.fur), `image ${i} fur`);
    assert.ok(hasColour(img.data, PALETTE.star), `image ${i} star`);
    if (s.spec.pose !== 'sleep') assert.ok(hasColour(img.data, PALETTE.scarf), `image ${i} scarf`);
  }
});

test('the sticker keeps transparency; scenes are opaque', async () => {
  const sharp = (await import('sharp')).default;
  const sticker = TRAIN_IMAGES.findIndex((s) => s.spec.place === 'none');
  const m = await sharp(await renderPng(TRAIN_IMAGES[sticker]!.spec, 0)).stats();
  assert.equal(m.isOpaque, false);
  const n = await sharp(await renderPng(TRAIN_IMAGES[0]!.spec, 0)).stats();
  assert.equal(n.isOpaque, true);
});
