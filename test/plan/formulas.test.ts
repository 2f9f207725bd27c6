import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TINY, BAGEL_7B_MOT } from '../../src/model/index.js';
import {
  decoderLayerTerms, checkpointedLayerTerms, outerTerms, parseBytes, planMemory, sumTerms,
  type ParameterCounts, type PackShape, type PlanInput,
} from '../../src/plan/index.js';

const pack = (tokens: number, sampleLens = [tokens]): PackShape => ({ tokens, sampleLens, ceTokens: 0, latentTokens: 0 });

test('one fp32 tiny decoder layer saves the hand-worked 2,834,400 bytes for 100 tokens', () => {
  // docs/planner.md 3.2 in fp32 (s = 4): 4N[6D + 2 + H + Hkv + d(8H + 5Hkv) + 4I] + 4H L^2
  // D 256, H 8, Hkv 4, d 32, I 512, N = L = 100: 400 * 6286 + 4 * 8 * 100^2
  assert.equal(sumTerms(decoderLayerTerms(TINY, pack(100), 4)), 400 * 6286 + 320_000);
  assert.equal(400 * 6286 + 320_000, 2_834_400);
  // two samples of 50: only the attention term changes, to 4 * 8 * 2 * 50^2
  assert.equal(sumTerms(decoderLayerTerms(TINY, pack(100, [50, 50]), 4)), 400 * 6286 + 160_000);
  // checkpointed: the layer input alone, s N D
  assert.equal(sumTerms(checkpointedLayerTerms(TINY, pack(100), 2)), 2 * 100 * 256);
});

test('bf16 activations keep the norms and the softmax fp32: the layer costs more than half of fp32', () => {
  const f = sumTerms(decoderLayerTerms(TINY, pack(100), 4));
  const h = sumTerms(decoderLayerTerms(TINY, pack(100), 2));
  assert.ok(h > f / 2, `${h} vs ${f}`);
  // the difference is exactly: fp32 terms unchanged (4 norms' inputs and 1/rms), the rest halved,
  // the RoPE tables cast to bf16 per layer (4 * 2 * N * d) and the fp32 softmax output (4 H L^2)
  const fp32Only = 4 * (2 * (100 * 256 + 100) + (100 * 8 * 32 + 100 * 8) + (100 * 4 * 32 + 100 * 4));
  assert.equal(h, (f - fp32Only) / 2 + fp32Only + 4 * 2 * 100 * 32 + 4 * 8 * 100 * 100);
  // LoRA with fp32 adapters over bf16 inputs adds the adapters' input casts (3 N D + N H d) * 4
  const lora = sumTerms(decoderLayerTerms(TINY, pack(100), 2, 8, 4));
  assert.equal(lora - h, 4 * 4 * 100 * 8 + 4 * 100 * (3 * 256 + 8 * 32));
});

test('the CE head saves an fp32 log-softmax of every CE row', () => {
  const p: PackShape = { tokens: 10, sampleLens: [10], ceTokens: 6, latentTokens: 0 };
  const t = outerTerms(TINY, p, 4).find((x) => x.name.startsWith('log-softmax'))!;
  assert.equal(t.bytes, 4 * 6 * TINY.llm.vocabSize);
});

// Hand-made counts: 2 decoder layers of 100 trained parameters, embedding 40, head 60, 10 frozen, VAE 0.
const COUNTS: ParameterCounts = {
  units: [
    { name: 'embedding', trainable: 40, frozen: 10 },
    { name: 'layer 0', trainable: 100, frozen: 0 },
    { name: 'layer 1', trainable: 100, frozen: 0 },
    { name: 'head', trainable: 60, frozen: 0 },
  ],
  trainable: 300, frozen: 10, buffers: 0, vae: 0, largestTrainableTensor: 60,
};
const base = (o: Partial<PlanInput>): PlanInput => ({
  model: TINY, mode: 'full', precision: 'fp32', devices: 1, deviceMemory: 1e12, pack: pack(1),
  activationCheckpointing: false, shard: 'none', ...o,
});
const stepState = (i: PlanInput): number => {
  const p = planMemory(i, COUNTS);
  const step = p.phases.find((x) => x.name === 'optimizer step')!;
  return p.weights + p.optimizer + step.gradients;
};

test('weights + gradients + AdamW at the step follow docs/sharding.md 1 for P = 300 (+ 10 frozen)', () => {
  const P = 300;
  const frozen = 10 * 4;
  assert.equal(stepState(base({})), 16 * P + frozen);
  assert.equal(stepState(base({ devices: 4, shard: 'grad' })), 4 * P + (16 * P) / 4 + frozen);
  assert.equal(stepState(base({ devices: 4, shard: 'full' })), (16 * P + frozen) / 4);
  // bf16-mixed: bf16 working weights, fp32 master, fp32 gradients, fp32 moments: 18 bytes
  assert.equal(stepState(base({ precision: 'bf16-mixed' })), 18 * P + 10 * 2);
  // bf16: 2 + 2 + 4
  assert.equal(stepState(base({ precision: 'bf16' })), 8 * P + 10 * 2);
});

