// Hybrid sharded Character-GRPO (docs/sharding.md 5, 7): 4 processes in 2 shard groups of 2
// (shardGroupSize 2; gradients summed across the groups in global rank order) with grad and
// full end 2 epochs with the generation expert of one plain process on the same global batch
// (4 draws x 2 rollouts, one draw per rank), within 1e-6 relative to each tensor's largest value
// (measured: 0, the sums are exact); full also as 2 nodes x 2 processes (two launchers on
// 127.0.0.1), where every replica group spans both nodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinySft } from './fixtures/grpo-fixtures.js';
import { worstRelative } from './fixtures/shard-run.js';
import { GEN, finalWeights, runGrpo } from './fixtures/grpo-shard-run.js';

const over = { beta: 0.05, promptsPerEpoch: 4, evalEvery: 0 };
const gen = (m: Map<string, unknown>): Map<string, never> => new Map([...m].filter(([k]) => GEN.test(k))) as Map<string, never>;

test('shardGroupSize 2 on 4 processes (grad, full; full over 2 nodes) ends GRPO with the generation expert of one process', { timeout: 600_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'grpo-shard-hybrid-'));
  try {
    const from = writeTinySft(work);
    const a = finalWeights((await runGrpo(work, from, 'ref', 1, over)).dir);
    for (const [shard, nodes] of [['grad', 1], ['full', 1], ['full', 2]] as const) {
      const name = `${nodes}x${4 / nodes}-${shard}`;
      const r = await runGrpo(work, from, name, 4 / nodes, { ...over, shard, shardGroupSize: 2 }, [], nodes);
      assert.ok(r.lines.some((l) => l.includes(`shard '${shard}'`) && l.includes('over 2 ranks') && l.includes('4 processes')), r.lines.join('\n'));
      const w = worstRelative(gen(a), gen(finalWeights(r.dir)));
      console.log(`# ${nodes} node(s) x ${4 / nodes} processes, ${shard}, groups of 2: largest relative difference in the generation expert ${w.rel.toExponential(2)} (${w.key})`);
      assert.ok(w.rel <= 1e-6, `${name}: ${w.key} differs by ${w.rel} relative`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
