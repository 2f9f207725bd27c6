// The independent evaluator (nsfwjs MobileNetV2 features on TF.js CPU) on the sample images, and
// the face evaluator's explicit refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadSampleCharacter } from '../../src/data/index.js';
import { NsfwjsMobileNetEmbedder, cosine, cosineTable, loadFaceEvaluator } from '../../src/eval/index.js';
import sharp from 'sharp';

test('nsfwjs MobileNetV2 embeds the sample images offline; Tessel images are closer to each other than to a blank card', async () => {
  const { character } = loadSampleCharacter();
  const e = await NsfwjsMobileNetEmbedder.load();
  try {
    const train = character.referenceImages.slice(0, 3).map((i) => new Uint8Array(readFileSync(i.path!)));
    const test0 = new Uint8Array(readFileSync(character.tests.heldOutImages[0]!.path!));
    const blank = new Uint8Array(await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 40, g: 40, b: 200 } } }).png().toBuffer());
    const [a, b, ...rest] = await e.embed([test0, test0, blank, ...train]);
    assert.equal(a!.length, 1280);
    assert.ok(Math.abs(cosine(a!, b!) - 1) < 1e-5, 'same image -> cosine 1');
    const blankEmb = rest[0]!;
    const trainEmb = rest.slice(1);
    const toTrain = cosineTable([a!], trainEmb)[0]!;
    const meanToTrain = toTrain.reduce((s, x) => s + x, 0) / toTrain.length;
    assert.ok(meanToTrain > cosine(a!, blankEmb), `${meanToTrain} vs blank ${cosine(a!, blankEmb)}`);
  } finally {
    e.dispose();
  }
});

test('the face evaluator says exactly why it cannot run here', async () => {
  await assert.rejects(loadFaceEvaluator(), /face evaluator: .*tfjs-node/);
});
