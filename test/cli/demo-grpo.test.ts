// The demo's GRPO evaluation printout (src/cli/demo-grpo.ts) on a hand-made metrics file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoGrpoSettings, grpoEvalCurveLines } from '../../src/cli/demo-grpo.js';
import { parseGrpoConfig } from '../../src/train/index.js';

function withRun(records: object[], fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'demo-grpo-'));
  try {
    writeFileSync(join(dir, 'metrics.jsonl'), records.map((r, i) => JSON.stringify({ step: i + 1, ...r })).join('\n') + '\n');
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('grpoEvalCurveLines: every epoch with its seed standard error, before/after, the rise against 2x the noise', () => {
  // Curve 0.5, 0.6, 0.6, 0.8: rise 0.3; epoch noise sqrt(0.01 / 2) = 0.0707 (differences 0.1, 0, 0.2); seed se 0.02.
  const recs = [{ eval_start_reward: 0.5, eval_start_reward_se: 0.02, eval_reward: 0.6, eval_reward_se: 0.03 }, { eval_reward: 0.6, eval_reward_se: 0.01 }, { eval_reward: 0.8, eval_reward_se: 0.02 }];
  withRun(recs, (dir) => {
    const lines = grpoEvalCurveLines(dir);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /before 0\.500 \+- 0\.020, 1: 0\.600 \+- 0\.030, 2: 0\.600 \+- 0\.010, 3: 0\.800 \+- 0\.020$/);
    assert.match(lines[1]!, /before 0\.500, after 0\.800: rise 0\.300, more than 2 x the noise 0\.071 \(the level's seed standard error 0\.020, epoch-to-epoch 0\.071\)/);
  });
  // Per-seed means at the start and the end: the rise's paired error (differences 0.2, 0.4: se 0.1) replaces the level's.
  const paired = [{ ...recs[0]!, eval_start_reward_seed0: 0.4, eval_start_reward_seed1: 0.6 }, recs[1]!, { ...recs[2]!, eval_reward_seed0: 0.6, eval_reward_seed1: 1.0 }];
  withRun(paired, (dir) => {
    assert.match(grpoEvalCurveLines(dir)[1]!, /more than 2 x the noise 0\.100 \(the rise's standard error over the seeds, paired, 0\.100; the level's seed standard error 0\.020, epoch-to-epoch 0\.071\)/);
  });
  // A fall says so.
  withRun([{ eval_start_reward: 0.5, eval_start_reward_se: 0.02, eval_reward: 0.49 }], (dir) => {
    assert.match(grpoEvalCurveLines(dir)[1]!, /rise -0\.010, NOT more than 2 x the noise 0\.020 .*epoch-to-epoch n\/a/);
  });
  // A run without a starting evaluation (an earlier demo's) prints nothing.
  withRun([{ eval_reward: 0.5 }], (dir) => assert.deepEqual(grpoEvalCurveLines(dir), []));
});

test('demoGrpoSettings: both modes hold out prompts and evaluate every epoch from fixed seeds, and parse', () => {
  for (const quick of [true, false]) {
    const s = demoGrpoSettings(quick);
    assert.equal(s.heldOutPrompts, 2);
    assert.equal(s.evalAtStart, true);
    assert.equal(s.evalEvery, 1);
    assert.ok((s.evalSeeds ?? 0) >= 2);
    const c = parseGrpoConfig({ preset: 'project', from: 'f', out: 'o', ...s });
    assert.equal(c.lr, 3e-4); // the project preset's learning rate (docs/grpo-settings.md)
  }
});
