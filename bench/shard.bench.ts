// `npm run bench:shard`: sharded data parallel (docs/sharding.md) on this CPU, 2 processes x 1
// thread over Gloo on 127.0.0.1, plain data parallel (`none`: ExactAllReduce), `grad` and `full`
// (ShardedModel), full fine-tuning in fp32 of one synthetic pack per rank (src/plan syntheticPack:
// 254 text tokens + a 16x16-token image): the median step time after a warm-up step and the peak
// RSS per rank (the larger of the two ranks), with the planner's per-device prediction
// (src/plan planMemory, devices 2) beside each. Targets at 2 ranks: full <= 0.6x the per-rank
// memory of none, step time <= 1.3x.
//   BENCH_SHARD_PRESET=small (default) | tiny: tiny is the smaller option for loaded machines.
//   BENCH_STEPS (default 2) measured steps; BENCH_NO_README=1 prints without writing bench/README.md.
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuName, machineLine, readmeWanted, utcStamp, writeReadmeSection } from './common.js';

const self = fileURLToPath(import.meta.url);
const PRESET = (process.env.BENCH_SHARD_PRESET ?? 'small') as 'small' | 'tiny';
const STEPS = Number(process.env.BENCH_STEPS ?? 2);
const MODES = ['none', 'grad', 'full'] as const;
const MiB = 1024 * 1024;
type Mode = (typeof MODES)[number];

async function rank(): Promise<void> {
  const torch = await import('../src/torch/index.js');
  const { Bagel, modelConfig, totalLoss, trainingForward, disposeBatch } = await import('../src/model/index.js');
  const { AdamW, clipGradNorm } = await import('../src/nn/index.js');
  const { syntheticPack, packShapeOf, planMemory, stepOptimizerKernel } = await import('../src/plan/index.js');
  const { ShardedModel, ExactAllReduce } = await import('../src/train/shard/index.js');
  torch.setNumThreads(1);
  const mode = process.env.BENCH_MODE as Mode;
  const group = torch.ProcessGroup.fromEnv({ timeoutMs: 600_000 });
  const c = modelConfig(PRESET);
  torch.manualSeed(0);
  const model = new Bagel(c);
  model.train();
  const batch = syntheticPack(c, 254, 16);
  const sharded = mode === 'none' ? null : new ShardedModel(model, { mode, group, precision: 'fp32' });
  const params = sharded ? sharded.params : model.parameters().filter((p) => p.requiresGrad);
  const exact = sharded ? null : new ExactAllReduce(params, group);
  const opt = new AdamW(params, { lr: 1e-5 });
  const step = (): void => torch.scope(() => {
    opt.zeroGrad();
    sharded?.zeroGrad();
    sharded?.beforeForward();
    totalLoss(trainingForward(model, batch)).backward();
    if (sharded) {
      sharded.collectGradients();
      sharded.clipGradNorm(1.0);
    } else {
      exact!.reducePack();
      exact!.finish();
      clipGradNorm(params, 1.0);
    }
    opt.step();
    sharded?.syncModel();
  });
  step();
  const times: number[] = [];
  for (let k = 0; k < STEPS; k++) {
    group.barrier();
    const t0 = performance.now();
    step();
    group.barrier();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const plan = planMemory({ model: c, mode: 'full', precision: 'fp32', activationCheckpointing: false, devices: 2, deviceMemory: 2 ** 40, pack: packShapeOf(batch), shard: mode, optimizerKernel: stepOptimizerKernel('cpu', 'fp32') });
  const r = { rank: group.rank, stepMs: times[times.length >> 1]!, rss: process.resourceUsage().maxRSS * 1024, planned: plan.total, load: loadavg()[0]! };
  console.log(`RESULT ${JSON.stringify(r)}`);
  disposeBatch(batch);
  group.destroy();
}

async function main(): Promise<void> {
  const { launch } = await import('../src/torch/index.js');
  const rows: { mode: Mode; stepMs: number; rss: number; planned: number; load: number }[] = [];
  for (const mode of MODES) {
    const results: { stepMs: number; rss: number; planned: number; load: number }[] = [];
    const lines: string[] = [];
    const res = await launch({
      nproc: 2, script: self, env: { BENCH_PART: 'rank', BENCH_MODE: mode, OMP_NUM_THREADS: '1' },
      onLine: (_r, _s, l) => (l.startsWith('RESULT ') ? results.push(JSON.parse(l.slice(7))) : lines.push(l)),
    });
    if (!res.ok || results.length !== 2) throw new Error(`bench:shard ${mode}: ${res.error}\n${lines.join('\n')}`);
    rows.push({ mode, stepMs: Math.max(...results.map((x) => x.stepMs)), rss: Math.max(...results.map((x) => x.rss)), planned: results[0]!.planned, load: results[0]!.load });
    console.log(`${mode}: step ${rows.at(-1)!.stepMs.toFixed(0)} ms, peak RSS ${(rows.at(-1)!.rss / MiB).toFixed(0)} MiB per rank, planned ${(rows.at(-1)!.planned / MiB).toFixed(0)} MiB`);
  }
  const none = rows[0]!;
  const body = [
    `- ${utcStamp()}; \`${PRESET}\` preset, full fine-tuning in fp32, 2 processes x 1 thread (Gloo, 127.0.0.1), one synthetic pack per rank, median of ${STEPS} steps after a warm-up`,
    machineLine(cpuName()),
    '- the machine is shared (other work runs beside the bench): step times are noisy; load average at the end of each run in the last column',
    '',
    '| shard | step ms | x none | peak RSS per rank (MiB) | x none | planner, per device (MiB) | load |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.mode} | ${r.stepMs.toFixed(0)} | ${(r.stepMs / none.stepMs).toFixed(2)} | ${(r.rss / MiB).toFixed(0)} | ${(r.rss / none.rss).toFixed(2)} | ${(r.planned / MiB).toFixed(0)} | ${r.load.toFixed(1)} |`),
    '',
    '- targets at 2 ranks: `full` at most 0.6x the per-rank memory of `none`, step time at most 1.3x. Peak RSS includes the process (Node, libtorch, the activations); the planner predicts tensor bytes only.',
  ];
  console.log(body.join('\n'));
  if (readmeWanted()) console.log(`wrote ${writeReadmeSection('shard', body, '## Sharded data parallel (`npm run bench:shard`)\n')}`);
}

if (process.env.BENCH_PART === 'rank') await rank();
else await main();
