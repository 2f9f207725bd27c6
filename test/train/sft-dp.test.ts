// Data parallel SFT (issue 5 item 5): 2 processes with b packs each end with the same weights as
// 1 process with 2b packs, within 1e-6 after 3 steps. The two runs see exactly the same samples
// and noise (sft-data.ts seeds every draw per sample); what differs is the order of float
// additions (two partial sums averaged by the all-reduce versus one sum), hence the tolerance.
// The ViT key biases are excluded (their true gradient is 0, see below).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { launch } from '../../src/torch/index.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { trainSft } from '../../src/train/sft.js';
import { randomVae, smallConfig } from './fixtures/sft-fixtures.js';

const VIT_KEY_BIAS = /^vit_model\..*self_attn\.k_proj\.bias$/;
const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'sft-dp-worker.js');

test('2 ranks with 1 pack each match 1 rank with 2 packs within 1e-6 after 3 steps', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sft-dp-'));
  try {
    const vaePath = randomVae(work);
    const one = join(work, 'one');
    const two = join(work, 'two');
    const t0 = Date.now();
    await trainSft(smallConfig(vaePath, { totalSteps: 3, saveEvery: 3, data: { packsPerRank: 2 } }), { runDir: one, progress: null, handleSigint: false });
    const t1 = Date.now();
    const lines: string[] = [];
    const res = await launch({ nproc: 2, script: WORKER, args: [two, vaePath, '1', '3'], env: { OMP_NUM_THREADS: '1' }, onLine: (r, _s, l) => lines.push(`[${r}] ${l}`) });
    const t2 = Date.now();
    assert.ok(res.ok, `launch failed: ${res.error}\n${lines.join('\n')}`);
    console.log(`# 1 process x 2 packs: ${t1 - t0} ms; 2 processes x 1 pack: ${t2 - t1} ms`);
    const [ma, mb] = [readMetrics(join(one, 'metrics.jsonl')), readMetrics(join(two, 'metrics.jsonl'))];
    assert.deepEqual(mb.map((m) => [m.numCe, m.numMse, m.tokens]), ma.map((m) => [m.numCe, m.numMse, m.tokens]), 'same global token counts');
    for (let i = 0; i < 3; i++) assert.ok(Math.abs((ma[i]!.loss as number) - (mb[i]!.loss as number)) < 1e-5, `step ${i + 1} loss ${ma[i]!.loss} vs ${mb[i]!.loss}`);
    const a = torch.safetensors.load(join(one, 'model.safetensors')).tensors;
    const b = torch.safetensors.load(join(two, 'model.safetensors')).tensors;
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    let worst = 0;
    let worstKey = '';
    const diffs: [string, number][] = [];
    for (const [k, t] of a) {
      const d = torch.scope(() => t.sub(b.get(k)!).abs().max().item());
      diffs.push([k, d]);
      // The SigLIP key bias adds the same q.b to every logit of a row of a bidirectional softmax:
      // its true gradient is exactly 0, so its computed gradient is float noise that AdamW with
      // eps 1e-15 turns into +-lr steps of arbitrary sign. It never changes the model's output.
      if (VIT_KEY_BIAS.test(k)) continue;
      if (d > worst) [worst, worstKey] = [d, k];
    }
    assert.ok(diffs.some(([k]) => VIT_KEY_BIAS.test(k)));

    console.log(`# largest weight difference ${worst.toExponential(2)} (${worstKey})`);
    assert.ok(worst <= 1e-6, `${worstKey} differs by ${worst}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
