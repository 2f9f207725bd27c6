// The training forward (docs/method.md 1.8, 2.3): shapes and values of the CE and MSE terms, and the
// tiny model's loss falling over a few AdamW steps on a fixed packed batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { noGrad } from '../../src/torch/index.js';
import { AdamW } from '../../src/nn/index.js';
import { Bagel, buildPackedBatch, shift, MICRO, totalLoss, trainingForward, type PackSample } from '../../src/model/index.js';

function fixedBatch(): PackSample[] {
  const latent = torch.randn([MICRO.vae.zChannels, 8, 8]).keep();
  const image = torch.randn([3, 28, 28]).keep();
  return [
    [{ kind: 'text', ids: [10, 11, 12], loss: 0, enableCfg: 1 }, { kind: 'vae_image', latent, loss: 1 }],
    [{ kind: 'vit_image', image }, { kind: 'text', ids: [20, 21], loss: 0 }, { kind: 'text', ids: [30, 31, 32, 33], loss: 1 }],
  ];
}

test('shift is the identity at s = 1 and pushes t up for s > 1', () => {
  assert.equal(shift(0.3, 1), 0.3);
  assert.ok(Math.abs(shift(0.5, 3) - 0.75) < 1e-12);
  assert.equal(shift(1, 3), 1);
  assert.equal(shift(0, 3), 0);
});

test('with zero llm2vae the MSE equals mean((eps - x0)^2); CE starts near ln(vocab)', () => {
  torch.manualSeed(0);
  const model = new Bagel(MICRO);
  torch.scope(() => noGrad(() => {
    const batch = buildPackedBatch(fixedBatch(), MICRO, { random: () => 0.5 });
    const eps = torch.randn(batch.vae!.latents.shape);
    const l = trainingForward(model, batch, { noise: eps });
    assert.equal(l.numMse, 16);
    assert.equal(l.numCe, 5);
    const want = eps.sub(batch.vae!.latents).pow(2).mean().item();
    assert.ok(Math.abs(l.mse!.item() - want) < 1e-5);
    assert.ok(Math.abs(l.ce!.item() - Math.log(MICRO.llm.vocabSize)) < 1.5);
  }));
  model.dispose();
});

test('the training loss falls over a few AdamW steps on a fixed batch', () => {
  torch.manualSeed(1);
  const model = new Bagel(MICRO);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  const samples = fixedBatch();
  const batch = buildPackedBatch(samples, MICRO, { random: () => 0.5 });
  const noise = torch.randn(batch.vae!.latents.shape).keep();
  const losses: number[] = [];
  for (let step = 0; step < 8; step++) {
    torch.scope(() => {
      opt.zeroGrad();
      const loss = totalLoss(trainingForward(model, batch, { noise }));
      loss.backward();
      opt.step();
      losses.push(loss.item());
    });
  }
  assert.ok(losses.at(-1)! < 0.8 * losses[0]!, `losses ${losses.map((x) => x.toFixed(3)).join(' ')}`);
  model.dispose();
});
