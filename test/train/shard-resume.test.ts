// Sharded checkpoints (docs/sharding.md 6): a sharded run stopped after a checkpoint and resumed,
// on the same world size or on another, ends with the weights the uninterrupted 4-process run
// ends with (within 1e-6 relative to each tensor's largest value; the sums are exact,
// docs/sharding.md 4, so the measured difference is 0).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { randomVae } from './fixtures/sft-fixtures.js';
import { runShard, worstRelative } from './fixtures/shard-run.js';

const STEPS = 4;
const GLOBAL_PACKS = 4;
const base = { totalSteps: STEPS, saveEvery: 2 };
const cfg = (shard: string, n: number): object => ({ ...base, shard, data: { packsPerRank: GLOBAL_PACKS / n } });

test('a sharded run resumed on the same or another world size continues as the uninterrupted 4-process run', { timeout: 600_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'shard-resume-'));
  try {
    const vae = randomVae(work);
    const ref = join(work, 'ref');
    await runShard(ref, vae, 4, cfg('full', 4));
    const refWeights = torch.safetensors.load(join(ref, 'model.safetensors')).tensors;

    const cases = [
      { name: 'full 4 -> 2', shard: 'full', first: 4, then: 2 },
      { name: 'grad 2 -> 2', shard: 'grad', first: 2, then: 2 },
    ];
    for (const c of cases) {
      const dir = join(work, c.name.replace(/\W+/g, '-'));
      await runShard(dir, vae, c.first, cfg(c.shard, c.first), ['', '2']);
      assert.ok(existsSync(join(dir, 'checkpoints', 'step-2', 'shards', `rank-${c.first - 1}.safetensors`)), `${c.name}: no step-2 shards`);
      assert.ok(!existsSync(join(dir, 'model.safetensors')), `${c.name}: the stopped run must not export`);
      const r = await runShard(dir, vae, c.then, cfg(c.shard, c.then), ['resume']);
      assert.ok(r.lines.some((l) => /MEM \d+ 3 /.test(l)), `${c.name}: the resumed run must start at step 3`);
      assert.ok(!r.lines.some((l) => /MEM \d+ [12] /.test(l)), `${c.name}: the resumed run re-ran steps 1-2`);
      const w = worstRelative(refWeights, torch.safetensors.load(join(dir, 'model.safetensors')).tensors);
      console.log(`# ${c.name}: largest relative difference to the uninterrupted 4-process run ${w.rel.toExponential(2)} (${w.key})`);
      assert.ok(w.rel <= 1e-6, `${c.name}: ${w.key} differs by ${w.rel} relative`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
