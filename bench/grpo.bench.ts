// `npm run bench:grpo`: Character-GRPO speed on the tiny config (docs/architecture.md "Performance targets"): rollouts per second and
// seconds per policy update, at the default GRPO settings (DEFAULT_GRPO: 15 steps, SDE window of
// 3 at noise level 1.3, text CFG 4, 72 window micro-steps per optimizer update, grad clip 1.0,
// AdamW over the generation expert). Model: TINY with random weights (llm2vae given small random
// weights, as the GRPO tests do), 64x64 px images (8x8 latent grid), the random tiny VAE.
//   - rollout: promptContexts + rollout() (14 transitions, 2 forwards each with CFG) + VAE decode
//     to the image the reward scorers see; rewards not included.
//   - policy update: 72 micro-steps (windowLogProb with a graph, the clipped loss, backward) and
//     clip + AdamW: what one optimizer step of trainGrpo costs.
// Each thread count (BENCH_THREAD_COUNTS, default "1,<all cores>") runs in its own child process
// with OMP/OpenBLAS/MKL threads and set_num_threads fixed before libtorch loads. Writes its table
// into bench/README.md between the bench:grpo markers; BENCH_NO_README=1 prints only,
// BENCH_QUICK=1 is a short smoke run.
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cores, cpuName, machineLine, median, plain, readmeWanted, runPart, threadCounts, threadsPerPartLine, utcStamp, writeReadmeSection } from './common.js';

const self = fileURLToPath(import.meta.url);
const PART = process.env.BENCH_PART ?? 'main';
const THREADS = Number(process.env.BENCH_THREADS ?? cores);
const QUICK = process.env.BENCH_QUICK === '1';
const now = (): number => performance.now();
const MiB = 1024 * 1024;

interface PartResult {
  threads: number;
  rollouts: number;
  rolloutMs: number[];
  decodeMs: number;
  microMs: number;
  updateS: number[];
  perUpdate: number;
  params: number;
  peakRss: number;
  load: [number, number];
  version: string;
}

async function child(): Promise<void> {
  const torch = await import('../src/torch/index.js');
  const { AdamW, clipGradNorm } = await import('../src/nn/index.js');
  const { AutoEncoder, Bagel, TINY, latentDownsample } = await import('../src/model/index.js');
  const { promptContexts, rollout, windowLogProb } = await import('../src/train/grpo-rollout.js');
  const { clippedPolicyLoss } = await import('../src/train/grpo-objective.js');
  const { DEFAULT_GRPO, GRPO_PRESET_FIELDS, generationExpertParameters } = await import('../src/train/grpo.js');
  type Rollout = import('../src/train/grpo-rollout.js').Rollout;
  torch.setNumThreads(THREADS);
  const l0 = loadavg()[0]!;
  // The reference preset's values (the published settings).
  const cfg = { ...DEFAULT_GRPO, ...GRPO_PRESET_FIELDS.reference };
  torch.manualSeed(0);
  const model = new Bagel(TINY);
  torch.noGrad(() => torch.scope(() => {
    const w = model.llm2vae!.weight;
    w.copy_(torch.randn(w.shape as number[]).mul(0.05));
  }));
  const vae = new AutoEncoder(structuredClone(TINY.vae));
  vae.eval();
  for (const p of vae.parameters()) p.requiresGrad_(false);
  const grid = 64 / latentDownsample(TINY);
  const params = generationExpertParameters(model);
  const opt = new AdamW(params, { lr: cfg.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: cfg.weightDecay });
  const prompt = Array.from({ length: 24 }, (_, i) => 10 + i);
  const ctx = promptContexts(model, prompt);
  const ro = { grid, numSteps: cfg.numSteps, timestepShift: cfg.timestepShift, cfgTextScale: cfg.cfgTextScale, noiseLevel: cfg.noiseLevel, windowSize: cfg.windowSize, windowRange: cfg.windowRange };
  let decodeMs = 0;
  const one = (): Rollout => {
    const r = rollout(model, ctx, ro);
    const t = now();
    torch.noGrad(() => torch.scope(() => vae.decodeToUnit(r.latent.unsqueeze(0)).dataSync()));
    decodeMs += now() - t;
    return r;
  };
  one().dispose();
  decodeMs = 0;
  const n = QUICK ? 4 : 24;
  const kept: Rollout[] = [];
  const rolloutMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = now();
    kept.push(one());
    rolloutMs.push(now() - t);
  }
  // Policy updates of cfg.microStepsPerUpdate micro-steps over the stored window steps.
  const steps = kept.flatMap((r) => r.window);
  const perUpdate = QUICK ? 6 : cfg.microStepsPerUpdate;
  const updates = QUICK ? 1 : 2;
  const updateS: number[] = [];
  let microTotal = 0;
  let micro = 0;
  for (let u = 0; u < updates + 1; u++) {
    const t = now();
    for (let m = 0; m < perUpdate; m++) {
      const step = steps[(u * perUpdate + m) % steps.length]!;
      const tm = now();
      torch.scope(() => {
        const { logProb } = windowLogProb(model, ctx, step, grid, cfg.cfgTextScale);
        const l = clippedPolicyLoss(logProb, step.logProb, m % 2 ? 1 : -1, { lo: cfg.clipRange, hi: cfg.clipRange });
        l.loss.div(perUpdate).backward();
      });
      if (u > 0) {
        microTotal += now() - tm;
        micro++;
      }
    }
    clipGradNorm(params, GRPO_PRESET_FIELDS.project.maxGradNorm ?? Number.POSITIVE_INFINITY); // the project preset's clip (the reference has none)
    opt.step();
    opt.zeroGrad();
    if (u > 0) updateS.push((now() - t) / 1000); // the first update is warm-up
  }
  for (const r of kept) r.dispose();
  ctx.dispose();
  opt.dispose();
  const result: PartResult = {
    threads: THREADS, rollouts: n, rolloutMs, decodeMs: decodeMs / n, microMs: microTotal / micro, updateS, perUpdate,
    params: params.reduce((a, p) => a + p.numel, 0), peakRss: process.resourceUsage().maxRSS * 1024, load: [l0, loadavg()[0]!], version: torch.version(),
  };
  model.dispose();
  vae.dispose();
  console.log('RESULT ' + JSON.stringify(result));
}

