// The one GRPO config schema (src/train/grpo-config.ts): defaults filled in, wrong fields named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_GRPO, grpoConfigFrom, parseGrpoConfig } from '../../src/train/grpo.js';

test('grpoConfigFrom: an empty file gives DEFAULT_GRPO with from/out', () => {
  const c = grpoConfigFrom({}, 'f', 'o');
  assert.deepEqual({ ...c, from: undefined, out: undefined }, { ...DEFAULT_GRPO, rewards: { ...DEFAULT_GRPO.rewards, weights: { ...DEFAULT_GRPO.rewards.weights } }, from: undefined, out: undefined });
  assert.equal(c.from, 'f');
  assert.equal(c.out, 'o');
});

test('grpoConfigFrom: rewards.weights are merged key by key, other keys replace defaults', () => {
  const c = grpoConfigFrom({ epochs: 3, rewards: { weights: { clip: 0.2 } }, reference: { noGradClip: true } }, 'f', 'o');
  assert.equal(c.epochs, 3);
  assert.equal(c.rewards.weights.clip, 0.2);
  assert.equal(c.rewards.weights.vqa, DEFAULT_GRPO.rewards.weights.vqa);
  assert.equal(c.reference.noGradClip, true);
  assert.equal(c.reference.fixedWindow, false);
});

test('parseGrpoConfig: wrong types, ranges, unknown keys and windows are errors naming the field', () => {
  assert.throws(() => grpoConfigFrom({ epochs: -1 }, 'f', 'o'), /epochs/);
  assert.throws(() => grpoConfigFrom({ groupSize: 'eight' }, 'f', 'o'), /groupSize/);
  assert.throws(() => grpoConfigFrom({ promptsPerEpoh: 4 }, 'f', 'o'), /promptsPerEpoh/);
  assert.throws(() => grpoConfigFrom({ rewards: { weights: { vqa: -1 } } }, 'f', 'o'), /rewards\.weights\.vqa/);
  assert.throws(() => grpoConfigFrom({ windowSize: 5, windowRange: [0, 3] }, 'f', 'o'), /windowSize: 5 does not fit/);
  assert.throws(() => grpoConfigFrom({ numSteps: 4 }, 'f', 'o'), /windowRange: ends at 7/);
  assert.throws(() => parseGrpoConfig({ out: 'o' }), /from/);
  assert.throws(() => grpoConfigFrom([1], 'f', 'o'), /mapping/);
});

test('parseGrpoConfig: scorer objects pass through by reference', () => {
  const answerer = { id: 'x', answer: async () => [] };
  const c = parseGrpoConfig({ from: 'f', out: 'o', rewards: { scorers: { answerer } } });
  assert.equal(c.rewards.scorers.answerer, answerer);
});
