// The PyTorch baseline of bench:grpo (bench/grpo_baseline.py, Character-GRPO's rollout and policy
// update written in plain Python torch) against the TS side: from the same weights, prompt and
// seeds, the rollouts' final latents and window log-probs agree, and so do the policy updates'
// micro-step log-probs, losses and gradient norms, update after update (the clipping and AdamW
// act alike, so the next update still agrees). Needs torch in /usr/bin/python3 (Debian's
// python3-torch, installed by the benches' npm scripts, never by the default setup); skipped
// cleanly without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { MICRO } from '../../src/model/index.js';
import type { Rollout } from '../../src/train/grpo-rollout.js';
import { baselineTorchMissing } from '../../bench/peer.js';
import { GrpoBaseline } from '../../bench/grpo-baseline.js';
import { grpoBenchModel, tsRollout, tsUpdate } from '../../bench/grpo-step.js';

const noTorch = baselineTorchMissing();

const close = (a: number, b: number, tol: number, what: string): void => {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: TS ${a}, PyTorch ${b}`);
};

test('the PyTorch GRPO baseline samples the TS rollouts and computes the TS policy updates', { skip: noTorch }, async () => {
  const m = grpoBenchModel(MICRO, { imageSize: 32, numSteps: 6, windowSize: 2, windowRange: [0, 4], microStepsPerUpdate: 4, promptLength: 6 });
  const dir = mkdtempSync(join(tmpdir(), 'grpo-baseline-test-'));
  const py = await GrpoBaseline.start(dir, m, torch.getNumThreads(), {});
  const kept: Rollout[] = [];
  try {
    for (const [seed, start] of [[11, 0], [12, 3]] as const) {
      const ts = tsRollout(m, seed, start).rollout;
      kept.push(ts);
      const p = await py.rollout(seed, start);
      const latent = Array.from(ts.tokens.dataSync() as Float32Array);
      assert.equal(p.latent.length, latent.length, 'latent size');
      let worst = 0;
      latent.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - p.latent[i]!))));
      assert.ok(worst <= 1e-4, `rollout ${seed}: the final latents differ by up to ${worst}`);
      assert.equal(p.logProbs.length, 2, 'two window steps');
      ts.window.forEach((w, i) => close(w.logProb, p.logProbs[i]!, 1e-5, `rollout ${seed} window log-prob ${i}`));
    }
    const steps = kept.flatMap((r) => r.window);
    const norms: number[] = [];
    for (let u = 0; u < 2; u++) {
      const ts = tsUpdate(m, steps, u, [-1, 1]);
      const p = await py.update([-1, 1]);
      ts.logProbs.forEach((x, i) => close(x, p.logProbs[i]!, 1e-5, `update ${u} micro-step ${i} log-prob`));
      close(ts.loss, p.loss, 1e-5, `update ${u} loss`);
      // relative: the norms are far below 1
      assert.ok(Math.abs(ts.gradNorm - p.gradNorm) <= 1e-4 * p.gradNorm, `update ${u} gradient norm: TS ${ts.gradNorm}, PyTorch ${p.gradNorm}`);
      norms.push(ts.gradNorm);
    }
    assert.ok(norms.every((n) => n > 0), `the updates have gradients: ${norms.join(', ')}`);
    // after two AdamW steps the weights still agree: a third rollout samples the same latent
    const ts = tsRollout(m, 13, 1).rollout;
    kept.push(ts);
    const p = await py.rollout(13, 1);
    const latent = Array.from(ts.tokens.dataSync() as Float32Array);
    let worst = 0;
    latent.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - p.latent[i]!))));
    assert.ok(worst <= 1e-4, `rollout after the updates: the final latents differ by up to ${worst}`);
  } finally {
    py.close();
    for (const r of kept) r.dispose();
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
