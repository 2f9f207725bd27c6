// `eval --held-out-after N` (src/eval/split.ts withHeldOutAfter): for a folder without a test split,
// the reference images after the first N and their scenes become the held-out images, the ones
// `customize --max-images N` does not train on (fewShotCharacter keeps the first N).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSampleCharacter } from '../../src/data/index.js';
import { evalCommand, parseEvalConfig } from '../../src/eval/index.js';
import { withHeldOutAfter } from '../../src/eval/split.js';
import { fewShotCharacter } from '../../src/train/sft-data.js';

test('withHeldOutAfter holds out the images after the first N with their scenes, disjoint from the few-shot images', () => {
  const c = loadSampleCharacter().character; // 12 reference images, one annotated scene each
  const h = withHeldOutAfter(c, 8);
  assert.deepEqual(h.tests.heldOutImages.map((i) => i.id), c.referenceImages.slice(8).map((i) => i.id));
  assert.equal(h.tests.heldOutImages.length, 4);
  assert.deepEqual(h.tests.heldOutScenes.map((s) => s.image), c.referenceImages.slice(8).map((i) => i.id));
  assert.equal(h.referenceImages.length, 8);
  assert.equal(h.scenes.length, c.scenes.length - 4);
  // nothing the few-shot step trains on is held out
  const trained = new Set(fewShotCharacter(c, 8).referenceImages.map((i) => i.id));
  assert.equal(h.tests.heldOutImages.some((i) => trained.has(i.id)), false);
  assert.throws(() => withHeldOutAfter(c, 12), /heldOutAfter 12: .* has 12 reference images, so it must be an integer from 1 to 11/);
  assert.throws(() => withHeldOutAfter(c, 0), /from 1 to 11/);
});

test('heldOutAfter and a split folder are refused together; the CLI names --held-out-after', async () => {
  assert.throws(() => parseEvalConfig({ runs: [], out: '/o', split: '/s', heldOutAfter: 8 }), /heldOutAfter: give either a split folder or heldOutAfter, not both/);
  assert.equal(parseEvalConfig({ runs: [], out: '/o', heldOutAfter: 8 }).heldOutAfter, 8);
  const lines: string[] = [];
  const code = await evalCommand(['--run', '/m', '--held-out-after', '0'], (s) => lines.push(s));
  assert.equal(code, 2);
  assert.match(lines.join('\n'), /--held-out-after: Number must be greater than 0/);
});