async function main(): Promise<void> {
  const counts = threadCounts(`1,${cores}`);
  const cpu = cpuName();
  const t0 = now();
  const rs: PartResult[] = [];
  for (const n of counts) {
    process.stderr.write(`GRPO part, ${n} thread(s)\n`);
    rs.push(await runPart<PartResult>(self, 'part', n, {}, 'bench part'));
  }
  const elapsed = (now() - t0) / 1000;
  const when = utcStamp();
  const header = [
    `Measured ${when} by \`npm run bench:grpo\` (${elapsed.toFixed(0)} s, build excluded).`,
    '',
    machineLine(cpu, { memory: true, libtorch: rs[0]!.version }),
    threadsPerPartLine(counts, rs.map((r) => r.load)),
    `- settings: TINY (LLM 4 x 256), random weights, 64x64 px (8x8 latent grid), DEFAULT_GRPO: ${DEFAULTS}; ${rs[0]!.params} trainable generation-expert parameters`,
  ];
  const table = [
    '| threads | rollouts/s | ms per rollout (median; of which VAE decode) | s per policy update | ms per micro-step (log-prob with graph + backward) | peak RSS |',
    '|---:|---:|---:|---:|---:|---:|',
    ...rs.map((r) => {
      const ms = median(r.rolloutMs);
      return `| ${r.threads} | ${(1000 * r.rollouts / r.rolloutMs.reduce((a, b) => a + b, 0)).toFixed(2)} | ${ms.toFixed(1)} (${r.decodeMs.toFixed(1)}) | ${median(r.updateS).toFixed(2)} (${r.perUpdate} micro-steps + clip + AdamW) | ${r.microMs.toFixed(1)} | ${(r.peakRss / MiB).toFixed(1)} MiB |`;
    }),
  ];
  const notes = [
    `A rollout (the prompt contexts, cond + empty uncond, are built once, as trainGrpo shares them across a prompt draw's k rollouts): 14 transitions with 2 forwards each (text CFG at every step, as GRPO samples), 3 of them SDE steps storing the window, then the VAE decode; ${rs[0]!.rollouts} rollouts timed after one warm-up. Rewards are not included (their cost depends on the scorers).`,
    'A policy update: the micro-steps of one optimizer step of `trainGrpo` (each: CFG velocity with a graph through the generation expert, sdeStep log-prob of the stored sample, the clipped loss, backward), then grad clipping and AdamW; median of the timed updates after one warm-up update.',
  ];
  console.log('');
  for (const h of header.filter(Boolean)) console.log(plain(h));
  console.log('');
  for (const l of table) console.log(l);
  console.log('');
  for (const n of notes) console.log(plain(n));
  if (readmeWanted()) {
    const readme = writeReadmeSection('grpo', [...header, '', ...table, '', ...notes.map((n) => `- ${n}`)],
      '## Character-GRPO (`npm run bench:grpo`)\n\n`npm run bench:grpo` (or, once built, `node dist/bench/grpo.bench.js`) measures rollouts per second and seconds per policy update on the tiny config; see the header comment of `bench/grpo.bench.ts` for what each figure covers and the settings (`BENCH_THREAD_COUNTS`, `BENCH_NO_README=1`, `BENCH_QUICK=1`).\n\n');
    console.log(`\ntable written to ${readme}`);
  }
}

const DEFAULTS = '15 steps, window 3 in [0, 7], noise level 1.3, text CFG 4, 72 micro-steps per update, grad clip 1.0, AdamW';

if (PART === 'main') await main();
else await child();
