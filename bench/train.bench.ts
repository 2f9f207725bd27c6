// `npm run bench:train`: the training targets of docs/architecture.md ("Performance targets"),
// measured in one run on this machine:
//   (1) Unified-SFT training throughput (tokens/s) and model FLOPs utilisation (MFU) on the tiny
//       config, against the fp32 1024x1024 matmul peak measured in the same process with the
//       same threads; a second row with the `micro` test preset for contrast (launch-bound shapes);
//       and an op-level profile of where a step's time goes.
//   (1b) the same tiny SFT step in Python PyTorch (bench/sft_baseline.py, a persistent worker on the
//       TS model's weights and the TS step's packed batch), alternating with the TS step at each
//       thread count of BENCH_VERSUS_THREADS (default "1,2"), side by side with the losses of both
//       (the bench fails beyond torch.allclose's bound: atol 1e-7 + rtol 1e-6 at the first step,
//       1e-5 + 1e-5 later)
//       and one per-op profile table of both;
//   (2) memory: RSS and torch.memory() after 100 and after 1000 steps of `trainSft` itself
//       (run directory, metrics and checkpoints included; flat = no leak), and the peak RSS.
// Prints a table and writes it into bench/README.md between the bench:train markers (the
// engine section is left as it is).
//
// Each part runs in its own child process (this file with BENCH_PART set), so thread settings
// are fixed before libtorch loads and every peak RSS belongs to one part. The throughput part
// runs once per thread count of BENCH_THREAD_COUNTS.
//
// The throughput step is trainSft's step (src/train/sft.ts) without the run directory: the
// step's batch from SftData, zero grads, sftForwardBackward (0.25 CE + 1.0 MSE), a gradient for
// every trainable parameter, clip at 1.0, AdamW (0.9, 0.95, eps 1e-15). The frozen VAE is a
// random tiny AutoEncoder (its weights do not change the step's cost), so no VAE stage runs.
//
// Settings (environment): BENCH_THREAD_COUNTS (default "<all cores>,1"), BENCH_VERSUS_THREADS (default
// "1,2"; empty: no PyTorch comparison), BENCH_VERSUS_STEPS (timed steps per side, default 20), BENCH_MEM_THREADS
// (default 1), BENCH_LEAK_STEPS (default 1000), BENCH_NO_README=1 (print only), BENCH_QUICK=1
// (fewer steps, for a smoke run), BENCH_OPTIM_KERNEL (the TS AdamW's `kernel`: auto (default), fused
// or foreach, the multi-tensor operators of before the fused step, for comparison).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blasLibs, cores, cpuName, machineLine, median, plain, readmeWanted, runPart, threadCounts, utcStamp, writeReadmeSection } from './common.js';
import { requireBaselineTorch } from './peer.js';

const self = fileURLToPath(import.meta.url);

const PART = process.env.BENCH_PART ?? 'main';
const THREADS = Number(process.env.BENCH_THREADS ?? cores);
const QUICK = process.env.BENCH_QUICK === '1';
/** The TS AdamW's kernel (src/nn/optim.ts OptimKernel; checked here, before libtorch loads). */
const OPTIM_KERNEL = ((k: string): 'auto' | 'fused' | 'foreach' => {
  if (k === 'auto' || k === 'fused' || k === 'foreach') return k;
  throw new Error(`BENCH_OPTIM_KERNEL must be auto, fused or foreach, got '${k}'`);
})(process.env.BENCH_OPTIM_KERNEL ?? 'auto');
const LEAK_STEPS = Number(process.env.BENCH_LEAK_STEPS ?? (QUICK ? 200 : 1000));
const MFU_TARGET = 0.35;
/** Timed steps per side of the PyTorch comparison, the profiled steps, and how far the losses may differ. */
const VERSUS_STEPS = Number(process.env.BENCH_VERSUS_STEPS ?? 20);
const VERSUS_PROF_STEPS = QUICK ? 1 : 3;
/** As torch.allclose, |TS - PyTorch| <= atol + rtol |PyTorch|: the first step is the same
 * computation on both sides; later steps may drift a little, since AdamW's eps of 1e-15 turns
 * last-bit differences of small gradients into full steps (and the repeated pack's loss falls to
 * a few hundredths, where a relative bound alone is too tight). */
const FIRST_LOSS_TOLERANCE = { atol: 1e-7, rtol: 1e-6 };
const LOSS_TOLERANCE = { atol: 1e-5, rtol: 1e-5 };

// ---------------------------------------------------------------- helpers (all parts)
const MiB = 1024 * 1024;
const rss = (): number => process.memoryUsage.rss();
const peakRss = (): number => process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
const now = (): number => performance.now();
const load1 = (): number => loadavg()[0]!;

