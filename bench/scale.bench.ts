// `npm run bench:scale`: memory and speed of a training step by precision mode and activation
// checkpointing, with the memory planner's prediction beside every measured peak (target: within
// 15%, docs/planner.md 5), and the planner's table for the published size.
//   (1) tiny (pack of 322 tokens: 256 text with CE + an 8x8-token generated image) and small
//       (514 tokens: 256 text + 16x16 latent tokens), full fine-tuning, for fp32 and bf16-mixed,
//       with and without checkpointing: peak allocated bytes over one step after a warm-up step
//       (src/plan measureStep; the CPU allocator's counter, weights and optimizer state included)
//       and the step time (the trainer's step: src/nn MixedPrecision, checkpointed layers).
//   (2) bagel-7b-mot: the planner's per-device breakdown for LoRA on 1 x 80 GiB and for full
//       fine-tuning on 8 x 80 GiB with full sharding (bf16-mixed, checkpointing; full fp32 on one
//       device for contrast), with the verdicts.
// Each measurement runs in its own child process (runPart) with all cores. BENCH_QUICK=1 uses
// short packs (smoke runs); BENCH_NO_README=1 prints without writing bench/README.md.
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cores, cpuName, machineLine, plain, readmeWanted, runPart, utcStamp, writeReadmeSection } from './common.js';

const self = fileURLToPath(import.meta.url);
const PART = process.env.BENCH_PART ?? 'main';
const THREADS = Number(process.env.BENCH_THREADS ?? cores);
const QUICK = process.env.BENCH_QUICK === '1';
const MiB = 1024 * 1024;

type Precision = 'fp32' | 'bf16-mixed';
interface Case { model: 'tiny' | 'small'; precision: Precision; checkpointing: boolean; textTokens: number; latentSide: number }
interface CaseResult {
  tokens: number;
  /** null when this build's trainer lacks the mode (why says so). */
  peak: number | null;
  stepMs: number | null;
  why: string | null;
  planned: number;
  plannedAt: string;
  load: [number, number];
  version: string;
}

const CASES: Case[] = (['tiny', 'small'] as const).flatMap((model) => (['fp32', 'bf16-mixed'] as const).flatMap((precision) => [false, true].map((checkpointing) => ({
  model, precision, checkpointing,
  textTokens: QUICK ? 30 : 254,
  latentSide: QUICK ? 4 : model === 'tiny' ? 8 : 16,
}))));

async function child(): Promise<void> {
  const torch = await import('../src/torch/index.js');
  const { modelConfig } = await import('../src/model/index.js');
  const { measureStep, planMemory } = await import('../src/plan/index.js');
  torch.setNumThreads(THREADS);
  const c = JSON.parse(process.env.BENCH_CASE!) as Case;
  const model = modelConfig(c.model);
  const l0 = loadavg()[0]!;
  const input = { model, mode: 'full' as const, precision: c.precision, activationCheckpointing: c.checkpointing };
  const m = measureStep({ ...input, textTokens: c.textTokens, latentSide: c.latentSide });
  const pack = m.pack;
  const plan = planMemory({ ...input, devices: 1, deviceMemory: 2 ** 40, pack, shard: 'none', optimizerKernel: m.optimizerKernel });
  const r: CaseResult = {
    tokens: pack.tokens, peak: m.peakBytes, stepMs: m.stepMs, why: null,
    planned: plan.total, plannedAt: plan.peak.name, load: [l0, loadavg()[0]!], version: torch.version(),
  };
  console.log(`RESULT ${JSON.stringify(r)}`);
}

async function publishedTable(): Promise<string[]> {
  const { BAGEL_7B_MOT } = await import('../src/model/index.js');
  const { SftConfigSchema } = await import('../src/train/index.js');
  const { planMemory, formatBytes, parseBytes } = await import('../src/plan/index.js');
  type PlanInput = import('../src/plan/index.js').PlanInput;
  const lora = SftConfigSchema.shape.lora.parse(undefined);
  const pack = { tokens: 8192, sampleLens: Array(8).fill(1024) as number[], ceTokens: 4096, latentTokens: 4096 };
  const base = { model: BAGEL_7B_MOT, deviceMemory: parseBytes('80GiB'), pack, reserve: parseBytes('2GiB'), lora: { r: lora.r, targets: lora.targets } };
  const rows: [string, PlanInput][] = [
    ['LoRA r 8, bf16-mixed, checkpointing, 1 x 80 GiB', { ...base, mode: 'lora', precision: 'bf16-mixed', devices: 1, shard: 'none', activationCheckpointing: true }],
    ['LoRA r 8, bf16-mixed, no checkpointing, 1 x 80 GiB', { ...base, mode: 'lora', precision: 'bf16-mixed', devices: 1, shard: 'none', activationCheckpointing: false }],
    ['full, bf16-mixed, checkpointing, 8 x 80 GiB, shard full', { ...base, mode: 'full', precision: 'bf16-mixed', devices: 8, shard: 'full', activationCheckpointing: true }],
    ['full, bf16, checkpointing, 8 x 80 GiB, shard full', { ...base, mode: 'full', precision: 'bf16', devices: 8, shard: 'full', activationCheckpointing: true }],
    ['full, fp32, no checkpointing, 1 x 80 GiB (today\'s default)', { ...base, mode: 'full', precision: 'fp32', devices: 1, shard: 'none', activationCheckpointing: false }],
  ];
  const f = (n: number): string => formatBytes(n);
  return [
    '| bagel-7b-mot, per device | weights | gradients | optimizer | activations | workspace | total | peak phase | verdict (2 GiB reserve) |',
    '|---|---:|---:|---:|---:|---:|---:|---|---|',
    ...rows.map(([label, input]) => {
      const p = planMemory(input);
      return `| ${label} | ${f(p.weights)} | ${f(p.peak.gradients)} | ${f(p.optimizer)} | ${f(p.peak.activations)} | ${f(p.peak.workspace)} | ${f(p.total)} | ${p.peak.name} | ${p.fits ? '**fits**' : 'does not fit'} |`;
    }),
  ];
}

