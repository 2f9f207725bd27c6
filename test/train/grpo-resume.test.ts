// Character-GRPO resume (docs/architecture.md "Training"): a run stopped after 1 of 2 epochs and resumed writes
// the same metrics, bit for bit on the CPU, as the uninterrupted run, and ends with the same
// weights. What carries over is in the checkpoint: the weights, the AdamW state, the sampler RNG
// (the prompt order of later epochs; 3 draws of 8 prompts per epoch make it matter) and the torch
// generator; each rollout's noise and SDE window are seeded from (seed, epoch, draw, k).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { trainGrpo } from '../../src/train/grpo.js';
import { writeTinySft, tinyGrpoConfig } from './fixtures/grpo-fixtures.js';

const VOLATILE = new Set(['seconds', 'time', 'tokensPerSecond']);
const stable = (m: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(m).filter(([k]) => !VOLATILE.has(k)));

test('a GRPO run interrupted after epoch 1 and resumed reproduces the uninterrupted run bit for bit', async () => {
  const work = mkdtempSync(join(tmpdir(), 'grpo-resume-'));
  try {
    const from = writeTinySft(work);
    const quiet = { log: () => {}, progress: null, handleSigint: false } as const;
    const over = { promptsPerEpoch: 3, evalEvery: 2 };
    const full = await trainGrpo(tinyGrpoConfig(from, join(work, 'full'), over), quiet);
    assert.equal(full.step, 2);

    const part = join(work, 'part');
    const first = await trainGrpo(tinyGrpoConfig(from, part, over), { ...quiet, stopAfter: 1 });
    assert.equal(first.step, 1);
    assert.equal(first.interrupted, true);
    assert.ok(!existsSync(join(part, 'model')), 'an interrupted run exports no model');
    const state = JSON.parse(readFileSync(join(part, 'checkpoints', 'step-1', 'state.json'), 'utf8')) as { rngs: { sampler: number } };
    assert.equal(typeof state.rngs.sampler, 'number', 'the sampler RNG is in the checkpoint');
    assert.ok(existsSync(join(part, 'checkpoints', 'step-1', 'rng.safetensors')), 'the torch RNG is in the checkpoint');
    const second = await trainGrpo(tinyGrpoConfig(from, part, over), { ...quiet, resume: true });
    assert.equal(second.resumedFrom, 1);
    assert.equal(second.step, 2);

    const a = readMetrics(join(work, 'full', 'metrics.jsonl')).map(stable);
    const b = readMetrics(join(part, 'metrics.jsonl')).map(stable);
    assert.equal(a.length, 2);
    assert.equal(typeof a[1]!.eval_reward, 'number');
    assert.deepEqual(b, a);
    const wa = torch.safetensors.load(join(work, 'full', 'model', 'model.safetensors')).tensors;
    const wb = torch.safetensors.load(join(part, 'model', 'model.safetensors')).tensors;
    for (const [k, t] of wa) assert.equal(torch.scope(() => t.sub(wb.get(k)!).abs().max().item()), 0, k);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