// ---------------------------------------------------------------- result types
interface OpStat { name: string; ms: number; calls: number }
interface Phase { ms: number; nativeMs: number; calls: number }
interface ThroughputRow {
  label: string;
  desc: string;
  threads: number;
  params: number;
  steps: number;
  stepMs: number;
  /** tokens counted by packing (trainSft's tokens/s) and the packed sequence length */
  tokens: number;
  seqLen: number;
  tokPerS: number;
  gflopPerStep: number;
  denseShare: number;
  achieved: number;
  mfu: number;
  prof: {
    stepMs: number;
    phases: Record<'data' | 'forward' | 'backward' | 'optim', Phase>;
    masksMs: number;
    top: OpStat[];
    linears: number;
    replayMs: number;
    replayGflops: number;
    /** [rows, in, out] of each forward linear (not reported) */
    linearShapes: [number, number, number][];
  };
}
interface ThroughputResult {
  threads: number;
  peak: number;
  peakRuns: number[];
  launchUs: number;
  rows: ThroughputRow[];
  peakRss: number;
  load: [number, number];
  seconds: number;
  version: string;
  blas: string;
  mem: [number, number];
}
type StepAnswer = import('./sft-baseline.js').StepAnswer;
interface VersusResult {
  threads: number;
  pyThreads: number;
  pyVersion: string;
  /** steps before the timed ones (their losses are compared too) */
  warm: number;
  ts: StepAnswer[];
  py: StepAnswer[];
  prof: ThroughputRow['prof'];
  pyProf: import('./sft-baseline.js').BaselineProfile;
  pack: { tokens: number; samples: number; vitImages: number; vaeImages: number };
  load: [number, number];
  ompWait: string;
}
interface MemPoint { step: number; rss: number; tensors: number; bytes: number; heap: number }
interface MemoryResult {
  threads: number;
  points: MemPoint[];
  steps: number;
  seconds: number;
  stepMs: number;
  peakRss: number;
  load: [number, number];
  config: string;
}

