// Data parallel SFT (docs/method.md 2.7): 2 processes with b packs each end with the same weights as
// 1 process with 2b packs, within 1e-6 after 3 steps. The two runs see exactly the same samples
// and noise (sft-data.ts seeds every draw per sample), and sftForwardBackward does the same float
// operations either way (per-pack backward with globally normalised sums, then gA + gB by
// gradient accumulation or by the all-reduce), so every parameter agrees, including those whose
// true gradient is 0 (the ViT key biases: AdamW with eps 1e-15 turns their float-noise gradients
// into +-lr steps, so any difference in that noise would show). On this machine they come out
// bit-identical; the bound is the issue's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { launch } from '../../src/torch/index.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { randomVae } from './fixtures/sft-fixtures.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'sft-dp-worker.js');

test('2 ranks with 1 pack each match 1 rank with 2 packs within 1e-6 after 3 steps', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sft-dp-'));
  try {
    const vaePath = randomVae(work);
    const one = join(work, 'one');
    const two = join(work, 'two');
    const lines: string[] = [];
    // Both sides in child processes with the same environment (OMP_NUM_THREADS=1 also sets
    // OpenBLAS's threads, and thread counts change how GEMMs split their sums).
    const run = async (dir: string, nproc: number, packs: number): Promise<void> => {
      const res = await launch({ nproc, script: WORKER, args: [dir, vaePath, String(packs), '3'], env: { OMP_NUM_THREADS: '1' }, onLine: (r, _s, l) => lines.push(`[${nproc}:${r}] ${l}`) });
      assert.ok(res.ok, `launch --nproc ${nproc} failed: ${res.error}\n${lines.join('\n')}`);
    };
    const t0 = Date.now();
    await run(one, 1, 2);
    const t1 = Date.now();
    await run(two, 2, 1);
    const t2 = Date.now();
    console.log(`# 1 process x 2 packs: ${t1 - t0} ms; 2 processes x 1 pack: ${t2 - t1} ms`);
    const [ma, mb] = [readMetrics(join(one, 'metrics.jsonl')), readMetrics(join(two, 'metrics.jsonl'))];
    assert.deepEqual(mb.map((m) => [m.numCe, m.numMse, m.tokens]), ma.map((m) => [m.numCe, m.numMse, m.tokens]), 'same global token counts');
    for (let i = 0; i < 3; i++) assert.ok(Math.abs((ma[i]!.loss as number) - (mb[i]!.loss as number)) < 1e-5, `step ${i + 1} loss ${ma[i]!.loss} vs ${mb[i]!.loss}`);
    const a = torch.safetensors.load(join(one, 'model.safetensors')).tensors;
    const b = torch.safetensors.load(join(two, 'model.safetensors')).tensors;
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    let worst = 0;
    let worstKey = '';
    for (const [k, t] of a) {
      const d = torch.scope(() => t.sub(b.get(k)!).abs().max().item());
      if (d > worst || worstKey === '') [worst, worstKey] = [d, k];
      if (process.env.DP_VERBOSE && d > 0) console.log(`# ${k}: ${d}`);
    }
    console.log(`# largest weight difference ${worst.toExponential(2)} (${worstKey})`);
    assert.ok(worst <= 1e-6, `${worstKey} differs by ${worst}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
