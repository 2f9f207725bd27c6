// The reward formulas on hand-worked numbers: the DINO band penalty, the weighted sum of
// docs/method.md 3.4 with the reference YAML weights, the diversity grouping (whole group vs the
// reference's local subsets) and the checklist exact-match score.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checklistScore, combineRewards, dinoPenalty, diversityGroups, DiversityScorer, FALLBACK_CONFIG_REWARD_WEIGHTS,
  REFERENCE_REWARD_WEIGHTS, yesNoScore, type PairDistance,
} from '../../src/reward/index.js';
import type { ChwImage } from '../../src/data/image.js';

const near = (a: number, b: number, what = ''): void => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('dinoPenalty: -2 max(0, s - 0.9) - 2 max(0, 0.5 - s)', () => {
  near(dinoPenalty(0.95), -0.1, 'copying');          // -2 * 0.05
  near(dinoPenalty(1.0), -0.2, 'identical');
  near(dinoPenalty(0.9), 0, 'upper edge');
  near(dinoPenalty(0.7), 0, 'inside the band');
  near(dinoPenalty(0.5), 0, 'lower edge');
  near(dinoPenalty(0.3), -0.4, 'identity lost');     // -2 * 0.2
  near(dinoPenalty(-0.5), -2, 'opposite');
  near(dinoPenalty(0.2, 0.9, 0.3), -0.2, 'fallback-config tau_lo 0.3');
});

test('combineRewards: reference weights 0.3/0.45/0.1/0.15 with per-component outputs', () => {
  assert.deepEqual({ ...REFERENCE_REWARD_WEIGHTS }, { vqa: 0.3, clip: 0.45, div: 0.1, dino: 0.15, tauHi: 0.9, tauLo: 0.5 });
  const r = combineRewards({ vqa: [1, 0.5], clip: [0.9, 0.6], div: [0.4, 0.4], dino: [0, -0.1] });
  // 0.3*1 + 0.45*0.9 + 0.1*0.4 + 0.15*0 = 0.3 + 0.405 + 0.04 = 0.745
  near(r.total[0]!, 0.745, 'R_0');
  // 0.3*0.5 + 0.45*0.6 + 0.1*0.4 + 0.15*(-0.1) = 0.15 + 0.27 + 0.04 - 0.015 = 0.445
  near(r.total[1]!, 0.445, 'R_1');
  near(r.weighted.clip![0]!, 0.405, 'weighted clip');
  assert.deepEqual(r.components.dino, [0, -0.1]);
  near(r.means.vqa!, 0.75, 'mean vqa');
  near(r.means.total!, 0.595, 'mean total');
});

test('combineRewards: a zero weight drops its term; a missing needed term is an error', () => {
  const w = { ...REFERENCE_REWARD_WEIGHTS, vqa: 0 };
  const r = combineRewards({ clip: [1], div: [0], dino: [0] }, w);
  near(r.total[0]!, 0.45);
  assert.equal(r.components.vqa, undefined);
  assert.throws(() => combineRewards({ clip: [1], div: [0], dino: [0] }), /weight vqa/);
  assert.throws(() => combineRewards({ vqa: [1, 1], clip: [1], div: [0], dino: [0] }), /clip has 1 values, expected 2/);
  const f = combineRewards({ vqa: [1], clip: [1], div: [1], dino: [-1] }, FALLBACK_CONFIG_REWARD_WEIGHTS);
  near(f.total[0]!, 0.3 + 0.2 + 0.2 - 0.1);
});

test('diversityGroups: whole group by default; localBatch reproduces the per-GPU subsets', () => {
  const keys = ['a', 'b', 'a', 'a', 'b', 'a'];
  assert.deepEqual(diversityGroups(keys), [[0, 2, 3, 5], [1, 4]]);
  assert.deepEqual(diversityGroups(keys, { localBatch: 3 }), [[0, 2], [1], [3, 5], [4]]);
});

test('DiversityScorer: mean over unordered pairs, shared by the group; a group of one scores 0', () => {
  // Images whose "distance" is |x_i - x_j| of one number stored in their first pixel.
  const img = (v: number): ChwImage => ({ channels: 3, height: 1, width: 1, data: Float32Array.from([v, 0, 0]) });
  const absDiff: PairDistance = {
    id: 'test:abs',
    distance: (a, b) => (a as ChwImage[]).map((x, i) => Math.abs(x.data[0]! - (b as ChwImage[])[i]!.data[0]!)),
  };
  const images = [img(0), img(0.5), img(0.25), img(-0.5)];
  const keys = ['p', 'p', 'p', 'q'];
  const div = new DiversityScorer(absDiff).score(images, keys);
  // pairs of p: |0-0.5| + |0-0.25| + |0.5-0.25| = 1.0 over 3 pairs
  near(div[0]!, 1 / 3);
  near(div[1]!, 1 / 3);
  near(div[2]!, 1 / 3);
  assert.equal(div[3], 0);
  const local = new DiversityScorer(absDiff, { localBatch: 2 }).score(images, keys);
  assert.deepEqual(local, [0.5, 0.5, 0, 0]);
});

test('checklist VQA: weighted exact match after strip/lower-case; duplicates count twice; yes/no fallback', () => {
  const qs = [
    { question: 'Is there a tart?', answer: 'yes', weight: 1 },
    { question: 'What colour is the scarf?', answer: 'Yellow', weight: 0.6 },
    { question: 'Is the fox asleep?', answer: 'no', weight: 0.4 },
    { question: 'Is the fox asleep?', answer: 'no', weight: 0.4 },
  ];
  near(checklistScore(qs, [' Yes ', 'yellow', 'no', 'no']), 1);
  near(checklistScore(qs, ['yes', 'golden yellow', 'yes', 'yes']), 1 / 2.4);
  near(checklistScore(qs, ['no', 'red', 'no', 'no']), 0.8 / 2.4);
  assert.equal(yesNoScore('Yes, it does.'), 1);
  assert.equal(yesNoScore('no'), 0);
  assert.equal(yesNoScore('a fox'), 0.5);
});
