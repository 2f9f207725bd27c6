// The GRPO presets' behaviours (docs/fidelity.md): the reference sampler's shuffled layout over
// simulated GPUs, the CPython window start per GPU, and the update accounting, on hand-checked
// properties and on two short runs that differ only in the accounting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/data/index.js';
import { perRankWindowStart, referenceShuffleSlots, trainGrpo } from '../../src/train/grpo.js';
import { layoutRanksOf } from '../../src/train/grpo-steps.js';
import { tinyGrpoConfig, writeTinySft } from './fixtures/grpo-fixtures.js';

const pyFixture = JSON.parse(readFileSync(new URL('../../../test/data/fixtures/py_random_fixture.json', import.meta.url), 'utf8')) as { window_start_per_rank: number[] };

test('reference window start per GPU: CPython randint(0, 7 - 3) after seed(rank), 3 1 0 1 1 4 4 2 for ranks 0-7', () => {
  const starts = Array.from({ length: 16 }, (_, r) => perRankWindowStart(r, [0, 7], 3));
  assert.deepEqual(starts.slice(0, 8), [3, 1, 0, 1, 1, 4, 4, 2]);
  assert.deepEqual(starts, pyFixture.window_start_per_rank);
  // Other ranges shift and narrow the draw as randint(lo, hi - size) does.
  for (let r = 0; r < 8; r++) {
    const s = perRankWindowStart(r, [2, 6], 3);
    assert.ok(s >= 2 && s <= 3);
  }
});

test('reference layout: per batch m distinct prompts x k copies shuffled over GPUs in slices of the batch size', () => {
  // The published shape: 8 GPUs x 6, k = 8, so m = 6 prompts per sampling batch; 2 batches.
  const slots = referenceShuffleSlots(new Rng(3), 30, 8, 6, 8, 12);
  assert.equal(slots.length, 96);
  for (const b of [0, 1]) {
    const batch = slots.filter((x) => x.batch === b);
    assert.equal(batch.length, 48);
    const prompts = new Map<number, number>();
    for (const x of batch) prompts.set(x.prompt, (prompts.get(x.prompt) ?? 0) + 1);
    assert.equal(prompts.size, 6, 'six distinct prompts per batch');
    for (const n of prompts.values()) assert.equal(n, 8, 'each repeated k times');
    for (let g = 0; g < 8; g++) assert.equal(batch.filter((x) => x.rank === g).length, 6, `GPU ${g} has a slice of 6`);
    // Draw ids are unique per (batch, prompt); (draw, k) names one rollout.
    assert.equal(new Set(batch.map((x) => `${x.draw}/${x.k}`)).size, 48);
    // A diversity group is one prompt inside one GPU's slice.
    for (const x of batch) assert.equal(x.groupKey, `${b}/${x.rank}/${x.prompt}`);
  }
  // GPU-major order within each batch (the order each GPU makes its rollouts).
  for (let i = 1; i < slots.length; i++) {
    const [a, c] = [slots[i - 1]!, slots[i]!];
    assert.ok(a.batch < c.batch || (a.batch === c.batch && a.rank <= c.rank));
  }
  // The copies really are scattered: the 8 copies of a prompt do not sit on one GPU, and many
  // diversity groups have a single member (DIV 0, the reference's quirk).
  const groups = new Map<string, number>();
  for (const x of slots) groups.set(x.groupKey, (groups.get(x.groupKey) ?? 0) + 1);
  assert.ok([...groups.values()].every((n) => n < 8));
  assert.ok([...groups.values()].some((n) => n === 1));
  // Prompts are drawn per batch, so over an epoch they can repeat (with replacement): with 8 of 10
  // prompts per batch, two batches share at least 6.
  const two = referenceShuffleSlots(new Rng(5), 10, 8, 4, 4, 16);
  const p0 = new Set(two.filter((x) => x.batch === 0).map((x) => x.prompt));
  const p1 = new Set(two.filter((x) => x.batch === 1).map((x) => x.prompt));
  assert.ok([...p0].filter((p) => p1.has(p)).length >= 6);
  // Same generator state, same layout (every process draws it alike).
  assert.deepEqual(referenceShuffleSlots(new Rng(3), 30, 8, 6, 8, 12), slots);
  assert.throws(() => referenceShuffleSlots(new Rng(1), 4, 8, 6, 8, 6), /draws 6 distinct prompts.*has 4/);
  assert.deepEqual(layoutRanksOf(8, 1, 4), [2, 4]);
  assert.throws(() => layoutRanksOf(8, 0, 3), /multiple of the number of processes \(3\)/);
});

test('update accounting: reference divides a short epoch by the full microStepsPerUpdate, capped-at-epoch by its micro-steps', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-presets-'));
  try {
    const from = writeTinySft(dir);
    // 2 simulated GPUs x 2 rollouts, k = 2: one batch of 2 prompts, 4 rollouts x 2 window steps = 8 micro-steps.
    const run = async (name: string, updateAccounting: 'reference' | 'capped-at-epoch') => {
      const rows: number[][] = [];
      await trainGrpo(tinyGrpoConfig(from, join(dir, name), {
        preset: 'reference', layout: { kind: 'reference-shuffle', ranks: 2, batch: 2 }, epochs: 1, microStepsPerUpdate: 72, updateAccounting,
      }), {
        log: () => {}, progress: null, handleSigint: false,
        reward: (images) => images.map((im) => im.data[0]! + im.data[5]!),
        onAdvantages: (_e, a) => rows.push(a.rewards),
      });
      const m = JSON.parse(readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n')[0]!) as Record<string, number>;
      return { m, rows };
    };
    const ref = await run('ref', 'reference');
    const capped = await run('capped', 'capped-at-epoch');
    assert.equal(ref.rows[0]!.length, 4);
    assert.deepEqual(ref.rows, capped.rows, 'the same rollouts');
    assert.equal(ref.m.updates, 1);
    assert.equal(capped.m.updates, 1);
    // The same gradient sum divided by 72 vs by 8 (no clipping under the reference preset).
    assert.ok(ref.m.grad_norm! > 0);
    assert.ok(Math.abs(capped.m.grad_norm! / ref.m.grad_norm! - 72 / 8) < 1e-3, `${capped.m.grad_norm} / ${ref.m.grad_norm}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
