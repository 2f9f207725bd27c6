// The planner against the allocator's measured peak of real training steps (docs/planner.md 5):
// tiny with a pack of 322 tokens and micro with one of 50, for fp32 and bf16-mixed, with and
// without activation checkpointing, full fine-tuning and LoRA (small only in `npm run
// bench:scale`: its step takes minutes on a CPU). Target: within 15%. The steps run on
// UNICHAR_TEST_DEVICE (test/torch/device.ts; scripts/device-check.sh sets cuda).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MICRO, TINY, type ModelConfig } from '../../src/model/index.js';
import { measureStep, planMemory, type Precision, type TrainMode } from '../../src/plan/index.js';
import { testDevice } from '../torch/device.js';

const LORA = { r: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_proj_moe_gen', 'k_proj_moe_gen', 'v_proj_moe_gen', 'o_proj_moe_gen'] };

function check(model: ModelConfig, mode: TrainMode, precision: Precision, activationCheckpointing: boolean, textTokens: number, latentSide: number): void {
  const device = testDevice();
  const m = measureStep({ model, mode, precision, activationCheckpointing, lora: LORA, textTokens, latentSide, device });
  const p = planMemory({ model, mode, precision, devices: 1, deviceMemory: 2 ** 40, pack: m.pack, activationCheckpointing, shard: 'none', lora: LORA, optimizerKernel: m.optimizerKernel });
  const ratio = p.total / m.peakBytes;
  const what = `${model.name} ${mode} ${precision}${activationCheckpointing ? ' checkpointed' : ''} on ${device}`;
  assert.ok(Math.abs(ratio - 1) <= 0.15, `${what}: planned ${p.total} vs measured ${m.peakBytes} bytes (ratio ${ratio.toFixed(3)})`);
}

for (const precision of ['fp32', 'bf16-mixed'] as const) {
  for (const ck of [false, true]) {
    const how = `${precision}${ck ? ', checkpointed' : ''}`;
    test(`tiny, full fine-tuning, ${how}: planned peak within 15% of the measured one`, () => check(TINY, 'full', precision, ck, 254, 8));
    test(`tiny, LoRA, ${how}: planned peak within 15% of the measured one`, () => check(TINY, 'lora', precision, ck, 254, 8));
    test(`micro, full fine-tuning, ${how}: planned peak within 15% of the measured one`, () => check(MICRO, 'full', precision, ck, 30, 4));
  }
}

test('checkpointing lowers the measured peak of tiny in both modes, and bf16-mixed holds more resident bytes than fp32 but fewer activations', () => {
  const run = (precision: Precision, ck: boolean): number => measureStep({ model: TINY, mode: 'lora', precision, activationCheckpointing: ck, lora: LORA, textTokens: 254, latentSide: 8, device: testDevice() }).peakBytes;
  for (const precision of ['fp32', 'bf16-mixed'] as const) {
    const off = run(precision, false);
    const on = run(precision, true);
    assert.ok(on < 0.8 * off, `${precision}: checkpointed peak ${on} vs plain ${off}`);
  }
});
