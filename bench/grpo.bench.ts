// `npm run bench:grpo`: Character-GRPO speed on the tiny config (docs/architecture.md "Performance targets"): rollouts per second and
// seconds per policy update, at the default GRPO settings (DEFAULT_GRPO: 15 steps, SDE window of
// 3 at noise level 1.3, text CFG 4, 72 window micro-steps per optimizer update, grad clip 1.0,
// AdamW over the generation expert). Model: TINY with random weights (llm2vae given small random
// weights, as the GRPO tests do), 64x64 px images (8x8 latent grid), the random tiny VAE.
//   - rollout: promptContexts + rollout() (14 transitions, each one decoder pass over the cond and uncond contexts for CFG) + VAE decode
//     to the image the reward scorers see; rewards not included.
//   - policy update: 72 micro-steps (windowLogProb with a graph, the clipped loss, backward) and
//     clip + AdamW: what one optimizer step of trainGrpo costs.
//   - versus PyTorch: the rollout (sampling steps only, no VAE decode) and the policy update
//     against the same two in Python PyTorch (bench/grpo_baseline.py, a persistent worker on the
//     TS model's weights, prompt, seeds and window starts), alternating one by one at each thread
//     count of BENCH_VERSUS_THREADS (default "1,2"; empty: none) with OMP_WAIT_POLICY=PASSIVE on
//     both; the bench fails when latents, log-probs, losses or gradient norms disagree.
//     BENCH_VERSUS_ROLLOUTS (default 9) and BENCH_VERSUS_UPDATES (default 3) per side, the first
//     of each a warm-up.
// Each thread count (BENCH_THREAD_COUNTS, default "1,<all cores>") runs in its own child process
// with OMP/OpenBLAS/MKL threads and set_num_threads fixed before libtorch loads. Writes its table
// into bench/README.md between the bench:grpo markers; BENCH_NO_README=1 prints only,
// BENCH_QUICK=1 is a short smoke run.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBaselineTorch } from './peer.js';
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
  const { AutoEncoder, TINY } = await import('../src/model/index.js');
  const { grpoBenchModel, tsRollout, tsUpdate } = await import('./grpo-step.js');
  type Rollout = import('../src/train/grpo-rollout.js').Rollout;
  torch.setNumThreads(THREADS);
  const l0 = loadavg()[0]!;
  const m = grpoBenchModel(TINY, QUICK ? { microStepsPerUpdate: 6 } : {});
  const vae = new AutoEncoder(structuredClone(TINY.vae));
  vae.eval();
  for (const p of vae.parameters()) p.requiresGrad_(false);
  let decodeMs = 0;
  let seed = 1;
  const one = (): Rollout => {
    const r = tsRollout(m, seed++, drawWindowStart(m.ro)).rollout;
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
  // Policy updates of microStepsPerUpdate micro-steps over the stored window steps; the first is warm-up.
  const steps = kept.flatMap((r) => r.window);
  const updates = QUICK ? 1 : 2;
  const updateS: number[] = [];
  for (let u = 0; u < updates + 1; u++) {
    const r = tsUpdate(m, steps, u, ADVANTAGES);
    if (u > 0) updateS.push(r.ms / 1000);
  }
  for (const r of kept) r.dispose();
  const perUpdate = m.settings.microStepsPerUpdate;
  const result: PartResult = {
    threads: THREADS, rollouts: n, rolloutMs, decodeMs: decodeMs / n, microMs: (median(updateS) * 1000) / perUpdate, updateS, perUpdate,
    params: m.params.reduce((a, p) => a + p.numel, 0), peakRss: process.resourceUsage().maxRSS * 1024, load: [l0, loadavg()[0]!], version: torch.version(),
  };
  m.dispose();
  vae.dispose();
  console.log('RESULT ' + JSON.stringify(result));
}

/** Window starts from the rollout settings, the same sequence for every part (a seeded draw). */
function drawWindowStart(ro: { windowSize: number; windowRange: [number, number] }): number {
  windowDraws = (windowDraws * 1103515245 + 12345) % 2147483648;
  const span = ro.windowRange[1] - ro.windowSize - ro.windowRange[0] + 1;
  return ro.windowRange[0] + (windowDraws % span);
}
let windowDraws = 7;

/** Advantages of the micro-steps, alternating in sign (the sign, not the size, is what the update sees). */
const ADVANTAGES = [-1, 1];

/**
 * The TS rollout and policy update against the same two in Python PyTorch (bench/grpo_baseline.py),
 * alternating one by one on the same weights, prompt, seeds and window starts.
 */
