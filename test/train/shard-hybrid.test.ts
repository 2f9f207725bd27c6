// Hybrid sharding (docs/sharding.md 5): 4 processes in 2 shard groups of 2 (shardGroupSize 2),
// gradients all-reduced across the groups, end with the weights of one process on the same
// global batch (within 1e-6 relative to each tensor's largest value); its checkpoint (a file per
// process, docs/sharding.md 6) resumes on 2 processes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { randomVae } from './fixtures/sft-fixtures.js';
import { runShard, worstRelative } from './fixtures/shard-run.js';

const base = { totalSteps: 2, saveEvery: 2 };

test('shardGroupSize 2 on 4 processes (grad; full stopped and resumed on 2) ends with the weights of one process', { timeout: 300_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'shard-hybrid-'));
  try {
    const vae = randomVae(work);
    const ref = join(work, 'ref');
    await runShard(ref, vae, 1, { ...base, data: { packsPerRank: 4 } });
    const refWeights = torch.safetensors.load(join(ref, 'model.safetensors')).tensors;
    for (const shard of ['grad', 'full']) {
      const dir = join(work, shard);
      // full stops after step 1 and resumes on 2 processes without groups (2 chunks per unit either way)
      const stop = shard === 'full' ? ['', '1'] : [];
      await runShard(dir, vae, 4, { ...base, shard, shardGroupSize: 2, data: { packsPerRank: 1 } }, stop);
      const ckpt = join(dir, 'checkpoints', `step-${shard === 'full' ? 1 : 2}`, 'shards');
      // every process writes its own file; ranks 0 and 2 (and 1 and 3) hold the same chunk of a unit
      const files = [0, 1, 2, 3].map((k) => torch.safetensors.load(join(ckpt, `rank-${k}.safetensors`)).tensors);
      const whole = [...refWeights].filter(([k]) => /^(language_model\.model\.norm|language_model\.lm_head|llm2vae)/.test(k)).reduce((s, [, t]) => s + t.numel, 0);
      const head = files.map((f) => f.get('head.param')!);
      assert.equal(head[0]!.numel, Math.ceil(whole / 2), `hybrid ${shard}: a head chunk of ${head[0]!.numel} for ${whole} elements over 2`);
      for (const [a, b] of [[0, 2], [1, 3]] as const) {
        assert.equal(torch.scope(() => head[a]!.sub(head[b]!).abs().max().item()), 0, `hybrid ${shard}: ranks ${a} and ${b} hold different head chunks`);
      }
      if (shard === 'full') await runShard(dir, vae, 2, { ...base, shard, data: { packsPerRank: 2 } }, ['resume']);
      const w = worstRelative(refWeights, torch.safetensors.load(join(dir, 'model.safetensors')).tensors);
      console.log(`# 4 x ${shard}, groups of 2${shard === 'full' ? ', resumed at step 1 on 2 processes' : ''}: largest relative difference ${w.rel.toExponential(2)} (${w.key})`);
      assert.ok(w.rel <= 1e-6, `hybrid ${shard}: ${w.key} differs by ${w.rel} relative`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