test('the optimizer step\'s workspace: sqrt(v) of every moment (4 P bytes) for foreach, none for the fused pass', () => {
  const P = 300;
  const workspace = (i: PlanInput): number => planMemory(i, COUNTS).phases.find((x) => x.name === 'optimizer step')!.workspace;
  assert.equal(workspace(base({})), 4 * P);
  assert.equal(workspace(base({ optimizerKernel: 'foreach' })), 4 * P);
  assert.equal(workspace(base({ optimizerKernel: 'fused' })), 0);
  assert.equal(workspace(base({ devices: 4, shard: 'grad', optimizerKernel: 'foreach' })), P); // each rank's shard
});

test('backward phases: gradients grow layer by layer while activations shrink', () => {
  const p = planMemory(base({ pack: pack(64) }), COUNTS);
  const [, head, last, first] = p.phases;
  assert.equal(head!.gradients, 60 * 4);
  assert.equal(last!.gradients, (60 + 100) * 4);
  assert.equal(first!.gradients, (60 + 200) * 4);
  const layer = sumTerms(decoderLayerTerms(TINY, pack(64), 4));
  assert.equal(last!.activations - first!.activations, layer);
  // sharded over 4 (docs/sharding.md 4): every unit's float32 gradient shard kept from step to
  // step (300 x 4 / 4), plus the whole gradients: grad reduces after the backward, so the head's
  // and every layer's; full reduces the head before the layers' backward and a layer once the
  // backward has left it, so one layer's. full also holds the embedding unit and two layers whole
  // (40 + 10 frozen, 2 x 100, fp32), the head (60) until the layers' backward, and a
  // reduce-scatter a send and a receive piece of the largest unit (100)
  const g = planMemory(base({ pack: pack(64), devices: 4, shard: 'grad' }), COUNTS);
  assert.equal(g.phases[3]!.gradients, 300 + (60 + 200) * 4);
  const f = planMemory(base({ pack: pack(64), devices: 4, shard: 'full' }), COUNTS);
  assert.equal(f.phases[1]!.gradients, 300 + 60 * 4);
  assert.equal(f.phases[3]!.gradients, 300 + 100 * 4);
  assert.equal(f.phases[0]!.workspace - p.phases[0]!.workspace, (40 + 10 + 60 + 200) * 4);
  assert.equal(f.phases[3]!.workspace - p.phases[3]!.workspace, (40 + 10 + 200) * 4 + 2 * 4 * 100);
});

test('checkpointing keeps one layer input per layer plus one recomputed layer', () => {
  const off = planMemory(base({ pack: pack(64) }), COUNTS);
  const on = planMemory(base({ pack: pack(64), activationCheckpointing: true }), COUNTS);
  const layer = sumTerms(decoderLayerTerms(TINY, pack(64), 4));
  const kept = 4 * 64 * 256;
  assert.equal(off.phases[2]!.activations - on.phases[2]!.activations, 2 * layer - (2 * kept + layer));
});

test('verdicts for the published size: full fp32 on one 80 GB GPU does not fit; LoRA bf16-mixed does', () => {
  const m = { model: BAGEL_7B_MOT, deviceMemory: parseBytes('80GiB'), pack: { tokens: 4096, sampleLens: [1024, 1024, 1024, 1024], ceTokens: 1024, latentTokens: 2048 }, reserve: parseBytes('2GiB') };
  const full = planMemory(base({ ...m }));
  assert.equal(full.fits, false);
  assert.ok(full.weights + full.optimizer > 12 * 14.5e9);
  const lora = planMemory(base({ ...m, mode: 'lora', precision: 'bf16-mixed', activationCheckpointing: true, lora: { r: 8, targets: ['q_proj', 'o_proj'] } }));
  assert.equal(lora.fits, true);
  assert.ok(lora.counts.trainable < 1e8);
});

test('bad plan inputs are errors naming the input', () => {
  assert.throws(() => planMemory(base({ devices: 0 }), COUNTS), /devices must be a positive integer/);
  assert.throws(() => planMemory(base({ shard: 'full' }), COUNTS), /shard full needs more than one device/);
  assert.throws(() => planMemory(base({ pack: { tokens: 10, sampleLens: [4], ceTokens: 0, latentTokens: 0 } }), COUNTS), /sum to 4, not the 10/);
  assert.throws(() => planMemory(base({ mode: 'lora' }), COUNTS), /mode lora needs the adapters/);
  assert.throws(() => planMemory(base({ optimizerKernel: 'apex' as never }), COUNTS), /optimizer kernel must be one of foreach, fused, got "apex"/);
  assert.equal(parseBytes('80GiB'), 80 * 2 ** 30);
  assert.equal(parseBytes('80GB'), 80e9);
  assert.equal(parseBytes('1.5 MiB'), 1.5 * 2 ** 20);
  assert.throws(() => parseBytes('80 parsecs'), /'80 parsecs' is not a size/);
  assert.throws(() => parseBytes('0GiB'), /not a positive size/);
});
