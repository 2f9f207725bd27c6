// The training-step part of scripts/device-check.sh: on one device, the bf16 matmul peak, then
// one SFT step (full fine-tuning, bf16-mixed, checkpointing) of the bagel-7b-mot shapes with as
// many decoder layers as the planner says fit, and one LoRA step of the whole bagel-7b-mot, both
// with random weights: time per step, tokens/s, model FLOPs utilisation against the measured
// peak, and the allocator's peak against the planner's prediction (docs/planner.md 5). A step
// the build cannot run (a mode not in the trainer yet, an operator missing) is reported with its
// error instead. Prints one markdown section.
// Run: node dist/scripts/device-step.js [--device cuda] [--memory 80GiB] [--quick]
//   --quick: the tiny preset in fp32 instead of the published shapes (the CPU dry run).
import { parseArgs } from 'node:util';
import * as torch from '../src/torch/index.js';
import { BAGEL_7B_MOT, TINY, disposeBatch, type ModelConfig } from '../src/model/index.js';
import {
  formatBytes, measureStep, packShapeOf, parseBytes, planMemory, syntheticPack, trainingFlops,
  type PackShape, type Precision, type TrainMode,
} from '../src/plan/index.js';

const LORA = { r: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_proj_moe_gen', 'k_proj_moe_gen', 'v_proj_moe_gen', 'o_proj_moe_gen'] };

/** Matmul rate in FLOP/s of n x n products in `dtype` on `device` (median of 5 timed runs after one). */
function matmulPeak(device: string, dtype: torch.DType, n: number): number {
  return torch.scope(() => {
    const a = torch.randn([n, n], { device }).to(dtype);
    const b = torch.randn([n, n], { device }).to(dtype);
    const sync = (t: torch.Tensor): number => t.sum().item();
    sync(a.matmul(b));
    const times: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      sync(torch.scope(() => a.matmul(b)));
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((x, y) => x - y);
    return (2 * n ** 3) / times[2]!;
  });
}

interface StepCase { label: string; model: ModelConfig; mode: TrainMode; precision: Precision; checkpointing: boolean; textTokens: number; latentSide: number }

function packOf(c: StepCase): PackShape {
  return torch.scope(() => {
    const b = syntheticPack(c.model, c.textTokens, c.latentSide);
    const p = packShapeOf(b);
    disposeBatch(b);
    return p;
  });
}

/** The published shapes with the most decoder layers whose full bf16-mixed step the planner fits in `memory`. */
function layersThatFit(memory: number, c: Omit<StepCase, 'model'>): ModelConfig {
  let best = 1;
  for (let L = 1; L <= BAGEL_7B_MOT.llm.numLayers; L++) {
    const model = { ...BAGEL_7B_MOT, name: `bagel-7b-mot, ${L} layers`, llm: { ...BAGEL_7B_MOT.llm, numLayers: L } };
    const p = planMemory({ model, mode: c.mode, precision: c.precision, devices: 1, deviceMemory: memory, pack: packOf({ ...c, model }), activationCheckpointing: c.checkpointing, shard: 'none', reserve: 4 * 2 ** 30 });
    if (p.fits) best = L;
  }
  return { ...BAGEL_7B_MOT, name: `bagel-7b-mot shapes, ${best} of 28 layers`, llm: { ...BAGEL_7B_MOT.llm, numLayers: best } };
}

function runCase(c: StepCase, device: string, peak: number, memory: number): string {
  const pack = packOf(c);
  const plan = planMemory({ model: c.model, mode: c.mode, precision: c.precision, devices: 1, deviceMemory: memory, pack, activationCheckpointing: c.checkpointing, shard: 'none', lora: LORA });
  const head = `| ${c.label} | ${c.model.name} | ${c.mode} | ${c.precision} | ${c.checkpointing ? 'on' : 'off'} | ${pack.tokens}`;
  try {
    const m = measureStep({ model: c.model, mode: c.mode, precision: c.precision, activationCheckpointing: c.checkpointing, lora: LORA, textTokens: c.textTokens, latentSide: c.latentSide, device });
    const flops = trainingFlops(c.model, pack, c.mode);
    const s = m.stepMs / 1000;
    return `${head} | ${s.toFixed(3)} s | ${(pack.tokens / s).toFixed(0)} | ${(100 * flops / s / peak).toFixed(1)}% | ${formatBytes(m.peakBytes)} | ${formatBytes(plan.total)} | ${(plan.total / m.peakBytes).toFixed(3)} |`;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0]!.replace(/\|/g, '/').slice(0, 200);
    return `${head} | failed: ${msg} | - | - | - | ${formatBytes(plan.total)} | - |`;
  }
}

function main(): void {
  const { values } = parseArgs({ options: { device: { type: 'string', default: 'cuda' }, memory: { type: 'string', default: '80GiB' }, quick: { type: 'boolean', default: false } } });
  const device = values.device!;
  const memory = parseBytes(values.memory!);
  const quick = values.quick!;
  const dtype: torch.DType = quick ? 'float32' : 'bfloat16';
  const peak = matmulPeak(device, dtype, quick ? 512 : 8192);
  const sft = { label: 'SFT step', mode: 'full' as const, precision: (quick ? 'fp32' : 'bf16-mixed') as Precision, checkpointing: !quick, textTokens: quick ? 126 : 2046, latentSide: quick ? 4 : 32 };
  const cases: StepCase[] = [
    { ...sft, model: quick ? TINY : layersThatFit(memory, sft) },
    { label: 'LoRA step', model: quick ? TINY : BAGEL_7B_MOT, mode: 'lora', precision: sft.precision, checkpointing: !quick, textTokens: sft.textTokens, latentSide: sft.latentSide },
  ];
  const lines = [
    `## Training steps on ${device} (libtorch ${torch.version()})`,
    '',
    `- ${dtype} matmul peak (${quick ? 512 : 8192}^3, median of 5): ${(peak / 1e12).toFixed(2)} TFLOP/s; device memory given: ${formatBytes(memory)}`,
    '- random weights; one pack of text with CE then one generated image; one warm-up step, then one timed step; MFU = model FLOPs (docs/planner.md, trainingFlops) / step time / matmul peak',
    '',
    '| step | model | mode | precision | checkpointing | tokens | time per step | tokens/s | MFU | measured peak | planned peak | planned / measured |',
    '|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...cases.map((c) => runCase(c, device, peak, memory)),
  ];
  console.log(lines.join('\n'));
}

main();