async function versus(): Promise<VersusResult> {
  const torch = await import('../src/torch/index.js');
  const { TINY } = await import('../src/model/index.js');
  const { grpoBenchModel, tsRollout, tsUpdate } = await import('./grpo-step.js');
  const { GrpoBaseline } = await import('./grpo-baseline.js');
  type Rollout = import('../src/train/grpo-rollout.js').Rollout;
  torch.setNumThreads(THREADS);
  const l0 = loadavg()[0]!;
  const m = grpoBenchModel(TINY, QUICK ? { microStepsPerUpdate: 6 } : {});
  const dir = mkdtempSync(join(tmpdir(), 'bench-grpo-'));
  const py = await GrpoBaseline.start(dir, m, THREADS, {} /* this part's thread environment is inherited */);
  const kept: Rollout[] = [];
  const res: VersusResult = {
    threads: THREADS, pyThreads: py.threads, pyVersion: py.version, rollouts: [], updates: [], latentDiff: 0, logProbDiff: 0,
    lossDiff: 0, gradNormRel: 0, load: [l0, 0], perUpdate: m.settings.microStepsPerUpdate,
  };
  try {
    const nRollouts = Number(process.env.BENCH_VERSUS_ROLLOUTS ?? (QUICK ? 3 : 9));
    for (let i = 0; i < nRollouts; i++) {
      const start = drawWindowStart(m.ro);
      const ts = tsRollout(m, 100 + i, start);
      kept.push(ts.rollout);
      const p = await py.rollout(100 + i, start);
      const latent = ts.rollout.tokens.dataSync() as Float32Array;
      latent.forEach((x, k) => (res.latentDiff = Math.max(res.latentDiff, Math.abs(x - p.latent[k]!))));
      ts.rollout.window.forEach((w, k) => (res.logProbDiff = Math.max(res.logProbDiff, Math.abs(w.logProb - p.logProbs[k]!))));
      res.rollouts.push([ts.ms, p.ms]);
    }
    const steps = kept.flatMap((r) => r.window);
    const nUpdates = Number(process.env.BENCH_VERSUS_UPDATES ?? (QUICK ? 2 : 3));
    for (let u = 0; u < nUpdates; u++) {
      const ts = tsUpdate(m, steps, u, ADVANTAGES);
      const p = await py.update(ADVANTAGES);
      ts.logProbs.forEach((x, k) => (res.logProbDiff = Math.max(res.logProbDiff, Math.abs(x - p.logProbs[k]!))));
      res.lossDiff = Math.max(res.lossDiff, Math.abs(ts.loss - p.loss));
      res.gradNormRel = Math.max(res.gradNormRel, Math.abs(ts.gradNorm - p.gradNorm) / p.gradNorm);
      res.updates.push([ts.ms, p.ms]);
      if (u === 0) res.firstUpdate = { ts: [ts.loss, ts.gradNorm], py: [p.loss, p.gradNorm] };
    }
  } finally {
    py.close();
    for (const r of kept) r.dispose();
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  res.load[1] = loadavg()[0]!;
  return res;
}

interface VersusResult {
  threads: number;
  pyThreads: number;
  pyVersion: string;
  /** [TS ms, PyTorch ms] per rollout (the first is warm-up) and per policy update (likewise). */
  rollouts: [number, number][];
  updates: [number, number][];
  latentDiff: number;
  logProbDiff: number;
  lossDiff: number;
  gradNormRel: number;
  firstUpdate?: { ts: [number, number]; py: [number, number] };
  perUpdate: number;
  load: [number, number];
}

async function main(): Promise<void> {
  const counts = threadCounts(`1,${cores}`);
  const cpu = cpuName();
  const t0 = now();
  const versusCounts = threadCounts('1,2', 'BENCH_VERSUS_THREADS');
  if (versusCounts.length) requireBaselineTorch(); // fail before the long parts
  const rs: PartResult[] = [];
  for (const n of counts) {
    process.stderr.write(`GRPO part, ${n} thread(s)\n`);
    rs.push(await runPart<PartResult>(self, 'part', n, {}, 'bench part'));
  }
  const vs: VersusResult[] = [];
  for (const n of versusCounts) {
    process.stderr.write(`TS vs PyTorch rollout and update, ${n} thread(s)\n`);
    vs.push(await runPart<VersusResult>(self, 'versus', n, { OMP_WAIT_POLICY: 'PASSIVE' }, 'bench part versus'));
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
    `A rollout (the prompt contexts, cond + empty uncond, are built once, as trainGrpo shares them across a prompt draw's k rollouts): 14 transitions, each one decoder pass over the cond and uncond contexts together (latentVelocities; text CFG at every step, as GRPO samples), 3 of them SDE steps storing the window, then the VAE decode; ${rs[0]!.rollouts} rollouts timed after one warm-up. Rewards are not included (their cost depends on the scorers).`,
    'A policy update: the micro-steps of one optimizer step of `trainGrpo` (each: CFG velocity with a graph through the generation expert, sdeStep log-prob of the stored sample, the clipped loss, backward), then grad clipping and AdamW; median of the timed updates after one warm-up update.',
  ];
  console.log('');
  for (const h of header.filter(Boolean)) console.log(plain(h));
  console.log('');
  for (const l of table) console.log(l);
  console.log('');
  for (const n of notes) console.log(plain(n));
  const versus = versusTable(vs);
  console.log('\nTS vs the same rollout and update in Python PyTorch (bench/grpo_baseline.py)');
  for (const l of versus.lines) console.log(plain(l));
  if (versus.mismatch) throw new Error(`bench:grpo: the TS and PyTorch sides disagree: ${versus.mismatch}`);
  if (readmeWanted()) {
    const readme = writeReadmeSection('grpo', [...header, '', ...table, '', ...notes.map((n) => `- ${n}`), '',
      '**TS vs the same rollout and policy update in Python PyTorch** (`bench/grpo_baseline.py`)', '', ...versus.lines],
      '## Character-GRPO (`npm run bench:grpo`)\n\n`npm run bench:grpo` (or, once built, `node dist/bench/grpo.bench.js`) measures rollouts per second and seconds per policy update on the tiny config, and the rollout and the policy update side by side with the same two written in plain Python PyTorch (`bench/grpo_baseline.py`, run as a persistent worker on the same weights, prompt, seeds and window starts, alternating one by one; the bench fails when the latents, log-probs, losses or gradient norms of the two sides disagree; `test/train/grpo-baseline.test.ts` checks the same agreement on the micro model); see the header comment of `bench/grpo.bench.ts` for what each figure covers and the settings (`BENCH_THREAD_COUNTS`, `BENCH_VERSUS_THREADS`, `BENCH_VERSUS_ROLLOUTS`, `BENCH_VERSUS_UPDATES`, `BENCH_NO_README=1`, `BENCH_QUICK=1`).\n\n');
    console.log(`\ntable written to ${readme}`);
  }
}

/**
 * The side-by-side table of the TS and PyTorch rollout and policy update (ms: median, min, max
 * over the timed repetitions, the first of each left out as warm-up) with how far the two sides'
 * latents, log-probs, losses and gradient norms differ; `mismatch` says what differs beyond the
 * tolerances (null when all agree).
 */
function versusTable(vs: VersusResult[]): { lines: string[]; mismatch: string | null } {
  if (!vs.length) return { lines: ['(not measured: BENCH_VERSUS_THREADS is empty)'], mismatch: null };
  const stat = (xs: number[]): string => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
  const lines = [
    '| threads | what | TS ms median (min-max) | PyTorch ms median (min-max) | TS / PyTorch | timed per side |',
    '|---:|---|---:|---:|---:|---:|',
  ];
  let mismatch: string | null = null;
  for (const v of vs) {
    for (const [what, xs] of [['rollout (14 transitions, CFG, no grad)', v.rollouts], [`policy update (${v.perUpdate} micro-steps + clip + AdamW)`, v.updates]] as const) {
      const timed = xs.slice(1);
      const t = timed.map((x) => x[0]);
      const p = timed.map((x) => x[1]);
      lines.push(`| ${v.threads} (Python ${v.pyThreads}) | ${what} | ${stat(t)} | ${stat(p)} | ${(median(t) / median(p)).toFixed(2)}x | ${timed.length} (+1 warm-up) |`);
    }
    const bad = v.latentDiff > 1e-4 ? `latents ${v.latentDiff}` : v.logProbDiff > 1e-5 ? `log-probs ${v.logProbDiff}` : v.lossDiff > 1e-5 ? `losses ${v.lossDiff}` : v.gradNormRel > 1e-4 ? `gradient norms (relative) ${v.gradNormRel}` : null;
    if (bad && !mismatch) mismatch = `${v.threads} thread(s): ${bad}`;
  }
  const v0 = vs[0]!;
  const f = v0.firstUpdate;
  lines.push('', `- agreement (largest difference over all rollouts and updates, per thread count): ${vs.map((v) => `${v.threads} thread(s): final latents ${v.latentDiff.toExponential(1)}, log-probs ${v.logProbDiff.toExponential(1)}, update losses ${v.lossDiff.toExponential(1)}, gradient norms ${v.gradNormRel.toExponential(1)} relative`).join('; ')} (tolerances 1e-4, 1e-5, 1e-5, 1e-4)${f ? `; first update: summed micro-step loss (advantages of both signs cancel) ${f.ts[0].toExponential(3)} / ${f.py[0].toExponential(3)}, gradient norm ${f.ts[1].toExponential(6)} / ${f.py[1].toExponential(6)} (TS / PyTorch)` : ''}`);
  lines.push(`- the same work on both sides: TINY, the same initial weights (the TS model's safetensors), prompt of 24 tokens prefilled once, rollouts seeded alike (torch.manual_seed: the same generator draws the same noise) with the same window starts, the updates over the same stored window steps with advantages alternating -1, +1; the sides alternate one by one; Python PyTorch ${v0.pyVersion} (\`/usr/bin/python3\`, the same libtorch and OpenBLAS), AdamW foreach=True; threads per side as in the first column, OMP_WAIT_POLICY=PASSIVE on both; 1-minute load average during the parts: ${vs.map((v) => `${v.load[0].toFixed(1)} -> ${v.load[1].toFixed(1)}`).join(', ')}`);
  return { lines, mismatch };
}

const DEFAULTS = '15 steps, window 3 in [0, 7], noise level 1.3, text CFG 4, 72 micro-steps per update, grad clip 1.0, AdamW';

if (PART === 'main') await main();
else if (PART === 'versus') console.log('RESULT ' + JSON.stringify(await versus()));
else await child();
