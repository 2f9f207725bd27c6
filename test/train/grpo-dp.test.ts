// Data-parallel Character-GRPO (docs/method.md 3.3): 2 processes, each making one of the epoch's two
// prompt draws, end with the generation-expert weights of 1 process making both draws, and both
// ranks see the same gathered rewards and advantages.
//
// Why the runs agree: every rank draws the same prompt order from the shared seed, every rollout's
// noise and SDE window come from a seed of (seed, epoch, draw, k), and the rewards are gathered
// before the advantages, so both runs make the same rollouts (epoch 1 bit for bit) and the same
// advantages. The gradient sums are exact too (docs/sharding.md 7: every micro-step's gradient is
// summed over the ranks in rank order, in an order that is the same at any world size), so the
// measured difference is 0; the bound, 1e-6, is 2000x below one step of lr 1e-3: any real
// mismatch (a rollout, an advantage or a gradient share missing) moves entries by ~lr.
// Epoch 2's rewards are compared within 1e-5 and its advantages within 1e-3 as a bound, not a measurement
// (its rollouts start from weights ~1e-7 apart; a group's std can be small).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { launch } from '../../src/torch/index.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { trainGrpo } from '../../src/train/grpo.js';
import { writeTinySft, tinyGrpoConfig } from './fixtures/grpo-fixtures.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'grpo-dp-worker.js');
const GEN = /^language_model\..*moe_gen/;

interface Seen { epoch: number; prompts: number[]; draws: number[]; rewards: number[]; advantages: number[] }

test('2 GRPO ranks match 1 rank making both shares; gathered advantages are identical on both ranks', async () => {
  const work = mkdtempSync(join(tmpdir(), 'grpo-dp-'));
  try {
    torch.setNumThreads(1); // as the ranks (OMP_NUM_THREADS=1): the same kernels on both sides
    const from = writeTinySft(work);
    const one = join(work, 'one');
    const two = join(work, 'two');
    const seenOne: Seen[] = [];
    const t0 = Date.now();
    await trainGrpo(tinyGrpoConfig(from, one, { evalEvery: 2 }), { progress: null, handleSigint: false, log: () => {}, onAdvantages: (epoch, a) => seenOne.push({ epoch, ...a }) });
    const t1 = Date.now();
    const cfgPath = join(work, 'two.json');
    writeFileSync(cfgPath, JSON.stringify(tinyGrpoConfig(from, two, { evalEvery: 2 })));
    const lines: string[] = [];
    const res = await launch({ nproc: 2, script: WORKER, args: [cfgPath, work], env: { OMP_NUM_THREADS: '1' }, onLine: (r, _s, l) => lines.push(`[${r}] ${l}`) });
    const t2 = Date.now();
    assert.ok(res.ok, `launch failed: ${res.error}\n${lines.join('\n')}`);
    console.log(`# 1 process x 2 draws: ${t1 - t0} ms; 2 processes x 1 draw: ${t2 - t1} ms`);
    assert.ok(lines.some((l) => l.startsWith('[0] Character-GRPO') && l.includes('2 processes')), lines.join('\n'));
    assert.ok(!lines.some((l) => l.startsWith('[1] Character-GRPO')), 'rank 1 logged');

    // Gathered advantages: bit-identical on both ranks, covering both draws of each epoch.
    const r0 = JSON.parse(readFileSync(join(work, 'rank-0.json'), 'utf8')) as Seen[];
    const r1 = JSON.parse(readFileSync(join(work, 'rank-1.json'), 'utf8')) as Seen[];
    assert.equal(r0.length, 2);
    assert.deepEqual(r1, r0);
    for (const [e, s] of r0.entries()) {
      assert.deepEqual(s.draws, [0, 0, 1, 1]);
      assert.deepEqual(s.prompts, seenOne[e]!.prompts, 'the same prompt order as 1 rank');
      for (let i = 0; i < 4; i++) {
        assert.ok(Math.abs(s.rewards[i]! - seenOne[e]!.rewards[i]!) < 1e-5, `epoch ${e + 1} reward ${i}: ${s.rewards[i]} vs ${seenOne[e]!.rewards[i]}`);
        assert.ok(Math.abs(s.advantages[i]! - seenOne[e]!.advantages[i]!) < 1e-3, `epoch ${e + 1} advantage ${i}: ${s.advantages[i]} vs ${seenOne[e]!.advantages[i]}`);
      }
    }
    assert.ok(r0[0]!.advantages.some((a) => a !== 0), 'some advantage is non-zero');

    // Metrics are global: the same group statistics as 1 rank.
    const [ma, mb] = [readMetrics(join(one, 'metrics.jsonl')), readMetrics(join(two, 'metrics.jsonl'))];
    assert.equal(mb.length, 2);
    for (let i = 0; i < 2; i++) {
      assert.equal(mb[i]!.mean_group_size, ma[i]!.mean_group_size);
      assert.equal(mb[i]!.updates, 1);
      assert.ok(Math.abs((ma[i]!.reward as number) - (mb[i]!.reward as number)) < 1e-5);
      assert.ok(Math.abs(ma[i]!.loss as number - (mb[i]!.loss as number)) < 1e-4, `loss ${ma[i]!.loss} vs ${mb[i]!.loss}`);
    }
    // The evaluation (epoch 2), split over the ranks (4 prompts each) and gathered: the same scores.
    for (const k of ['eval_reward', 'eval_vqa', 'eval_clip', 'eval_div', 'eval_dino']) {
      assert.equal(typeof mb[1]![k], 'number', k);
      assert.ok(Math.abs((ma[1]![k] as number) - (mb[1]![k] as number)) < 1e-5, `${k}: ${ma[1]![k]} vs ${mb[1]![k]}`);
    }

    // Final weights: the generation expert within 1e-6, everything else exactly the start.
    const a = torch.safetensors.load(join(one, 'model', 'model.safetensors')).tensors;
    const b = torch.safetensors.load(join(two, 'model', 'model.safetensors')).tensors;
    const s = torch.safetensors.load(join(from, 'model.safetensors')).tensors;
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    let worst = 0;
    let worstKey = '';
    let moved = 0;
    for (const [k, t] of a) {
      const d = torch.scope(() => t.sub(b.get(k)!).abs().max().item());
      if (GEN.test(k)) {
        if (d > worst) [worst, worstKey] = [d, k];
        moved = Math.max(moved, torch.scope(() => t.sub(s.get(k)!).abs().max().item()));
      } else {
        assert.equal(d, 0, `${k} is not in the generation expert but differs`);
      }
    }
    console.log(`# generation expert: largest move ${moved.toExponential(2)}, largest 1-vs-2-rank difference ${worst.toExponential(2)} (${worstKey})`);
    assert.ok(moved > 1e-4, 'training moved the generation expert');
    assert.ok(worst <= 1e-6, `${worstKey} differs by ${worst}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
