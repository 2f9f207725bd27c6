// Character-GRPO stopped part-way through an epoch (TrainGrpoOptions.interrupt, the server's
// cancel): the interrupt is polled before every rollout and each of its sampler steps, inside the
// scoring pass (before it, between the checklist answerer's images and questions, between reward
// components) and between update micro-steps; the epoch under way is dropped, nothing is saved
// for it, no tensor is left behind, and a resume from the checkpoint that is left reproduces the
// uninterrupted run bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { trainGrpo } from '../../src/train/grpo.js';
import { writeTinySft, tinyGrpoConfig } from './fixtures/grpo-fixtures.js';

const VOLATILE = new Set(['seconds', 'time', 'tokensPerSecond']);
const stable = (m: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(m).filter(([k]) => !VOLATILE.has(k)));
const quiet = { log: () => {}, progress: null, handleSigint: false } as const;

test('an interrupt mid-rollout, mid-scoring or mid-update drops the epoch, keeps the last checkpoint, and the resume is exact', async () => {
  const work = mkdtempSync(join(tmpdir(), 'grpo-interrupt-'));
  try {
    const from = writeTinySft(work);
    // 2 draws x 2 rollouts per epoch, 4 sampler steps (3 transitions), windows of 2: a poll before
    // each rollout and each transition while rolling out, then the scoring pass, then one per
    // update micro-step (4 rollouts x window 2).
    const rolloutPolls = 4 * (1 + 3);
    const updatePolls = 8;
    let calls = 0;
    const atAdvantages: number[] = [];
    const full = await trainGrpo(tinyGrpoConfig(from, join(work, 'full')), {
      ...quiet, interrupt: () => (calls++, false), onAdvantages: () => atAdvantages.push(calls),
    });
    assert.equal(full.step, 2);
    // atAdvantages[e] = polls through epoch e's scoring (its length depends on the prompts'
    // checklists); the run's last polls are epoch 2's update micro-steps.
    assert.equal(calls - atAdvantages[1]!, updatePolls, 'one poll per update micro-step');
    const epoch1End = atAdvantages[0]! + updatePolls;
    const scoringPolls = atAdvantages[1]! - epoch1End - rolloutPolls;
    // Scoring: one before it, one per image (4) and per checklist question, one after each of the
    // 4 components before the face term.
    assert.ok(scoringPolls >= 1 + 4 + 4, `scoring polls ${scoringPolls}`);
    const expected = readMetrics(join(work, 'full', 'metrics.jsonl')).map(stable);

    const cases = [
      ['mid-rollout', epoch1End + 6], // the second rollout's first transitions
      ['mid-scoring', epoch1End + rolloutPolls + 4], // after the checklist answerer's first reply
      ['mid-update', epoch1End + rolloutPolls + scoringPolls + 3],
    ] as const;
    for (const [what, stopAt] of cases) {
      const out = join(work, what);
      const tensors = torch.memory().tensors;
      let n = 0;
      const r = await trainGrpo(tinyGrpoConfig(from, out), { ...quiet, interrupt: () => ++n >= stopAt });
      assert.equal(n, stopAt, `${what}: stopped at the first poll that said stop`);
      assert.equal(r.interrupted, true, what);
      assert.equal(r.step, 1, `${what}: epoch 2 was dropped`);
      assert.equal(r.lastCheckpoint, 1, what);
      assert.deepEqual(readdirSync(join(out, 'checkpoints')).filter((d) => d.startsWith('step-')), ['step-1'], `${what}: nothing saved for the dropped epoch`);
      assert.equal(readMetrics(join(out, 'metrics.jsonl')).length, 1, what);
      assert.ok(!existsSync(join(out, 'model')), `${what}: no model exported`);
      assert.equal(torch.memory().tensors, tensors, `${what}: no tensor left behind`);
      const resumed = await trainGrpo(tinyGrpoConfig(from, out), { ...quiet, resume: true });
      assert.equal(resumed.resumedFrom, 1);
      assert.deepEqual(readMetrics(join(out, 'metrics.jsonl')).map(stable), expected, `${what}: the resume reproduces the uninterrupted run`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
