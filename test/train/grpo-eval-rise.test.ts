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

test('evalRiseOf: a run without a starting evaluation or with an epoch not evaluated is an error naming it', () => {
  assert.throws(() => evalRiseOf([{ eval_reward: 1 }]), /eval_start_reward.*evalAtStart/);
  assert.throws(() => evalRiseOf([{ eval_start_reward: 0, eval_reward: 1 }, { reward: 2 }]), /eval_reward.*evalEvery/);
});
