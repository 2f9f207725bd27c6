// Character-GRPO on a toy reward: a seeded run on the micro model
// whose reward is a simple image statistic, the mean brightness of the top-left quarter of the
// decoded image, injected through trainGrpo's `reward` option (named `custom` in the run). The
// reward must rise clearly within a bounded number of updates. Also: the sign of the gradient of
// the clipped objective with respect to log p_new for positive and negative advantages.
//
// Setup, and why: the model is MICRO (LLM 2 x 64, the unit tests' preset; tiny takes minutes here) at 16x16 px (a 2x2 latent grid, 64 latent numbers; at 32 px
// the 256 numbers make the per-epoch policy-gradient estimate much noisier and the rise slow). An
// untrained BAGEL has a zero velocity head llm2vae (no gradient would reach the generation
// expert); it gets random weights of std 0.2 (SFT would have given it weights; at 0.05 the
// velocity is small beside the noise and the expert needs many more updates to move it). The
// random VAE's decoder barely responds to its latent (top-left brightness within about +-0.05 of
// grey for latents of +-3), so its output convolution's weights are multiplied by 10.
// Run: 24 epochs x 2 prompt draws x 8 rollouts, 6 steps (5 transitions, all in the SDE window,
// noise level 1.3), CFG 4, clip range 0.2, AdamW lr 1e-2 without weight decay, an update every
// 10 window steps (8 updates per epoch, 192 in all).
//
// Threshold: the mean reward of the last 4 epochs must exceed that of the first 4 by at least 0.1
// (images in [-1, 1]). Exploration runs of this setup (seeds 1 and 2) rose from 0.14 / 0.18 over
// the first 4 epochs to about 0.40 at epochs 21-24 (gains of about 0.22-0.26) while one epoch's
// mean (16 rollouts) scatters by about 0.03; a run that does not learn (lr 0) stays within that
// scatter. So 0.1 is over 3x the noise and under half the observed gain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import type { ChwImage } from '../../src/data/index.js';
import { clippedPolicyLoss } from '../../src/train/grpo-objective.js';
import { trainGrpo, DEFAULT_GRPO } from '../../src/train/grpo.js';
import { writeMicroGrpoModel } from '../../src/train/index.js';

/** Mean over channels of the top-left quarter of each image (CHW in [-1, 1]). */
export function topLeftBrightness(images: ChwImage[]): number[] {
  return images.map(({ height: h, width: w, channels, data }) => {
    let s = 0;
    for (let c = 0; c < channels; c++) for (let y = 0; y < h / 2; y++) for (let x = 0; x < w / 2; x++) s += data[c * h * w + y * w + x]!;
    return s / (channels * (h / 2) * (w / 2));
  });
}


test('toy GRPO: the mean top-left brightness (an injected reward) rises clearly within 24 epochs on micro', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-toy-'));
  const threads = torch.getNumThreads();
  torch.setNumThreads(1); // deterministic and steady on a shared machine
  try {
    const from = writeMicroGrpoModel(dir);
    const epochs = 24;
    const means: number[] = [];
    const logs: string[] = [];
    let calls = 0;
    const t0 = performance.now();
    await trainGrpo({
      ...DEFAULT_GRPO, preset: 'project', from, out: join(dir, 'run'), epochs, promptsPerEpoch: 2, groupSize: 8, numSteps: 6, windowSize: 5, windowRange: [0, 5],
      clipRange: 0.2, lr: 1e-2, weightDecay: 0, microStepsPerUpdate: 10, evalEvery: 0, saveEvery: 1000, seed: 1,
    }, {
      log: (l) => logs.push(l), progress: null, handleSigint: false,
      reward: (images, prompts) => {
        calls++;
        assert.equal(images.length, prompts.length);
        return topLeftBrightness(images);
      },
      onAdvantages: (_e, a) => means.push(a.rewards.reduce((x, y) => x + y, 0) / a.rewards.length),
    });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(means.length, epochs);
    assert.equal(calls, epochs);
    const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = avg(means.slice(0, 4));
    const last = avg(means.slice(-4));
    const curve = means.map((m) => m.toFixed(3)).join(' ');
    assert.ok(last - first >= 0.1, `reward did not rise clearly: first 4 epochs ${first.toFixed(3)}, last 4 ${last.toFixed(3)} (curve ${curve})`);
    // The run names the injected reward `custom` in its log, config and metrics.
    assert.ok(logs.some((l) => l.includes('"custom":"custom"')), logs.join('\n'));
    const metrics = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(metrics.length, epochs);
    assert.deepEqual(metrics[0]!.scorers, { custom: 'custom' });
    assert.equal(metrics[0]!.reward_custom, metrics[0]!.reward);
    assert.equal(metrics[0]!.reward_vqa, undefined);
    const config = JSON.parse(readFileSync(join(dir, 'run', 'config.json'), 'utf8')) as { scorers: unknown };
    assert.deepEqual(config.scorers, { custom: 'custom' });
    console.log(`toy GRPO: reward ${first.toFixed(3)} -> ${last.toFixed(3)} (first / last 4 epochs) in ${seconds.toFixed(1)} s; curve ${curve}`);
  } finally {
    torch.setNumThreads(threads);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('clipped objective: the sign of d loss / d log p_new for positive and negative advantages', () => {
  const grad = (logProb: number, advantage: number): { g: number; clipped: boolean } => torch.scope(() => {
    const lp = torch.tensor(logProb, { dtype: 'float64', requiresGrad: true });
    const l = clippedPolicyLoss(lp, 0, advantage, { lo: 0.2, hi: 0.2 });
    l.loss.backward();
    return { g: lp.grad!.item(), clipped: l.clipped };
  });
  // Inside the clip range the loss is -A r, so d/d log p = -A r: gradient descent raises log p of
  // rollouts with A > 0 and lowers it for A < 0.
  for (const lp of [0, 0.1, -0.1]) {
    const pos = grad(lp, 2);
    assert.ok(pos.g < 0 && Math.abs(pos.g - -2 * Math.exp(lp)) < 1e-9, `A > 0, log r = ${lp}: ${pos.g}`);
    const neg = grad(lp, -2);
    assert.ok(neg.g > 0 && Math.abs(neg.g - 2 * Math.exp(lp)) < 1e-9, `A < 0, log r = ${lp}: ${neg.g}`);
  }
  // A > 0 and r > 1 + eps: the clipped term is the max, constant in log p: no gradient (no push further).
  const posHigh = grad(Math.log(1.5), 2);
  assert.equal(posHigh.g, 0);
  assert.equal(posHigh.clipped, true);
  // A > 0 and r < 1 - eps: the unclipped term is the max, the gradient still raises log p.
  const posLow = grad(Math.log(0.5), 2);
  assert.ok(posLow.g < 0 && Math.abs(posLow.g - -2 * 0.5) < 1e-9);
  // A < 0 and r < 1 - eps: clipped, no gradient.
  const negLow = grad(Math.log(0.5), -2);
  assert.equal(negLow.g, 0);
  assert.equal(negLow.clipped, true);
  // A < 0 and r > 1 + eps: the unclipped term is the max, the gradient still lowers log p.
  const negHigh = grad(Math.log(1.5), -2);
  assert.ok(negHigh.g > 0 && Math.abs(negHigh.g - 2 * 1.5) < 1e-9);
  // A = 0: no gradient.
  assert.equal(grad(0.1, 0).g, 0);
});
