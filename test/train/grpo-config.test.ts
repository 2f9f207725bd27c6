// The one GRPO config schema (src/train/grpo-config.ts): defaults filled in, the preset's fields
// filled by the preset unless given, wrong fields named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_GRPO, GRPO_PRESET_FIELDS, grpoConfigFrom, parseGrpoConfig } from '../../src/train/grpo.js';

test('grpoConfigFrom: an empty file gives DEFAULT_GRPO and the reference preset, with from/out', () => {
  const c = grpoConfigFrom({}, 'f', 'o');
  const { faceIdentity, ...fields } = GRPO_PRESET_FIELDS.reference;
  assert.deepEqual({ ...c, from: undefined, out: undefined }, {
    ...DEFAULT_GRPO, ...fields, rewards: { ...DEFAULT_GRPO.rewards, weights: { ...DEFAULT_GRPO.rewards.weights }, faceIdentity }, from: undefined, out: undefined,
  });
  assert.equal(c.preset, 'reference');
  assert.equal(c.from, 'f');
  assert.equal(c.out, 'o');
});

test('presets: reference = the official behaviour, project = the improvements; a field given wins over the preset', () => {
  const r = grpoConfigFrom({}, 'f', 'o');
  assert.equal(r.maxGradNorm, null);
  assert.equal(r.windowStart, 'per-rank');
  assert.deepEqual(r.layout, { kind: 'reference-shuffle', ranks: 8, batch: 6 });
  assert.equal(r.updateAccounting, 'reference');
  assert.equal(r.vqaRules, 'reference');
  assert.equal(r.rewards.faceIdentity, 'off');
  assert.equal(r.referenceImageSize, 'aspect');
  // The official learning settings (docs/method.md 3.6, 3.8).
  assert.deepEqual([r.lr, r.clipRange, r.beta, r.microStepsPerUpdate], [1e-5, 1e-5, 0, 72]);
  const p = grpoConfigFrom({ preset: 'project' }, 'f', 'o');
  // The CPU-size learning settings of docs/grpo-settings.md.
  assert.deepEqual([p.lr, p.clipRange, p.beta, p.microStepsPerUpdate], [3e-4, 0.2, 0, 72]);
  const given = grpoConfigFrom({ preset: 'project', lr: 5e-4, clipRange: 1e-5, beta: 0.1, microStepsPerUpdate: 12 }, 'f', 'o');
  assert.deepEqual([given.lr, given.clipRange, given.beta, given.microStepsPerUpdate], [5e-4, 1e-5, 0.1, 12]);
  assert.equal(p.maxGradNorm, 1);
  assert.equal(p.windowStart, 'per-rollout');
  assert.deepEqual(p.layout, { kind: 'prompt-groups' });
  assert.equal(p.updateAccounting, 'capped-at-epoch');
  assert.equal(p.vqaRules, 'project');
  assert.equal(p.rewards.faceIdentity, 'auto');
  assert.equal(p.referenceImageSize, 'square');
  const mixed = grpoConfigFrom({ preset: 'project', maxGradNorm: null, windowStart: 'per-rank', rewards: { faceIdentity: 'off' } }, 'f', 'o');
  assert.equal(mixed.maxGradNorm, null);
  assert.equal(mixed.windowStart, 'per-rank');
  assert.equal(mixed.rewards.faceIdentity, 'off');
  assert.deepEqual(mixed.layout, { kind: 'prompt-groups' });
  // A parsed config parses to itself (trainGrpo re-checks what it is given).
  assert.deepEqual(parseGrpoConfig(p), p);
  assert.deepEqual(grpoConfigFrom({ layout: { kind: 'reference-shuffle', ranks: 2 }, groupSize: 4, promptsPerEpoch: 3 }, 'f', 'o').layout, { kind: 'reference-shuffle', ranks: 2, batch: 6 });
  assert.throws(() => grpoConfigFrom({ preset: 'official' }, 'f', 'o'), /preset/);
});

test('the reference layout: groupSize must divide ranks x batch, promptsPerEpoch a multiple of the prompts per batch', () => {
  assert.throws(() => grpoConfigFrom({ groupSize: 5 }, 'f', 'o'), /groupSize: 5 does not divide the 8 x 6 = 48 rollouts of a sampling batch.*preset 'project'/);
  assert.throws(() => grpoConfigFrom({ promptsPerEpoch: 8 }, 'f', 'o'), /promptsPerEpoch: 8 is not a multiple of the 6 prompts of one sampling batch/);
  assert.equal(grpoConfigFrom({ promptsPerEpoch: 12 }, 'f', 'o').promptsPerEpoch, 12);
  assert.equal(grpoConfigFrom({ preset: 'project', groupSize: 5, promptsPerEpoch: 3 }, 'f', 'o').groupSize, 5);
  assert.throws(() => grpoConfigFrom({ layout: { kind: 'prompt-groups', ranks: 2 } }, 'f', 'o'), /layout/);
});

