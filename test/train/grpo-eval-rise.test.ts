// evalRiseOf (src/train/grpo-eval-rise.ts) on hand-worked metrics records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evalRiseOf } from '../../src/train/index.js';

test('evalRiseOf: rise, seed standard error and the detrended epoch-to-epoch noise, by hand', () => {
  // Curve 1, 2, 2, 4: differences 1, 0, 2 (mean 1, sample variance 1), noise sqrt(1 / 2).
  const m = [{ eval_start_reward: 1, eval_start_reward_se: 0.1, eval_reward: 2 }, { eval_reward: 2 }, { eval_reward: 4 }];
  const r = evalRiseOf(m);
  assert.deepEqual(r.curve, [1, 2, 2, 4]);
  assert.equal(r.before, 1);
  assert.equal(r.after, 4);
  assert.equal(r.rise, 3);
  assert.equal(r.seedSe, 0.1);
  assert.ok(Math.abs(r.epochNoise - Math.sqrt(0.5)) < 1e-12);
  assert.equal(r.noise, r.epochNoise);
  // A straight line has no epoch noise: the seed error is the noise.
  const line = evalRiseOf([{ eval_start_reward: 0, eval_start_reward_se: 0.2, eval_reward: 1 }, { eval_reward: 2 }, { eval_reward: 3 }]);
  assert.equal(line.epochNoise, 0);
  assert.equal(line.noise, 0.2);
  // Too short for an epoch noise, one seed: NaN for both, noise 0.
  const short = evalRiseOf([{ eval_start_reward: 0, eval_reward: 1 }]);
  assert.ok(Number.isNaN(short.epochNoise) && Number.isNaN(short.seedSe));
  assert.equal(short.noise, 0);
});

test('evalRiseOf: with per-seed means the rise is paired seed by seed, by hand', () => {
  // Seeds start at 1, 3, 5 (level se 2/sqrt(3) = 1.155) and end at 2, 4.5, 6.5: differences 1, 1.5,
  // 1.5 (mean 4/3, sample sd 0.2887, se 0.1667). Curve 3, 4, 4.333: too short for an epoch noise.
  const first = { eval_start_reward: 3, eval_start_reward_se: 2 / Math.sqrt(3), eval_start_reward_seed0: 1, eval_start_reward_seed1: 3, eval_start_reward_seed2: 5, eval_reward: 4 };
  const last = { eval_reward: 13 / 3, eval_reward_seed0: 2, eval_reward_seed1: 4.5, eval_reward_seed2: 6.5 };
  const r = evalRiseOf([first, last]);
  assert.ok(Math.abs(r.pairedSe - Math.sqrt(1 / 12) / Math.sqrt(3)) < 1e-12, String(r.pairedSe));
  assert.ok(Math.abs(r.noise - r.pairedSe) < 1e-15, 'the paired error replaces the level\'s');
  assert.ok(Math.abs(r.seedSe - 1.1547) < 1e-4);
  // One seed missing at the end: no pairing, the level's error as before.
  const unpaired = evalRiseOf([first, { eval_reward: 4, eval_reward_seed0: 2 }]);
  assert.ok(Number.isNaN(unpaired.pairedSe));
  assert.equal(unpaired.noise, unpaired.seedSe);
});

test('evalRiseOf: a run without a starting evaluation or with an epoch not evaluated is an error naming it', () => {
  assert.throws(() => evalRiseOf([{ eval_reward: 1 }]), /eval_start_reward.*evalAtStart/);
  assert.throws(() => evalRiseOf([{ eval_start_reward: 0, eval_reward: 1 }, { reward: 2 }]), /eval_reward.*evalEvery/);
});
