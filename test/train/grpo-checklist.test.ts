// The checklist probe inside Character-GRPO (src/train/grpo-answerer.ts): under the project preset
// it answers the checklists, its held-out accuracy and majority baseline are in the log,
// config.json and every metrics line, and the checklist term is non-zero and spread within a
// prompt's rollouts (reward_vqa_group_std), which the model's own understanding path never gave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECKLIST_PROBE_ID, type ProbeAccuracy } from '../../src/reward/index.js';
import { trainGrpo } from '../../src/train/grpo.js';
import { meanGroupStd, COL } from '../../src/train/grpo-steps.js';
import { writeTinySft, tinyGrpoConfig } from './fixtures/grpo-fixtures.js';

test('meanGroupStd: the population standard deviation within each prompt, averaged over prompts (hand-worked)', () => {
  const row = (prompt: number, vqa: number): number[] => { const r = new Array<number>(10).fill(0); r[COL.prompt] = prompt; r[COL.vqa] = vqa; return r; };
  // Prompt 0: {0, 1} -> 0.5; prompt 1: {0.6, 0.6, 0.6} -> 0. Mean 0.25.
  assert.ok(Math.abs(meanGroupStd([row(0, 0), row(1, 0.6), row(0, 1), row(1, 0.6), row(1, 0.6)], COL.vqa) - 0.25) < 1e-12);
  assert.equal(meanGroupStd([], COL.vqa), 0);
});

test('Character-GRPO with the checklist probe (project preset): accuracy beside the reward, a non-zero checklist term spread within groups', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-probe-'));
  try {
    const from = writeTinySft(dir);
    const logs: string[] = [];
    await trainGrpo(tinyGrpoConfig(from, join(dir, 'run'), { epochs: 2, promptsPerEpoch: 4, groupSize: 4 }), { log: (l) => logs.push(l), progress: null, handleSigint: false });
    const config = JSON.parse(readFileSync(join(dir, 'run', 'config.json'), 'utf8')) as { scorers: { vqa: string }; checklistAnswerer: string; answererAccuracy: ProbeAccuracy };
    assert.equal(config.checklistAnswerer, 'auto');
    assert.equal(config.scorers.vqa, CHECKLIST_PROBE_ID);
    const acc = config.answererAccuracy;
    assert.ok(acc.accuracy > acc.majority, JSON.stringify(acc));
    assert.equal(acc.seed, 7);
    assert.ok(logs.some((l) => l.includes(`checklist VQA answered by ${CHECKLIST_PROBE_ID}`) && l.includes('held-out accuracy')), logs.join('\n'));
    const metrics = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    assert.equal(metrics.length, 2);
    for (const m of metrics) {
      assert.equal(m.vqa_answerer_accuracy, acc.accuracy);
      assert.equal(m.vqa_answerer_majority, acc.majority);
      assert.ok(m.reward_vqa! > 0 && m.reward_vqa! <= 1, String(m.reward_vqa));
    }
    // At least one epoch's checklist scores differ among a prompt's rollouts (the advantages can read them).
    assert.ok(metrics.some((m) => m.reward_vqa_group_std! > 0), JSON.stringify(metrics.map((m) => m.reward_vqa_group_std)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
