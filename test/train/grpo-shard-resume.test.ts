// Sharded Character-GRPO checkpoints (docs/sharding.md 6, 7): a 2-process run stopped after
// epoch 1 and resumed (full on 2 processes; grad re-sharded onto 1) writes the metrics of the
// uninterrupted 2-process run and ends with its weights, bit for bit (the update's sums are the
// same at any world size, docs/sharding.md 7; on 1 process the logged gradient norm, a sum of
// per-chunk squares, differs in its last digits). What carries over: each rank's shards of the
// generation expert and its AdamW moments, the sampler RNG (the later prompt order) and the
// CPU generators; each rollout is seeded from (seed, epoch, draw, k).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { writeTinySft } from './fixtures/grpo-fixtures.js';
import { finalWeights, runGrpo } from './fixtures/grpo-shard-run.js';

const VOLATILE = new Set(['seconds', 'time', 'tokensPerSecond']);
const stable = (m: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(m).filter(([k]) => !VOLATILE.has(k)));
const over = { beta: 0.05, promptsPerEpoch: 4, evalEvery: 2 };

test('a 2-process sharded GRPO run stopped after epoch 1 and resumed (full on 2, grad on 1) continues as the uninterrupted run', { timeout: 600_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'grpo-shard-resume-'));
  try {
    const from = writeTinySft(work);
    const ref = await runGrpo(work, from, 'ref', 2, { ...over, shard: 'full' });
    const refMetrics = readMetrics(join(ref.dir, 'metrics.jsonl')).map(stable);
    assert.equal(refMetrics.length, 2);
    assert.equal(typeof refMetrics[1]!.eval_reward, 'number');
    const refWeights = finalWeights(ref.dir);
    for (const c of [{ shard: 'full', then: 2 }, { shard: 'grad', then: 1 }] as const) {
      const name = `${c.shard}-2-${c.then}`;
      const first = await runGrpo(work, from, name, 2, { ...over, shard: c.shard }, ['1']);
      assert.ok(first.lines.some((l) => l.includes('GRPO-RESULT 0 step 1 resumedFrom null interrupted true')), first.lines.join('\n'));
      const ckpt = join(first.dir, 'checkpoints', 'step-1');
      for (const r of [0, 1]) assert.ok(existsSync(join(ckpt, 'shards', `rank-${r}.safetensors`)), `${name}: no shard of rank ${r}`);
      const state = JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8')) as { sharded: { mode: string; world: number }; rngs: { sampler: unknown } };
      assert.deepEqual([state.sharded.mode, state.sharded.world], [c.shard, 2]);
      assert.equal(typeof state.rngs.sampler, 'number', 'the sampler RNG is in the checkpoint');
      assert.ok(!existsSync(join(first.dir, 'model')), `${name}: an interrupted run exports no model`);
      const second = await runGrpo(work, from, name, c.then, { ...over, shard: c.shard }, ['', 'resume']);
      assert.ok(second.lines.some((l) => l.includes('GRPO-RESULT 0 step 2 resumedFrom 1 interrupted false')), second.lines.join('\n'));
      // The global gradient norm sums per-chunk squares: on another world size the chunks differ, so
      // the norm (a metric here: it stays below maxGradNorm 1.0, nothing is clipped) differs in its last digits.
      const m = readMetrics(join(first.dir, 'metrics.jsonl')).map(stable);
      const norms = (ms: Record<string, unknown>[]): number[] => ms.map((x) => x.grad_norm as number);
      norms(m).forEach((g, i) => assert.ok(Math.abs(g - norms(refMetrics)[i]!) <= 1e-6 * norms(refMetrics)[i]!, `${name}: grad_norm ${g} vs ${norms(refMetrics)[i]}`));
      const drop = (ms: Record<string, unknown>[]): Record<string, unknown>[] => ms.map(({ grad_norm: _, ...rest }) => rest);
      assert.deepEqual(drop(m), drop(refMetrics), `${name}: the metrics differ`);
      if (c.then === 2) assert.deepEqual(norms(m), norms(refMetrics), `${name}: the same world size gives the same norm`);
      const w = finalWeights(first.dir);
      for (const [k, t] of refWeights) assert.equal(torch.scope(() => t.sub(w.get(k)!).abs().max().item()), 0, `${name}: ${k}`);
      console.log(`# ${name}: resumed at epoch 1; metrics${c.then === 2 ? "" : " (grad_norm within 1e-6)"} and weights bit-identical to the uninterrupted 2-process full run`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
