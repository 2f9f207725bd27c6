// The PyTorch baseline of bench:train (bench/sft_baseline.py, the SFT step written in plain
// Python torch) against the TS step: from the same weights on the same pack, every step's CE,
// MSE and loss agree to 1e-5, while the loss falls (the optimizers and clipping act alike).
// Needs torch in /usr/bin/python3 (Debian's python3-torch, installed by the benches' npm
// scripts, never by the default setup); skipped cleanly without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { AdamW, clipGradNorm } from '../../src/nn/index.js';
import { disposeBatch } from '../../src/model/index.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { tinySftConfig } from '../../src/train/sft-config.js';
import { sftForwardBackward } from '../../src/train/sft.js';
import { ensureGradients } from '../../src/train/data-parallel.js';
import { baselineTorchMissing } from '../../bench/peer.js';
import { SftBaseline } from '../../bench/sft-baseline.js';
import { sftBenchModel } from '../../bench/sft-step.js';

const noTorch = baselineTorchMissing();

test('the PyTorch SFT baseline computes the TS step\'s losses, step after step', { skip: noTorch }, async () => {
  const config = tinySftConfig({ model: 'micro' });
  const m = await sftBenchModel(loadSampleCharacter().character, config);
  const o = config.optim;
  const opt = new AdamW(m.trainable, { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay });
  const fixed = m.data.stepBatches(0);
  const pack = fixed[0]!.batch;
  assert.ok(pack.vit && pack.vae && pack.ceIndexes.length, 'the pack holds text, ViT and latent tokens');
  const dir = mkdtempSync(join(tmpdir(), 'sft-baseline-test-'));
  const py = await SftBaseline.start(dir, m.model, m.mc, fixed[0]!, config, torch.getNumThreads(), {});
  try {
    const losses: number[] = [];
    for (let k = 0; k < 3; k++) {
      const ts = torch.scope(() => {
        opt.zeroGrad();
        const l = sftForwardBackward(m.model, fixed, { ceWeight: config.ceWeight, mseWeight: config.mseWeight, timestepShift: config.timestepShift });
        ensureGradients(m.trainable);
        clipGradNorm(m.trainable, o.gradClip);
        opt.step();
        return l;
      });
      const p = await py.step();
      for (const key of ['loss', 'ce', 'mse'] as const) {
        assert.ok(Math.abs(ts[key] - p[key]) <= 1e-5, `step ${k + 1} ${key}: TS ${ts[key]}, PyTorch ${p[key]}`);
      }
      losses.push(ts.loss);
    }
    assert.ok(losses[2]! < losses[0]!, `the loss falls: ${losses.join(', ')}`);
  } finally {
    py.close();
    for (const b of fixed) {
      disposeBatch(b.batch);
      b.noise?.dispose();
    }
    opt.dispose();
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