async function main(): Promise<void> {
  const cpu = cpuName();
  const t0 = performance.now();
  const rs: CaseResult[] = [];
  for (const c of CASES) {
    process.stderr.write(`scale part: ${c.model} ${c.precision}${c.checkpointing ? ' checkpointed' : ''}\n`);
    rs.push(await runPart<CaseResult>(self, 'part', THREADS, { BENCH_CASE: JSON.stringify(c) }, 'scale part'));
  }
  const big = await publishedTable();
  const elapsed = (performance.now() - t0) / 1000;
  const within = rs.filter((r) => r.peak !== null).map((r) => r.planned / r.peak! - 1);
  const header = [
    `Measured ${utcStamp()} by \`npm run bench:scale\` (${elapsed.toFixed(0)} s, build excluded)${QUICK ? ', BENCH_QUICK=1 (short packs)' : ''}.`,
    '',
    machineLine(cpu, { memory: true, libtorch: rs[0]!.version }),
    `- threads: ${THREADS}; 1-minute load average during the parts: ${rs.map((r) => `${r.load[0].toFixed(1)} -> ${r.load[1].toFixed(1)}`).join(', ')} (above ${cores} the machine was shared)`,
    '- measured: peak allocated bytes over one training step after a warm-up step (weights, VAE, gradients, AdamW state and activations; the counting CPU allocator of src/torch `allocatedBytes`), step = trainingForward (0.25 CE + 1.0 MSE) + backward + clipGradNorm + AdamW on one synthetic sample (text with CE, then a generated image); random weights, full fine-tuning',
  ];
  const table = [
    '| model | precision | checkpointing | tokens | step time | measured peak | planned peak (phase) | planned / measured | within 15% |',
    '|---|---|---|---:|---:|---:|---:|---:|---|',
    ...rs.map((r, k) => {
      const c = CASES[k]!;
      const ratio = r.peak === null ? null : r.planned / r.peak;
      const measured = r.peak === null ? `not measured: ${r.why}` : `${(r.peak / MiB).toFixed(1)} MiB`;
      return `| ${c.model} | ${c.precision} | ${c.checkpointing ? 'on' : 'off'} | ${r.tokens} | ${r.stepMs === null ? '-' : `${(r.stepMs / 1000).toFixed(2)} s`} | ${measured} | ${(r.planned / MiB).toFixed(1)} MiB (${r.plannedAt}) | ${ratio === null ? '-' : ratio.toFixed(3)} | ${ratio === null ? '-' : Math.abs(ratio - 1) <= 0.15 ? 'yes' : 'NO'} |`;
    }),
  ];
  const notes = [
    within.length ? `Planner error over the measured rows: ${within.map((w) => `${(100 * w).toFixed(1)}%`).join(', ')}.` : 'No mode could be measured.',
    'The published size below: packs of 8,192 tokens per device in 8 samples of 1,024 (half with CE, half latent), LoRA at the SFT config\'s default rank and targets (q/k/v/o of both experts); formulas in docs/planner.md.',
  ];
  const out = [...header, '', ...table, '', ...big, '', ...notes.map((n) => `- ${n}`)];
  console.log('');
  for (const l of out) console.log(plain(l));
  if (readmeWanted() && !QUICK) {
    const readme = writeReadmeSection('scale', out,
      '## Memory by precision and checkpointing, and the planner (`npm run bench:scale`)\n\n`npm run bench:scale` (or, once built, `node dist/bench/scale.bench.js`) measures the peak memory and time of a training step on tiny and small and prints the memory planner\'s prediction beside each (docs/planner.md), then the planner\'s table for bagel-7b-mot; see the header comment of `bench/scale.bench.ts`.\n\n');
    console.log(`\ntable written to ${readme}`);
  }
}

if (PART === 'main') await main();
else await child();
