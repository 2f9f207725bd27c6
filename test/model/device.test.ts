// The training forward on the test device (UNICHAR_TEST_DEVICE, test/torch/device.ts): every
// index, mask and table built from the packed batch's JS arrays goes to the model's device, and
// the losses and gradients match the CPU's (bit for bit when the test device is the CPU).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { noGrad } from '../../src/torch/index.js';
import { Bagel, MICRO, buildPackedBatch, disposeBatch, totalLoss, trainingForward, type PackSample } from '../../src/model/index.js';
import { testDevice } from '../torch/device.js';

function samples(device: torch.Device): PackSample[] {
  torch.manualSeed(3);
  const latent = torch.randn([MICRO.vae.zChannels, 8, 8]).to(device).keep();
  const image = torch.randn([3, 28, 28]).to(device).keep();
  return [
    [{ kind: 'text', ids: [10, 11, 12], loss: 0 }, { kind: 'vae_image', latent, loss: 1 }],
    [{ kind: 'vit_image', image }, { kind: 'text', ids: [30, 31, 32, 33], loss: 1 }],
  ];
}

/** Loss and the gradient of every parameter (on the CPU) of one training forward on `device`. */
function lossAndGrads(device: torch.Device): { loss: number; grads: Map<string, torch.Tensor> } {
  torch.manualSeed(0);
  const model = new Bagel(MICRO).toDevice(device);
  const batch = buildPackedBatch(samples(device), MICRO, { random: () => 0.5 });
  try {
    return torch.scope(() => {
      const noise = torch.randn(batch.vae!.latents.shape).to(device);
      const loss = totalLoss(trainingForward(model, batch, { noise }));
      loss.backward();
      const grads = new Map<string, torch.Tensor>();
      noGrad(() => {
        for (const [n, p] of model.namedParameters({ trainableOnly: true })) {
          assert.ok(p.grad, `${n} has a gradient`);
          assert.equal(p.grad.device.replace(/:\d+$/, ''), device.replace(/:\d+$/, ''), `${n}'s gradient is on ${device}`);
          grads.set(n, p.grad.to('cpu').keep());
        }
      });
      return { loss: loss.item(), grads };
    });
  } finally {
    disposeBatch(batch);
    model.dispose();
  }
}

test('trainingForward and backward run on the test device and agree with the CPU', () => {
  const device = testDevice();
  const here = lossAndGrads(device);
  const cpu = device === 'cpu' ? here : lossAndGrads('cpu');
  const tol = device === 'cpu' ? 0 : 1e-3;
  assert.ok(Math.abs(here.loss - cpu.loss) <= tol * Math.max(1, Math.abs(cpu.loss)), `loss ${here.loss} vs ${cpu.loss} on the CPU`);
  for (const [n, g] of cpu.grads) {
    const d = torch.scope(() => here.grads.get(n)!.sub(g).abs().max().item());
    const scale = torch.scope(() => g.abs().max().item());
    assert.ok(d <= tol * Math.max(1e-3, scale), `${n}: max |grad difference| ${d} (gradient scale ${scale})`);
  }
  if (device === 'cpu') {
    // the same run twice gives the same numbers: the comparison above is exact on the CPU
    const again = lossAndGrads('cpu');
    assert.equal(again.loss, cpu.loss);
    again.grads.forEach((g) => g.dispose());
  }
  here.grads.forEach((g) => g.dispose());
  if (cpu !== here) cpu.grads.forEach((g) => g.dispose());
});