test('grpoConfigFrom: rewards.weights are merged key by key, other keys replace defaults', () => {
  const c = grpoConfigFrom({ epochs: 3, rewards: { weights: { clip: 0.2 } }, maxGradNorm: 0.5 }, 'f', 'o');
  assert.equal(c.epochs, 3);
  assert.equal(c.rewards.weights.clip, 0.2);
  assert.equal(c.rewards.weights.vqa, DEFAULT_GRPO.rewards.weights.vqa);
  assert.equal(c.maxGradNorm, 0.5);
});

test('parseGrpoConfig: wrong types, ranges, unknown keys and windows are errors naming the field', () => {
  assert.throws(() => grpoConfigFrom({ epochs: -1 }, 'f', 'o'), /epochs/);
  assert.throws(() => grpoConfigFrom({ groupSize: 'eight' }, 'f', 'o'), /groupSize/);
  assert.throws(() => grpoConfigFrom({ promptsPerEpoh: 4 }, 'f', 'o'), /promptsPerEpoh/);
  assert.throws(() => grpoConfigFrom({ reference: { noGradClip: true } }, 'f', 'o'), /reference/);
  assert.throws(() => grpoConfigFrom({ rewards: { weights: { vqa: -1 } } }, 'f', 'o'), /rewards\.weights\.vqa/);
  assert.throws(() => grpoConfigFrom({ windowSize: 5, windowRange: [0, 3] }, 'f', 'o'), /windowSize: 5 does not fit/);
  assert.throws(() => grpoConfigFrom({ numSteps: 4 }, 'f', 'o'), /windowRange: ends at 7/);
  assert.throws(() => grpoConfigFrom({ windowStart: 'fixed' }, 'f', 'o'), /windowStart/);
  assert.throws(() => grpoConfigFrom({ maxGradNorm: 0 }, 'f', 'o'), /maxGradNorm/);
  assert.throws(() => grpoConfigFrom({ preset: 'project', lr: 0 }, 'f', 'o'), /lr/);
  assert.throws(() => grpoConfigFrom({ microStepsPerUpdate: 0 }, 'f', 'o'), /microStepsPerUpdate/);
  assert.throws(() => parseGrpoConfig({ out: 'o' }), /from/);
  assert.throws(() => grpoConfigFrom([1], 'f', 'o'), /mapping/);
});

test('parseGrpoConfig: scorer objects pass through by reference', () => {
  const answerer = { id: 'x', answer: async () => [] };
  const c = parseGrpoConfig({ from: 'f', out: 'o', rewards: { scorers: { answerer } } });
  assert.equal(c.rewards.scorers.answerer, answerer);
});

test('checklistAnswerer: model under reference, auto under project, captionKnn is caption-knn, conflicts and unknown values are errors', () => {
  assert.equal(grpoConfigFrom({}, 'f', 'o').checklistAnswerer, 'model');
  assert.equal(grpoConfigFrom({ preset: 'project' }, 'f', 'o').checklistAnswerer, 'auto');
  assert.equal(grpoConfigFrom({ preset: 'project', checklistAnswerer: 'model' }, 'f', 'o').checklistAnswerer, 'model');
  assert.equal(grpoConfigFrom({ checklistAnswerer: 'checklist-probe' }, 'f', 'o').checklistAnswerer, 'checklist-probe');
  const knn = grpoConfigFrom({ preset: 'project', captionKnn: true }, 'f', 'o');
  assert.equal(knn.checklistAnswerer, 'caption-knn');
  assert.deepEqual(parseGrpoConfig(knn), knn);
  assert.throws(() => grpoConfigFrom({ captionKnn: true, checklistAnswerer: 'checklist-probe' }, 'f', 'o'), /captionKnn: captionKnn true asks for checklistAnswerer 'caption-knn', but checklistAnswerer is 'checklist-probe'/);
  assert.throws(() => grpoConfigFrom({ checklistAnswerer: 'blip' }, 'f', 'o'), /checklistAnswerer/);
});
