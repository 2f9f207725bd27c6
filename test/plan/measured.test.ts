// The planner against the allocator's measured peak of real training steps (docs/planner.md 5):
// tiny with a pack of 322 tokens (full and LoRA), small with a short pack of 50 (a step of the
// 0.28 B-parameter model on a CPU). Target: within 15%.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMALL, TINY, type ModelConfig } from '../../src/model/index.js';
import { measureStep, planMemory, type TrainMode } from '../../src/plan/index.js';

const LORA = { r: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_proj_moe_gen', 'k_proj_moe_gen', 'v_proj_moe_gen', 'o_proj_moe_gen'] };

function check(model: ModelConfig, mode: TrainMode, textTokens: number, latentSide: number): void {
  const m = measureStep({ model, mode, precision: 'fp32', activationCheckpointing: false, lora: LORA, textTokens, latentSide });
  const p = planMemory({ model, mode, precision: 'fp32', devices: 1, deviceMemory: 2 ** 40, pack: m.pack, activationCheckpointing: false, shard: 'none', lora: LORA });
  const ratio = p.total / m.peakBytes;
  assert.ok(Math.abs(ratio - 1) <= 0.15, `${model.name} ${mode}: planned ${p.total} vs measured ${m.peakBytes} bytes (ratio ${ratio.toFixed(3)})`);
}

test('tiny, full fine-tuning in fp32: planned peak within 15% of the measured one', () => check(TINY, 'full', 254, 8));
test('tiny, LoRA in fp32: planned peak within 15% of the measured one', () => check(TINY, 'lora', 254, 8));
test('small, full fine-tuning in fp32: planned peak within 15% of the measured one', () => check(SMALL, 'full', 30, 4));
