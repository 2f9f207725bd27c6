// Sharded Character-GRPO (docs/sharding.md 7): 1 and 2 processes with shard none, grad and full,
// with the KL term on (the frozen reference swapped into the shards), end 2 epochs with the
// generation expert of one plain process on the same global batch (4 prompt draws x 2 rollouts
// per epoch: 2 draws per rank, dealt round-robin), within 1e-6 relative to each tensor's largest
// value; everything else stays the start exactly. The sums are exact (docs/sharding.md 7: every
// micro-step's gradient is summed over the ranks in rank order, in an order that is the same at any
// world size), so the measured difference is 0; a gradient share or a rollout gone astray would
// move entries by ~lr (1e-3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { writeTinySft } from './fixtures/grpo-fixtures.js';
import { worstRelative } from './fixtures/shard-run.js';
import { GEN, finalWeights, runGrpo } from './fixtures/grpo-shard-run.js';

const over = { beta: 0.05, promptsPerEpoch: 4, evalEvery: 2 };

test('1 and 2 processes x shard none, grad, full end GRPO with the generation expert of one process', { timeout: 600_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'grpo-shard-'));
  try {
    const from = writeTinySft(work);
    const ref = await runGrpo(work, from, 'ref', 1, over);
    const a = finalWeights(ref.dir);
    const start = torch.safetensors.load(join(from, 'model.safetensors')).tensors;
    const moved = Math.max(...[...a].filter(([k]) => GEN.test(k)).map(([k, t]) => torch.scope(() => t.sub(start.get(k)!).abs().max().item())));
    assert.ok(moved > 1e-4, `training moved the generation expert by ${moved}`);
    const refMetrics = readMetrics(join(ref.dir, 'metrics.jsonl'));
    assert.ok((refMetrics[0]!.kl_loss as number) >= 0 && (refMetrics[1]!.kl_loss as number) > 0, 'the KL term is on and nonzero after the first update');
    for (const [n, shard] of [[1, 'grad'], [1, 'full'], [2, 'none'], [2, 'grad'], [2, 'full']] as const) {
      const r = await runGrpo(work, from, `${n}-${shard}`, n, { ...over, shard });
      if (shard !== 'none') assert.ok(r.lines.some((l) => l.includes(`shard '${shard}'`) && l.includes(`over ${n} ranks`)), r.lines.join('\n'));
      const b = finalWeights(r.dir);
      const gen = worstRelative(new Map([...a].filter(([k]) => GEN.test(k))), new Map([...b].filter(([k]) => GEN.test(k))));
      for (const [k, t] of b) if (!GEN.test(k)) assert.equal(torch.scope(() => t.sub(start.get(k)!).abs().max().item()), 0, `${n} x ${shard}: ${k} is not in the generation expert but moved`);
      const m = readMetrics(join(r.dir, 'metrics.jsonl'));
      for (const [i, mi] of m.entries()) {
        for (const k of ['reward', 'kl_loss', 'eval_reward']) {
          if (refMetrics[i]![k] === undefined) continue;
          assert.ok(Math.abs((mi[k] as number) - (refMetrics[i]![k] as number)) <= 1e-5 * Math.max(1, Math.abs(refMetrics[i]![k] as number)), `${n} x ${shard} epoch ${i + 1} ${k}: ${mi[k]} vs ${refMetrics[i]![k]}`);
        }
      }
      console.log(`# ${n} x ${shard}: largest relative difference in the generation expert ${gen.rel.toExponential(2)} (${gen.key}); largest move ${moved.toExponential(2)}`);
      assert.ok(gen.rel <= 1e-6, `${n} x ${shard}: ${gen.key} differs by ${gen.rel} relative`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
