import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constantSchedule, warmupCosineSchedule } from '../../src/nn/index.js';
import { assertClose } from './helpers.js';

test('constant schedule, with and without warmup (HF get_constant_schedule_with_warmup)', () => {
  const flatLr = constantSchedule(2e-5);
  assert.deepEqual([0, 1, 500, 10_000].map(flatLr), [2e-5, 2e-5, 2e-5, 2e-5]);
  const warm = constantSchedule(1, { warmupSteps: 4 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 100].map(warm), [0, 0.25, 0.5, 0.75, 1, 1, 1]);
});

test('warmup + cosine: linear ramp, half cosine to minLr, then flat', () => {
  const lr = warmupCosineSchedule({ lr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 });
  assert.equal(lr(0), 0);
  assert.equal(lr(5), 0.5);
  assert.equal(lr(10), 1); // end of warmup: the peak
  // a quarter of the way: 0.1 + 0.9 * 0.5 * (1 + cos(pi/4))
  assertClose([lr(35)], [0.1 + 0.9 * 0.5 * (1 + Math.SQRT1_2)], 1e-15, 0);
  assertClose([lr(60)], [0.55], 1e-15, 0); // half way: the mean of peak and floor
  assertClose([lr(85)], [0.1 + 0.9 * 0.5 * (1 - Math.SQRT1_2)], 1e-14, 0);
  assertClose([lr(110)], [0.1], 1e-15, 0);
  assertClose([lr(500)], [0.1], 1e-15, 0);
  // monotone non-increasing after warmup
  for (let s = 10; s < 120; s++) assert.ok(lr(s + 1) <= lr(s) + 1e-15, `step ${s}`);
  // no warmup, no floor: lr * 0.5 * (1 + cos(pi s / T))
  const plain = warmupCosineSchedule({ lr: 3e-4, warmupSteps: 0, totalSteps: 100 });
  for (const s of [0, 13, 50, 99, 100]) assertClose([plain(s)], [3e-4 * 0.5 * (1 + Math.cos((Math.PI * s) / 100))], 1e-12, 1e-20);
  assert.throws(() => warmupCosineSchedule({ lr: 1, warmupSteps: 10, totalSteps: 5 }), /totalSteps/);
});