// ================================================================ child parts
async function child(): Promise<void> {
  // The parent set OMP/OpenBLAS/MKL threads in our environment before libtorch loads.
  const torch = await import('../src/torch/index.js');
  const { native } = await import('../src/torch/native.js');
  const { AdamW } = await import('../src/nn/index.js');
  const { AutoEncoder, TINY, disposeBatch, packedMasks } = await import('../src/model/index.js');
  const { loadSampleCharacter } = await import('../src/data/index.js');
  const { sftBenchModel, stepFlops } = await import('./sft-step.js');
  const { tinySftConfig } = await import('../src/train/sft-config.js');
  const { sftForwardBackward, trainSft } = await import('../src/train/sft.js');
  type SftBenchModel = import('./sft-step.js').SftBenchModel;
  const { saveVae } = await import('../src/train/vae-stage.js');
  type Tensor = InstanceType<typeof torch.Tensor>;
  type ModelConfig = import('../src/model/index.js').ModelConfig;
  type SftConfig = import('../src/train/sft-config.js').SftConfig;
  type PackedBatch = import('../src/model/index.js').PackedBatch;
  type SftBatch = import('../src/train/sft-data.js').SftBatch;
  type SftLossResult = import('../src/train/sft.js').SftLossResult;
  torch.setNumThreads(THREADS);
  const { character } = loadSampleCharacter();

  // ---------------------------------------------------------------- matmul peak
  /** GFLOPS of an [n, n] x [n, n] fp32 matmul (result disposed): median of reps of ~`seconds`. */
  function matmulGflops(n: number, reps: number, seconds: number): number {
    const a = torch.randn([n, n]);
    const b = torch.randn([n, n]);
    for (let i = 0; i < 3; i++) a.matmul(b).dispose();
    let t0 = now();
    a.matmul(b).dispose();
    const iters = Math.max(1, Math.floor(seconds / Math.max(1e-6, (now() - t0) / 1000)));
    const rates: number[] = [];
    for (let r = 0; r < reps; r++) {
      t0 = now();
      for (let i = 0; i < iters; i++) a.matmul(b).dispose();
      rates.push((2 * n ** 3 * iters) / ((now() - t0) / 1000) / 1e9);
    }
    a.dispose();
    b.dispose();
    return median(rates);
  }

  /** Cost of one tiny op from TS (1-element add, result disposed): the per-op floor. */
  function tinyOpUs(): number {
    const a = torch.ones([1]);
    const b = torch.ones([1]);
    for (let i = 0; i < 2000; i++) a.add(b).dispose();
    const n = 20000;
    const t0 = now();
    for (let i = 0; i < n; i++) a.add(b).dispose();
    const us = ((now() - t0) * 1000) / n;
    a.dispose();
    b.dispose();
    return us;
  }

  // ---------------------------------------------------------------- the SFT setup and step
  interface Setup {
    mc: ModelConfig;
    config: SftConfig;
    data: SftBenchModel['data'];
    model: SftBenchModel['model'];
    trainable: Tensor[];
    opt: InstanceType<typeof AdamW>;
    params: number;
    dispose(): void;
  }

  /** The config's data, tokenizer, model and optimizer; `llm` overrides the LLM sizes. */
  async function setup(config: SftConfig, llm: Partial<ModelConfig['llm']> = {}): Promise<Setup> {
    const m = await sftBenchModel(character, config, llm);
    const o = config.optim;
    const opt = new AdamW(m.trainable, { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay, kernel: OPTIM_KERNEL });
    const params = m.trainable.reduce((n, p) => n + p.numel, 0);
    return {
      mc: m.mc, config, data: m.data, model: m.model, trainable: m.trainable, opt, params,
      dispose: () => {
        opt.dispose();
        m.dispose();
      },
    };
  }

  interface StepTimes { data: number; fwdBwd: number; optim: number; total: number; tokens: number; seqLen: number; flops: [number, number]; loss: { loss: number; ce: number; mse: number } }
  type PhaseName = 'data' | 'forward' | 'optim';
  let phase: PhaseName = 'data';
  /** Called with each step's batch before it is freed (the profile times the masks on it). */
  let onBatch: ((b: PackedBatch) => void) | null = null;

  /**
   * One trainSft step (sft.ts trainStep) at a global step index, timed by phase; on `fixed`
   * packs (not freed) instead of the index's when given (the PyTorch comparison repeats one pack).
   */
  function step(s: Setup, index: number, fixed: SftBatch[] | null = null): StepTimes {
    return torch.scope(() => {
      const t0 = now();
      phase = 'data';
      const bs = fixed ?? s.data.stepBatches(index, { packsPerRank: s.config.data.packsPerRank });
      const t1 = now();
      let t2: number;
      let loss: SftLossResult;
      try {
        phase = 'forward';
        s.opt.zeroGrad();
        loss = sftForwardBackward(s.model, bs, { ceWeight: s.config.ceWeight, mseWeight: s.config.mseWeight, timestepShift: s.config.timestepShift });
        t2 = now();
        phase = 'optim';
        // ensureGradients (sft.ts): zeros where the batch did not reach a parameter
        torch.noGrad(() => {
          for (const p of s.trainable) if (p.grad === null) p.grad = torch.ops.zeros_like(p);
        });
        s.opt.clipAndStep(s.config.optim.gradClip); // as sft.ts: clipGradNorm + step in one
      } catch (e) {
        for (const b of fixed ? [] : bs) {
          disposeBatch(b.batch);
          b.noise?.dispose();
        }
        throw e;
      }
      const t3 = now();
      const flops: [number, number] = [0, 0];
      let tokens = 0;
      let seqLen = 0;
      for (const b of bs) {
        onBatch?.(b.batch);
        const [total, dense] = stepFlops(s.mc, b.batch);
        flops[0] += total;
        flops[1] += dense;
        tokens += b.tokens;
        seqLen += b.batch.length;
        if (fixed) continue;
        disposeBatch(b.batch);
        b.noise?.dispose();
      }
      return { data: t1 - t0, fwdBwd: t2 - t1, optim: t3 - t2, total: t3 - t0, tokens, seqLen, flops, loss: { loss: loss.loss, ce: loss.ce, mse: loss.mse } };
    });
  }

  // ---------------------------------------------------------------- op-level profile
  /** Runs `steps` steps with native.call and native.backward wrapped by timers. */
  function profile(s: Setup, first: number, steps: number, fixed: SftBatch[] | null = null): ThroughputRow['prof'] {
    // the fused optimizer's calls (native/src/fused_optim.cc) are not operators: negative ids
    const fusedCalls = ['adamwStep', 'gradNorm2', 'scaleTensors'] as const;
    const names = new Map<number, string>(fusedCalls.map((n, i) => [-1 - i, `${n} (fused)`]));
    const nameOf = (id: number): string => {
      let n = names.get(id);
      if (n === undefined) names.set(id, (n = native.opName(id).replace(/^aten::/, '').replace(/\..*$/, '')));
      return n;
    };
    const byOp = new Map<number, { ms: number; calls: number }>();
    const phases: Record<'data' | 'forward' | 'backward' | 'optim', Phase> = {
      data: { ms: 0, nativeMs: 0, calls: 0 }, forward: { ms: 0, nativeMs: 0, calls: 0 },
      backward: { ms: 0, nativeMs: 0, calls: 0 }, optim: { ms: 0, nativeMs: 0, calls: 0 },
    };
    const linearShapes: [number, number, number][] = [];
    let recordLinears = false;
    let linearId = -1;
    const call0 = native.call;
    const backward0 = native.backward;
    const count = (op: number, dt: number): void => {
      const e = byOp.get(op);
      if (e) {
        e.ms += dt;
        e.calls++;
      } else byOp.set(op, { ms: dt, calls: 1 });
      const ph = phases[phase];
      ph.nativeMs += dt;
      ph.calls++;
    };
    native.call = (op: number, ...args: unknown[]): unknown => {
      const t0 = now();
      const r = call0(op, ...args);
      count(op, now() - t0);
      if (recordLinears && phase === 'forward') {
        if (linearId < 0 && nameOf(op) === 'linear') linearId = op;
        if (op === linearId) {
          const x = native.shape(args[0] as number);
          const w = native.shape(args[1] as number);
          linearShapes.push([x.slice(0, -1).reduce((a, v) => a * v, 1), w[1]!, w[0]!]);
        }
      }
      return r;
    };
    const fused0 = fusedCalls.map((n) => native[n]) as ((...a: unknown[]) => unknown)[];
    fusedCalls.forEach((n, i) => {
      (native as unknown as Record<string, unknown>)[n] = (...args: unknown[]): unknown => {
        const t0 = now();
        const r = fused0[i]!(...args);
        count(-1 - i, now() - t0);
        return r;
      };
    });
    native.backward = (...args: Parameters<typeof backward0>): void => {
      const t0 = now();
      backward0(...args);
      const dt = now() - t0;
      phases.backward.ms += dt;
      phases.backward.nativeMs += dt;
      phases.backward.calls++;
    };
    let total = 0;
    let masksMs = 0;
    onBatch = (b) => {
      const saved = native.call;
      native.call = call0; // the mask timing is not part of the step's profile
      try {
        torch.noGrad(() => {
          const t0 = now();
          const a = packedMasks(b);
          masksMs += now() - t0;
          for (const m of a) m.dispose();
        });
      } finally {
        native.call = saved;
      }
    };
    try {
      for (let k = 0; k < steps; k++) {
        recordLinears = k === 0;
        const r = step(s, first + k, fixed);
        total += r.total;
        phases.data.ms += r.data;
        phases.forward.ms += r.fwdBwd; // backward is taken out below
        phases.optim.ms += r.optim;
      }
    } finally {
      native.call = call0;
      native.backward = backward0;
      fusedCalls.forEach((n, i) => {
        (native as unknown as Record<string, unknown>)[n] = fused0[i];
      });
      onBatch = null;
    }
    phases.forward.ms -= phases.backward.ms;
    for (const p of Object.values(phases)) {
      p.ms /= steps;
      p.nativeMs /= steps;
      p.calls /= steps;
    }
    const merged = new Map<string, { ms: number; calls: number }>();
    for (const [id, e] of byOp) {
      const n = nameOf(id);
      const o = merged.get(n) ?? { ms: 0, calls: 0 };
      o.ms += e.ms / steps;
      o.calls += e.calls / steps;
      merged.set(n, o);
    }
    const top = [...merged].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms).slice(0, 24);
    const rp = replayLinears(linearShapes, QUICK ? 2 : 5);
    return {
      stepMs: total / steps, phases, masksMs: masksMs / steps, top,
      linears: linearShapes.length, replayMs: rp.ms, replayGflops: rp.gflops, linearShapes,
    };
  }

  /**
   * The step's matrix products alone: every forward linear [rows, in] x [in, out] and, for the
   * backward, its two products (grad input [rows, out] x [out, in], grad weight [out, rows] x
   * [rows, in]), each a bare matmul on random tensors. Returns ms per step and GFLOPS.
   */
  function replayLinears(linears: [number, number, number][], reps: number): { ms: number; gflops: number; flops: number } {
    const shapes: [number, number, number][] = [];
    for (const [m, k, n] of linears) shapes.push([m, k, n], [m, n, k], [n, m, k]);
    const mats = shapes.map(([m, k, n]) => [torch.randn([m, k]), torch.randn([k, n])] as const);
    const flops = shapes.reduce((f, [m, k, n]) => f + 2 * m * k * n, 0);
    const run = (): void => {
      for (const [a, b] of mats) a.matmul(b).dispose();
    };
    run();
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = now();
      run();
      times.push(now() - t0);
    }
    for (const [a, b] of mats) {
      a.dispose();
      b.dispose();
    }
    const ms = median(times);
    return { ms, gflops: flops / (ms / 1000) / 1e9, flops };
  }

  async function throughputRow(peak: number, label: string, config: SftConfig, llm: Partial<ModelConfig['llm']>, o: { warm: number; maxSteps: number; seconds: number; profSteps: number }): Promise<ThroughputRow> {
    process.stderr.write(`  [threads ${THREADS}] ${label}: setup`);
    const s = await setup(config, llm);
    let at = 0;
    process.stderr.write(`, warm-up ${o.warm}`);
    for (let k = 0; k < o.warm; k++) step(s, at++);
    const rs: StepTimes[] = [];
    const t0 = now();
    while (rs.length < o.maxSteps && (rs.length < 3 || now() - t0 < o.seconds * 1000)) rs.push(step(s, at++));
    process.stderr.write(`, ${rs.length} timed steps, profile ${o.profSteps}`);
    const prof = profile(s, at, o.profSteps);
    process.stderr.write('\n');
    const sum = (f: (r: StepTimes) => number): number => rs.reduce((a, r) => a + f(r), 0);
    const secs = sum((r) => r.total) / 1000;
    const flops = sum((r) => r.flops[0]);
    const { llm: l, vit } = s.mc;
    const row: ThroughputRow = {
      label,
      desc: `LLM ${l.numLayers} layers x ${l.hiddenSize} (heads ${l.numHeads}/${l.numKvHeads} x ${l.headDim}, MLP ${l.intermediateSize}, vocab ${l.vocabSize}), ViT ${vit.numLayers} x ${vit.hiddenSize}; images ${config.data.imageSize} px, ViT ${config.data.vitImageSize} px; packs of ~${config.data.packing.expectedNumTokens} (max ${config.data.packing.maxNumTokens}) tokens`,
      threads: THREADS,
      params: s.params,
      steps: rs.length,
      stepMs: (secs * 1000) / rs.length,
      tokens: sum((r) => r.tokens) / rs.length,
      seqLen: sum((r) => r.seqLen) / rs.length,
      tokPerS: sum((r) => r.tokens) / secs,
      gflopPerStep: flops / rs.length / 1e9,
      denseShare: sum((r) => r.flops[1]) / flops,
      achieved: flops / secs / 1e9,
      mfu: flops / secs / 1e9 / peak,
      prof: { ...prof, linearShapes: [] },
    };
    s.dispose();
    return row;
  }
  // ---------------------------------------------------------------- TS step vs the PyTorch step
  /**
   * The tiny SFT step on one fixed pack, TS and bench/sft_baseline.py alternating step by step
   * from the same weights (saved before the first step) with the same thread settings; the
   * losses must agree (versusTables says how closely). Then a per-op profile of both sides.
   */
  async function versus(): Promise<VersusResult> {
    const { SftBaseline } = await import('./sft-baseline.js');
    const l0 = load1();
    const s = await setup(tinySftConfig());
    const fixed = s.data.stepBatches(0, { packsPerRank: s.config.data.packsPerRank });
    if (fixed.length !== 1) throw new Error(`versus: the PyTorch baseline takes one pack per step, the config has ${fixed.length}`);
    const dir = mkdtempSync(join(tmpdir(), 'bench-sft-baseline-'));
    const env = { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? '' };
    const py = await SftBaseline.start(dir, s.model, s.mc, fixed[0]!, s.config, THREADS, env);
    try {
      const warm = 2;
      const steps = QUICK ? 4 : VERSUS_STEPS;
      const ts: StepAnswer[] = [];
      const pt: StepAnswer[] = [];
      process.stderr.write(`  [threads ${THREADS}] TS / PyTorch steps`);
      for (let k = 0; k < warm + steps; k++) {
        const r = step(s, k, fixed);
        ts.push({ ms: r.total, ...r.loss });
        pt.push(await py.step());
      }
      process.stderr.write(', profile');
      const prof = profile(s, warm + steps, VERSUS_PROF_STEPS, fixed);
      const pyProf = await py.profile(VERSUS_PROF_STEPS);
      process.stderr.write('\n');
      const b = fixed[0]!.batch;
      return {
        threads: THREADS, pyThreads: py.threads, pyVersion: py.version, warm, ts, py: pt, prof, pyProf,
        pack: { tokens: b.length, samples: b.sampleLens.length, vitImages: b.vit?.lens.length ?? 0, vaeImages: b.vae?.images.length ?? 0 },
        load: [l0, load1()], ompWait: env.OMP_WAIT_POLICY,
      };
    } finally {
      py.close();
      for (const b of fixed) {
        disposeBatch(b.batch);
        b.noise?.dispose();
      }
      s.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  if (PART === 'throughput') {
    const t0 = now();
    const l0 = load1();
    const mem0 = torch.memory().tensors;
    process.stderr.write(`  [threads ${THREADS}] matmul peak`);
    const peakRuns = [matmulGflops(1024, QUICK ? 3 : 5, 0.3)];
    process.stderr.write(` ${peakRuns[0]!.toFixed(1)} GFLOPS\n`);
    const launchUs = tinyOpUs();
    const tiny = tinySftConfig();
    const rows: ThroughputRow[] = [];
    rows.push(await throughputRow(peakRuns[0]!, 'tiny', tiny, {}, { warm: 2, maxSteps: QUICK ? 4 : 40, seconds: QUICK ? 3 : 15, profSteps: QUICK ? 1 : 2 }));
    rows.push(await throughputRow(peakRuns[0]!, 'micro (test preset)', tinySftConfig({ model: 'micro' }), {}, { warm: 3, maxSteps: QUICK ? 5 : 40, seconds: QUICK ? 3 : 8, profSteps: 1 }));
    // the peak again at the end (the machine may be shared): MFU uses the higher of the two
    peakRuns.push(matmulGflops(1024, QUICK ? 3 : 5, 0.3));
    const peak = Math.max(...peakRuns);
    for (const r of rows) r.mfu = r.achieved / peak;
    const result: ThroughputResult = {
      threads: torch.getNumThreads(), peak, peakRuns, launchUs, rows, peakRss: peakRss(), load: [l0, load1()],
      seconds: (now() - t0) / 1000, version: torch.version(), blas: blasLibs(), mem: [mem0, torch.memory().tensors],
    };
    console.log('RESULT ' + JSON.stringify(result));
  } else if (PART === 'versus') {
    console.log('RESULT ' + JSON.stringify(await versus()));
  } else if (PART === 'memory') {
    // trainSft itself, with a random frozen VAE written first (no VAE stage), small images and
    // packs so that 1000 steps take well under 2 minutes; checkpoints every 500 steps.
    const work = mkdtempSync(join(tmpdir(), 'bench-train-'));
    const l0 = load1();
    try {
      torch.manualSeed(0);
      const vae = new AutoEncoder(structuredClone(TINY.vae));
      const vaePath = join(work, 'ae.safetensors');
      saveVae(vaePath, vae);
      vae.dispose();
      const cfg = {
        totalSteps: LEAK_STEPS, saveEvery: Math.max(1, LEAK_STEPS / 2), tokenizerVocabSize: 512, threads: THREADS,
        vae: { path: vaePath }, sampling: { every: 0, numTimesteps: 2, maxTokens: 2 },
        data: { imageSize: 32, vitImageSize: 28, packing: { expectedNumTokens: 320, maxNumTokens: 512, maxNumTokensPerSample: 512, preferBufferBefore: 512, maxBufferSize: 50 } },
      };
      const points: MemPoint[] = [];
      let next = 100;
      let tFirst = 0;
      let tLast = 0;
      let stepsTimed = 0;
      // The progress bar (terminal mode, redrawn at most every 100 ms, always at the last step)
      // is our hook between steps: the first redraw at or after each hundredth step records
      // RSS and the live tensors there (outside any step's scope).
      const stream = {
        isTTY: true,
        columns: 200,
        write: (chunk: string): boolean => {
          const m = /(\d+)\/(\d+)/.exec(chunk);
          if (!m) return true;
          const k = Number(m[1]);
          if (k >= 1 && tFirst === 0) tFirst = now();
          if (k >= next || (k === LEAK_STEPS && points.at(-1)?.step !== k)) {
            const mem = torch.memory();
            points.push({ step: k, rss: rss(), tensors: mem.tensors, bytes: mem.bytes, heap: process.memoryUsage().heapUsed });
            while (next <= k) next += 100;
          }
          if (k === LEAK_STEPS) {
            tLast = now();
            stepsTimed = k - 1;
          }
          return true;
        },
      };
      const t0 = now();
      await trainSft(cfg, { runDir: join(work, 'run'), progress: stream, handleSigint: false });
      const result: MemoryResult = {
        threads: THREADS, points, steps: LEAK_STEPS, seconds: (now() - t0) / 1000, stepMs: (tLast - tFirst) / Math.max(1, stepsTimed),
        peakRss: peakRss(), load: [l0, load1()],
        config: 'tiny model; 32 px images, 28 px ViT images, packs of ~320 (max 512) tokens, vocabulary 512; checkpoints every ' + cfg.saveEvery + ' steps',
      };
      console.log('RESULT ' + JSON.stringify(result));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  } else throw new Error(`unknown BENCH_PART ${PART}`);
}


// ================================================================ parent: run the parts, report
async function main(): Promise<void> {
  const counts = threadCounts(`${cores},1`);
  const memThreads = Number(process.env.BENCH_MEM_THREADS ?? 1);
  const cpu = cpuName();
  const t0 = now();
  process.stderr.write(`machine: ${cpu}, ${cores} cores; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  const versusCounts = threadCounts('1,2', 'BENCH_VERSUS_THREADS');
  if (versusCounts.length) requireBaselineTorch(); // fail before the long parts
  const tp: ThroughputResult[] = [];
  for (const n of counts) {
    process.stderr.write(`throughput, ${n} thread(s)\n`);
    tp.push(await runPart<ThroughputResult>(self, 'throughput', n));
  }
  const vs: VersusResult[] = [];
  for (const n of versusCounts) {
    process.stderr.write(`TS step vs PyTorch step, ${n} thread(s)\n`);
    vs.push(await runPart<VersusResult>(self, 'versus', n, { OMP_WAIT_POLICY: 'PASSIVE' }));
  }
  process.stderr.write(`memory: ${LEAK_STEPS} trainSft steps, ${memThreads} thread(s)\n`);
  const mem = await runPart<MemoryResult>(self, 'memory', memThreads);
  const elapsed = (now() - t0) / 1000;
  report(cpu, tp, vs, mem, elapsed);
}

function report(cpu: string, tp: ThroughputResult[], vs: VersusResult[], mem: MemoryResult, elapsed: number): void {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const when = utcStamp();
  const first = tp[0]!;
  const header = [
    `Measured ${when} by \`npm run bench:train\` (${elapsed.toFixed(0)} s of benchmark, build excluded).`,
    '',
    machineLine(cpu),
    `- libtorch ${first.version}; BLAS loaded by libtorch: ${first.blas}`,
    `- threads: ${tp.map((r) => `${r.threads} (throughput part)`).join(', ')}, ${mem.threads} (memory part); OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and set_num_threads equal within each part`,
    `- 1-minute load average during the parts: ${[...tp.map((r) => r.load), mem.load].map(([a, b]) => `${a.toFixed(1)} -> ${b.toFixed(1)}`).join(', ')} (${cores} cores; above ${cores} the machine was shared with other work and every figure below is slower than on an idle machine)`,
  ];
  // ---- throughput table
  const tTable = [
    '| config | threads | tokens/step (packed seq.) | ms/step | tokens/s | model GFLOP/step (dense share) | achieved GFLOPS | matmul peak GFLOPS | MFU | target | pass |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const r of tp) {
    for (const row of r.rows) {
      tTable.push(`| ${row.label} | ${r.threads} | ${row.tokens.toFixed(0)} (${row.seqLen.toFixed(0)}) | ${row.stepMs.toFixed(1)} | ${row.tokPerS.toFixed(0)} | ${row.gflopPerStep.toFixed(3)} (${pct(row.denseShare)}) | ${row.achieved.toFixed(2)} | ${r.peak.toFixed(1)} | ${pct(row.mfu)} | >= 35% | ${row.mfu >= MFU_TARGET ? 'pass' : 'FAIL'} |`);
    }
  }
  const configs = tp[0]!.rows.map((row) => `- ${row.label}: ${row.desc}; ${(row.params / 1e6).toFixed(2)} M trainable parameters`);
  const peaks = tp.map((r) => `${r.threads} thread(s): ${r.peakRuns.map((x) => x.toFixed(1)).join(' / ')} GFLOPS (start / end of the part; the higher is the peak)`);
  // ---- profile table
  const pTable = [
    '| config | threads | profiled ms/step | data | forward (native ops / calls) | of which mask build | backward (libtorch) | clip + AdamW (native ops / calls) | step GEMMs alone | top forward+optimizer ops (ms, calls) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of tp) {
    for (const row of r.rows) {
      const p = row.prof;
      const ph = p.phases;
      pTable.push(`| ${row.label} | ${r.threads} | ${p.stepMs.toFixed(1)} | ${ph.data.ms.toFixed(1)} | ${ph.forward.ms.toFixed(1)} (${ph.forward.nativeMs.toFixed(1)} / ${ph.forward.calls.toFixed(0)}) | ${p.masksMs.toFixed(1)} | ${ph.backward.ms.toFixed(1)} | ${ph.optim.ms.toFixed(1)} (${ph.optim.nativeMs.toFixed(1)} / ${ph.optim.calls.toFixed(0)}) | ${p.replayMs.toFixed(1)} ms at ${p.replayGflops.toFixed(1)} GFLOPS (${p.linears} linears x 3) | ${p.top.slice(0, 5).map((o) => `${o.name} ${o.ms.toFixed(1)} (${o.calls.toFixed(0)})`).join(', ')} |`);
    }
  }
  // ---- memory table
  const at = (k: number): MemPoint => mem.points.find((p) => p.step >= k) ?? mem.points.at(-1)!;
  const p100 = at(100);
  const pEnd = mem.points.at(-1)!;
  const rssGrowth = pEnd.rss - p100.rss;
  const flat = pEnd.tensors === p100.tensors && pEnd.bytes === p100.bytes && rssGrowth <= Math.max(16 * MiB, 0.05 * p100.rss);
  const mTable = [
    '| after step | RSS | torch.memory() tensors | torch.memory() bytes | JS heap used |',
    '|---:|---:|---:|---:|---:|',
    ...[p100, pEnd].map((p) => `| ${p.step} | ${mib(p.rss)} | ${p.tensors} | ${(p.bytes / MiB).toFixed(2)} MiB (${p.bytes}) | ${mib(p.heap)} |`),
  ];
  const trend = mem.points.map((p) => `${p.step}: ${(p.rss / MiB).toFixed(0)}`).join(', ');
  const lead = tp.find((r) => r.threads === Math.max(...tp.map((x) => x.threads)))!;
  const tinyRows = tp.map((r) => r.rows[0]!);
  const notes = [
    `MFU target (>= 35% of the measured matmul peak) on tiny: ${tinyRows.some((r) => r.mfu >= MFU_TARGET) ? 'met' : 'not met'} (${tp.map((r) => `${pct(r.rows[0]!.mfu)} at ${r.threads} thread(s)`).join(', ')}).`,
    `Matmul peak (fp32 1024x1024, same process and threads as the rows): ${peaks.join('; ')}. Cost of one 1-element add from TS in the same processes: ${tp.map((r) => `${r.launchUs.toFixed(2)} µs (${r.threads} thread(s))`).join(', ')}.`,
    `Mask build (packedMasks, flat bytes per sample): ${tinyRows.map((r) => `${r.prof.masksMs.toFixed(2)} ms`).join(' / ')} per tiny step.`,
    `Memory (${mem.steps} steps of \`trainSft\`, ${mem.config}; ${mem.seconds.toFixed(0)} s, ${mem.stepMs.toFixed(1)} ms/step): ${flat ? 'flat' : 'NOT flat'} (live tensors and bytes ${pEnd.tensors === p100.tensors && pEnd.bytes === p100.bytes ? 'identical' : 'differ'} at steps ${p100.step} and ${pEnd.step}; RSS ${rssGrowth >= 0 ? '+' : ''}${(rssGrowth / MiB).toFixed(1)} MiB, limit max(16 MiB, 5%)). Peak RSS: ${mib(mem.peakRss)} (memory part), ${tp.map((r) => `${mib(r.peakRss)} (throughput part, ${r.threads} thread(s))`).join(', ')}.`,
    `RSS (MiB) by step: ${trend}.`,
    `Live tensors left by the throughput parts: ${tp.map((r) => `${r.mem[0]} -> ${r.mem[1]}`).join(', ')}.`,
  ];
  void lead;

  // ---- print
  console.log('');
  for (const h of header.filter(Boolean)) console.log(plain(h));
  console.log('\nThroughput and MFU');
  for (const l of tTable) console.log(l);
  console.log('');
  for (const c of configs) console.log(plain(c));
  console.log('\nWhere a step goes (ms per step, one profiled run; see README for the columns)');
  for (const l of pTable) console.log(l);
  const versus = versusTables(vs);
  console.log('\nTS step vs the same step in Python PyTorch (bench/sft_baseline.py)');
  for (const l of versus.lines) console.log(plain(l));
  console.log('\nMemory');
  for (const l of mTable) console.log(l);
  console.log('');
  for (const n of notes) console.log(plain(n));

  if (versus.mismatch) throw new Error(`bench:train: the TS and PyTorch losses differ by more than atol + rtol x |PyTorch| (first step ${FIRST_LOSS_TOLERANCE.atol} + ${FIRST_LOSS_TOLERANCE.rtol}, later steps ${LOSS_TOLERANCE.atol} + ${LOSS_TOLERANCE.rtol}): ${versus.mismatch}`);
  if (readmeWanted()) {
    const readme = writeReadmeSection('train', [
      ...header, '', '**Throughput and MFU**', '', ...tTable, '', ...configs, '', '**Where a step goes** (ms per step)', '', ...pTable, '',
      '**TS step vs the same step in Python PyTorch** (`bench/sft_baseline.py`)', '', ...versus.lines, '',
      '**Memory**', '', ...mTable, '', ...notes.map((n) => `- ${n}`),
    ]);
    console.log(`\ntable written to ${readme}`);
  }
}

/**
 * The side-by-side table of the TS and PyTorch steps (ms per step over the timed steps: median,
 * min, max), the losses of both, and one per-op table of both sides' profiles. `mismatch` names
 * the first step whose losses differ by more than the tolerance (FIRST_LOSS_TOLERANCE at the
 * first step, LOSS_TOLERANCE after it; null when all agree).
 */
function versusTables(vs: VersusResult[]): { lines: string[]; mismatch: string | null } {
  if (!vs.length) return { lines: ['(not measured: BENCH_VERSUS_THREADS is empty)'], mismatch: null };
  const stat = (xs: number[]): string => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
  const lines = [
    '| threads | TS ms/step median (min-max) | PyTorch ms/step median (min-max) | TS / PyTorch | steps per side | losses, first and last step: TS / PyTorch | max loss difference |',
    '|---:|---:|---:|---:|---:|---|---:|',
  ];
  let mismatch: string | null = null;
  for (const v of vs) {
    const t = v.ts.slice(v.warm).map((r) => r.ms);
    const p = v.py.slice(v.warm).map((r) => r.ms);
    let worst = 0;
    v.ts.forEach((r, k) => {
      const tol = k === 0 ? FIRST_LOSS_TOLERANCE : LOSS_TOLERANCE;
      const pairs: [number, number][] = [[r.loss, v.py[k]!.loss], [r.ce, v.py[k]!.ce], [r.mse, v.py[k]!.mse]];
      worst = Math.max(worst, ...pairs.map(([a, b]) => Math.abs(a - b)));
      if (pairs.some(([a, b]) => Math.abs(a - b) > tol.atol + tol.rtol * Math.abs(b)) && !mismatch) mismatch = `${v.threads} thread(s), step ${k + 1}: TS loss ${r.loss} (CE ${r.ce}, MSE ${r.mse}), PyTorch ${v.py[k]!.loss} (CE ${v.py[k]!.ce}, MSE ${v.py[k]!.mse})`;
    });
    const f = (r: StepAnswer): string => r.loss.toFixed(7);
    lines.push(`| ${v.threads} (Python ${v.pyThreads}) | ${stat(t)} | ${stat(p)} | ${(median(t) / median(p)).toFixed(2)}x | ${t.length} (+${v.warm} warm-up) | ${f(v.ts[0]!)} / ${f(v.py[0]!)}, ${f(v.ts.at(-1)!)} / ${f(v.py.at(-1)!)} | ${worst.toExponential(1)} |`);
  }
  const v0 = vs[0]!;
  lines.push('', `- the same work on both sides: one fixed pack (${v0.pack.tokens} tokens: ${v0.pack.samples} samples, ${v0.pack.vaeImages} latent image(s), ${v0.pack.vitImages} ViT image(s)) repeated every step, the same initial weights (the TS model's safetensors), flow noise and timesteps; forward with expert routing and packed masks, 0.25 CE + 1.0 MSE, backward, clip 1.0, AdamW (0.9, 0.95, eps 1e-15; Python foreach=True, the TS update with kernel '${OPTIM_KERNEL}'); the sides alternate step by step; no data preparation on either side`);
  lines.push(`- Python PyTorch ${v0.pyVersion} (\`/usr/bin/python3\`, the same libtorch and OpenBLAS); threads per side as in the first column (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, set_num_threads, OMP_WAIT_POLICY=${v0.ompWait} on both); 1-minute load average during the parts: ${vs.map((v) => `${v.load[0].toFixed(1)} -> ${v.load[1].toFixed(1)}`).join(', ')}`);
  // ---- per-op profile of both sides
  const cols = vs.flatMap((v) => [`TS ${v.threads}t`, `PyTorch ${v.threads}t`]);
  const ph = (v: VersusResult): [number, number][] => [
    [v.prof.phases.forward.ms, v.pyProf.phases.forward], [v.prof.phases.backward.ms, v.pyProf.phases.backward], [v.prof.phases.optim.ms, v.pyProf.phases.optim],
  ];
  const opsOf = (v: VersusResult): [Map<string, OpStat>, Map<string, OpStat>] => {
    const py = new Map<string, OpStat>();
    for (const o of v.pyProf.ops) {
      const e = py.get(o.name) ?? { name: o.name, ms: 0, calls: 0 };
      e.ms += o.ms;
      e.calls += o.calls;
      py.set(o.name, e);
    }
    return [new Map(v.prof.top.map((o) => [o.name, o])), py];
  };
  const maps = vs.map(opsOf);
  const [ts0, py0] = maps[0]!;
  const names = [...new Set([...ts0.keys(), ...py0.keys()])]
    .sort((a, b) => Math.max(ts0.get(b)?.ms ?? 0, py0.get(b)?.ms ?? 0) - Math.max(ts0.get(a)?.ms ?? 0, py0.get(a)?.ms ?? 0)).slice(0, 16);
  const cell = (o: OpStat | undefined): string => (o ? `${o.ms.toFixed(1)} (${o.calls.toFixed(0)})` : '-');
  lines.push('', `Per-op profile, ms per step (calls per step), ${VERSUS_PROF_STEPS} profiled step(s) per side; ops: each top-level op of the forward and of clip + AdamW, inclusive of what it calls (TS: every native call timed; PyTorch: torch.autograd.profiler, top-level ops under each phase), backward as one phase (the TS side cannot split libtorch's backward):`, '');
  lines.push(`| phase / op | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`);
  ['forward (phase)', 'backward (phase)', 'clip + AdamW (phase)'].forEach((label, i) => {
    lines.push(`| ${label} | ${vs.map((v) => ph(v)[i]!.map((x) => x.toFixed(1)).join(' | ')).join(' | ')} |`);
  });
  for (const n of names) lines.push(`| ${n} | ${maps.map(([t, p]) => `${cell(t.get(n))} | ${cell(p.get(n))}`).join(' | ')} |`);
  return { lines, mismatch };
}

if (PART === 'main') await main();
else await child();
