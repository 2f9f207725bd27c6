// Sharded data parallel SFT (docs/sharding.md 1-4) on Gloo over 127.0.0.1, micro model: one
// global batch of 4 packs per step, taken by 1 process x 4 packs, 2 x 2 or 4 x 1, with shard
// none, grad and full, ends (after 2 steps) with the same weights as one process with shard none,
// within 1e-6 relative to each tensor's largest value. Sharded runs take their packs interleaved
// and reduce-scatter every pack in rank order (docs/sharding.md 4), so the gradient sums are the
// one-process sums; plain data parallel sums with Gloo's all-reduce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { launch } from '../../src/torch/index.js';
import { randomVae } from './fixtures/sft-fixtures.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'shard-worker.js');
const STEPS = 2;
const GLOBAL_PACKS = 4;

export async function runShard(dir: string, vaePath: string, nproc: number, over: object, extra: string[] = []): Promise<string[]> {
  const lines: string[] = [];
  const res = await launch({
    nproc, script: WORKER, args: [dir, vaePath, JSON.stringify(over), ...extra], env: { OMP_NUM_THREADS: '1' },
    onLine: (r, _s, l) => lines.push(`[${nproc}:${r}] ${l}`),
  });
  assert.ok(res.ok, `launch --nproc ${nproc} ${JSON.stringify(over)} failed: ${res.error}\n${lines.join('\n')}`);
  return lines;
}

/** Largest |a - b| over each tensor, relative to the tensor's largest |a|; the worst tensor. */
export function worstRelative(a: Map<string, torch.Tensor>, b: Map<string, torch.Tensor>): { rel: number; key: string } {
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  let worst = { rel: 0, key: '' };
  for (const [k, t] of a) {
    const [d, m] = torch.scope(() => [t.sub(b.get(k)!).abs().max().item(), t.abs().max().item()]);
    const rel = m > 0 ? d / m : d;
    if (rel > worst.rel || worst.key === '') worst = { rel, key: k };
  }
  return worst;
}

test('1, 2 and 4 processes x shard none, grad, full end with the weights of one process', { timeout: 600_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'shard-dp-'));
  try {
    const vaePath = randomVae(work);
    const base = { totalSteps: STEPS, saveEvery: STEPS };
    const refDir = join(work, 'ref');
    await runShard(refDir, vaePath, 1, { ...base, data: { packsPerRank: GLOBAL_PACKS } });
    const ref = torch.safetensors.load(join(refDir, 'model.safetensors')).tensors;
    const worlds = (process.env['SHARD_TEST_WORLDS'] ?? '1,2,4').split(',').map(Number);
    const modes = (process.env['SHARD_TEST_MODES'] ?? 'none,grad,full').split(',');
    for (const n of worlds) {
      for (const shard of modes) {
        if (n === 1 && shard === 'none') continue; // the reference itself
        const dir = join(work, `${n}-${shard}`);
        const t0 = Date.now();
        await runShard(dir, vaePath, n, { ...base, shard, data: { packsPerRank: GLOBAL_PACKS / n } });
        const got = torch.safetensors.load(join(dir, 'model.safetensors')).tensors;
        const w = worstRelative(ref, got);
        console.log(`# ${n} x ${shard}: ${Date.now() - t0} ms, largest relative difference ${w.rel.toExponential(2)} (${w.key})`);
        assert.ok(w.rel <= 1e-6, `${n} processes, shard ${shard}: ${w.key} differs by ${w.rel} relative`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
