// `npm run bench:engine`: the engine's performance targets (docs/architecture.md, "Performance
// targets"), each measured side by side with its baseline in one run:
//   (a) fp32 1024x1024 matmul GFLOPS, TS vs C++ calling libtorch directly (bench/matmul_baseline.cc)
//   (b) one 1-element add, and one 5-op autograd chain with backward, TS vs Python PyTorch
//   (c) one training step of a 2-layer MLP with AdamW, TS vs Python PyTorch (bench/engine_baseline.py)
// Prints a table and writes it into bench/README.md (between the bench:engine markers).
//
// Settings (environment): BENCH_THREADS (default: all cores), BENCH_REPS (timed repetitions,
// default 9), BENCH_NO_README=1 (print only). Thread variables are set before libtorch loads, and the same
// values are given to the C++ and Python subprocesses.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { blasLibs, cores, cpuName, machineLine, median, plain, readmeWanted, root, threadEnv, utcStamp, writeReadmeSection } from './common.js';
import { Peer } from './peer.js';

const benchSrc = join(root, 'bench');
const outDir = join(root, 'dist', 'bench');

const THREADS = Number(process.env.BENCH_THREADS ?? cores);
const REPS = Number(process.env.BENCH_REPS ?? 9);
const sideEnv = {
  ...threadEnv(THREADS),
  // The sides take turns on the same cores: an idle side's OpenMP workers must sleep, not spin
  // (GNU OpenMP spins by default and would steal the cores from the side being measured).
  OMP_WAIT_POLICY: 'PASSIVE',
};
// Before libtorch (and its BLAS and OpenMP) load: process.env writes reach the C environment.
Object.assign(process.env, sideEnv);
const torch = await import('../src/torch/index.js');
const { ops } = torch;
type Tensor = InstanceType<typeof torch.Tensor>;

// ---------------------------------------------------------------- configuration
const cfg = {
  threads: THREADS,
  reps: REPS,
  matmulN: 1024,
  addIters: 100_000,
  chainIters: 10_000,
  chainNumel: 1,
  seed: 0,
  mlpBatch: 64,
  mlpIn: 512,
  mlpHidden: 512,
  mlpOut: 10,
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 1e-2,
  checkSteps: 5,
  mlpIters: 5,
  mlpWarmup: 3,
};

// ---------------------------------------------------------------- baselines (subprocesses)
function buildCpp(): string {
  const src = join(benchSrc, 'matmul_baseline.cc');
  // one binary per libtorch: dist/ is shared with the libtorch 2.6 root (scripts/libtorch2.sh)
  const bin = join(outDir, `matmul_baseline-${torch.version()}`);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(outDir, { recursive: true });
  // Same libtorch as the addon (native/config.cjs honours LIBTORCH); Debian paths by default.
  const config = join(root, 'native', 'config.cjs');
  const ask = (what: string): string[] => execFileSync('node', [config, what], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
  const includes = ask('include').map((d) => `-I${d}`);
  const libs = ask('libs').filter((l) => l.startsWith('-L') || l.startsWith('-Wl,'));
  const abi = ask('defines').filter((d) => d.startsWith('_GLIBCXX_USE_CXX11_ABI')).map((d) => `-D${d}`);
  const args = ['-O2', '-std=c++17', ...abi, ...includes, src, '-o', bin, ...libs, '-ltorch', '-ltorch_cpu', '-lc10'];
  process.stderr.write(`compiling ${src} -> ${bin}\n`);
  execFileSync('g++', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  return bin;
}

/** The TS side of (a): returns a run(iters) that times a.matmul(b) (result disposed). */
function tsMatmul(): { run: (iters: number) => void; dispose: () => void } {
  torch.manualSeed(0);
  const n = cfg.matmulN;
  const a = torch.randn([n, n]);
  const b = torch.randn([n, n]);
  return {
    run: (iters) => {
      for (let k = 0; k < iters; k++) a.matmul(b).dispose();
    },
    dispose: () => {
      a.dispose();
      b.dispose();
    },
  };
}

/** Seconds per iteration of run(iters). */
function once(run: (iters: number) => void, iters: number): number {
  const t0 = performance.now();
  run(iters);
  return (performance.now() - t0) / 1000 / iters;
}

/**
 * Alternates repetitions of the baseline and of each TS variant (the order flips every
 * repetition), after warmup; returns seconds per iteration for each repetition.
 */
async function compare(
  baseline: (iters: number) => Promise<number>,
  variants: Record<string, (iters: number) => void>,
  iters: number,
  warmup: number,
): Promise<{ base: number[]; ts: Record<string, number[]> }> {
  const base: number[] = [];
  const ts: Record<string, number[]> = {};
  for (const k of Object.keys(variants)) ts[k] = [];
  for (let r = 0; r < warmup + cfg.reps; r++) {
    const keep = r >= warmup;
    const runTs = (): void => {
      for (const [k, run] of Object.entries(variants)) {
        const s = once(run, iters);
        if (keep) ts[k]!.push(s);
      }
    };
    if (r % 2) runTs();
    const b = await baseline(iters);
    if (keep) base.push(b);
    if (!(r % 2)) runTs();
  }
  return { base, ts };
}

// ---------------------------------------------------------------- TS side (b)
function addCase(): { dispose: () => void; run: (n: number) => void; runScope: (n: number) => void } {
  const a = torch.ones([1]);
  const b = torch.ones([1]);
  return {
    run: (n) => {
      for (let k = 0; k < n; k++) a.add(b).dispose();
    },
    runScope: (n) => {
      for (let k = 0; k < n; k += ADDS_PER_SCOPE) {
        torch.scope(() => {
          for (let j = 0; j < ADDS_PER_SCOPE; j++) a.add(b);
        });
      }
    },
    dispose: () => {
      a.dispose();
      b.dispose();
    },
  };
}
const ADDS_PER_SCOPE = 100;

function chainCase(): { dispose: () => void; run: (n: number) => void; runScope: (n: number) => void } {
  const x = torch.randn([cfg.chainNumel]).requiresGrad_();
  const w = torch.randn([cfg.chainNumel]);
  const b = torch.randn([cfg.chainNumel]);
  return {
    // y = ((x*w + b).tanh() * 2).sum(); y.backward(); intermediates disposed one by one.
    run: (n) => {
      for (let k = 0; k < n; k++) {
        const m = x.mul(w);
        const s = m.add(b);
        const t = s.tanh();
        const u = t.mul(2);
        const y = u.sum();
        y.backward();
        m.dispose();
        s.dispose();
        t.dispose();
        u.dispose();
        y.dispose();
        x.grad = null;
      }
    },
    // The same chain, one torch.scope per step freeing the intermediates.
    runScope: (n) => {
      for (let k = 0; k < n; k++) {
        torch.scope(() => {
          x.mul(w).add(b).tanh().mul(2).sum().backward();
        });
        x.grad = null;
      }
    },
    dispose: () => {
      for (const t of [x, w, b]) t.dispose();
    },
  };
}

// ---------------------------------------------------------------- TS side (c): MLP + AdamW
/** AdamW with PyTorch 1.13's single-tensor math (torch.optim.AdamW(foreach=False)). */
class AdamW {
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  private t = 0;
  constructor(
    private readonly params: Tensor[],
    private readonly o: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number },
  ) {
    this.m = params.map((p) => ops.zeros_like(p).keep());
    this.v = params.map((p) => ops.zeros_like(p).keep());
  }
  step(): void {
    const { lr, beta1, beta2, eps, weightDecay } = this.o;
    this.t += 1; // one step count for all parameters (PyTorch keeps one per parameter, all equal)
    const stepSize = lr / (1 - beta1 ** this.t);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.t);
    torch.noGrad(() => {
      for (let i = 0; i < this.params.length; i++) {
        const p = this.params[i]!;
        const g = p.grad;
        if (g === null) continue;
        const m = this.m[i]!;
        const v = this.v[i]!;
        p.mul_(1 - lr * weightDecay);
        m.mul_(beta1).add_(g, 1 - beta1);
        v.mul_(beta2).addcmul_(g, g, 1 - beta2);
        const denom = v.sqrt();
        denom.div_(bc2Sqrt).add_(eps);
        p.addcdiv_(m, denom, -stepSize);
        denom.dispose();
        g.dispose();
      }
    });
  }
  /** Like zero_grad(set_to_none=True). */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

function makeMlp(): { step: () => Tensor; dispose: () => void } {
  // Same seed and the same generator calls in the same order as engine_baseline.py.
  torch.manualSeed(cfg.seed);
  const scaled = (shape: number[], s: number): Tensor => {
    const r = torch.randn(shape);
    const out = r.mul(s).requiresGrad_().keep();
    r.dispose();
    return out;
  };
  const w1 = scaled([cfg.mlpHidden, cfg.mlpIn], 1 / cfg.mlpIn ** 0.5);
  const b1 = torch.zeros([cfg.mlpHidden]).requiresGrad_().keep();
  const w2 = scaled([cfg.mlpOut, cfg.mlpHidden], 1 / cfg.mlpHidden ** 0.5);
  const b2 = torch.zeros([cfg.mlpOut]).requiresGrad_().keep();
  const x = torch.randn([cfg.mlpBatch, cfg.mlpIn]).keep();
  const target = torch.randint(0, cfg.mlpOut, [cfg.mlpBatch]).keep();
  const params = [w1, b1, w2, b2];
  const opt = new AdamW(params, cfg);
  const step = (): Tensor => {
    const loss = torch.scope(() => {
      const h = ops.relu(ops.linear(x, w1, b1));
      const logits = ops.linear(h, w2, b2);
      const l = ops.cross_entropy_loss(logits, target);
      l.backward();
      return l;
    });
    opt.step();
    opt.zeroGrad();
    return loss;
  };
  const dispose = (): void => {
    opt.dispose();
    for (const t of [...params, x, target]) t.dispose();
  };
  return { step, dispose };
}

function mlpLosses(): number[] {
  const mlp = makeMlp();
  const losses: number[] = [];
  for (let k = 0; k < cfg.checkSteps; k++) {
    const l = mlp.step();
    losses.push(l.item());
    l.dispose();
  }
  mlp.dispose();
  return losses;
}

// ---------------------------------------------------------------- run
torch.setNumThreads(THREADS);
const info = { cpu: cpuName(), cores, blas: blasLibs() };
const version = torch.version();
process.stderr.write(
  `machine: ${info.cpu}, ${info.cores} cores; libtorch ${version}; threads ${torch.getNumThreads()}; BLAS ${info.blas}\n`,
);

const bin = buildCpp();
const cpp = new Peer(bin, [String(cfg.matmulN), String(THREADS)], sideEnv);
const py = new Peer('/usr/bin/python3', [join(benchSrc, 'engine_baseline.py'), JSON.stringify(cfg)], sideEnv);
const cppThreads = Number((await cpp.next()).split(' ')[1]);
const pyInfo = JSON.parse(await py.next()) as { version: string; threads: number };
const startMem = torch.memory();
const t0 = performance.now();

process.stderr.write('(a) matmul');
const mm = tsMatmul();
const firstCall = once(mm.run, 1);
const mmIters = Math.max(1, Math.floor(0.25 / firstCall)); // about 0.25 s per repetition
const matmul = await compare(async (n) => Number(await cpp.ask(String(n))), { ts: mm.run }, mmIters, 1);
mm.dispose();

process.stderr.write(', (b) add');
const addC = addCase();
const add = await compare(async (n) => Number(await py.ask(`add ${n}`)), { dispose: addC.run, scope: addC.runScope }, cfg.addIters, 2);
addC.dispose();

process.stderr.write(', (b) chain');
const chainC = chainCase();
const chain = await compare(async (n) => Number(await py.ask(`chain ${n}`)), { dispose: chainC.run, scope: chainC.runScope }, cfg.chainIters, 2);
chainC.dispose();

process.stderr.write(', (c) MLP\n');
const tsLosses = mlpLosses();
const pyLosses = JSON.parse(await py.ask('check')) as number[];
const mlpC = makeMlp();
const mlpRun = (n: number): void => {
  for (let k = 0; k < n; k++) mlpC.step().dispose();
};
const mlp = await compare(async (n) => Number(await py.ask(`mlp ${n}`)), { ts: mlpRun }, cfg.mlpIters, cfg.mlpWarmup);
mlpC.dispose();

cpp.close();
py.close();
const elapsed = (performance.now() - t0) / 1000;
const endMem = torch.memory();
const acc = {
  cppMatmul: matmul.base, tsMatmul: matmul.ts.ts!,
  pyAdd: add.base, tsAdd: add.ts.dispose!, tsAddScope: add.ts.scope!,
  pyChain: chain.base, tsChain: chain.ts.dispose!, tsChainScope: chain.ts.scope!,
  pyMlp: mlp.base, tsMlp: mlp.ts.ts!,
};

// ---------------------------------------------------------------- report
type Row = { what: string; ts: string; base: string; ratio: number; target: string; pass: boolean };
const us = (s: number): string => `${(s * 1e6).toFixed(2)} µs`;
const ms = (s: number): string => `${(s * 1e3).toFixed(2)} ms`;
const flops = 2 * cfg.matmulN ** 3;
const rows: Row[] = [];
{
  const ts = flops / median(acc.tsMatmul) / 1e9;
  const base = flops / median(acc.cppMatmul) / 1e9;
  const ratio = ts / base;
  rows.push({ what: `(a) fp32 ${cfg.matmulN}x${cfg.matmulN} matmul, GFLOPS (baseline: C++ libtorch)`, ts: ts.toFixed(2), base: base.toFixed(2), ratio, target: '>= 0.95x', pass: ratio >= 0.95 });
}
const timeRow = (what: string, tsT: number[], baseT: number[], fmt: (s: number) => string): void => {
  const ratio = median(tsT) / median(baseT);
  rows.push({ what, ts: fmt(median(tsT)), base: fmt(median(baseT)), ratio, target: '<= 1.0x', pass: ratio <= 1.0 });
};
timeRow('(b) 1-element add, `a.add(b)` then dispose (baseline: Python)', acc.tsAdd, acc.pyAdd, us);
timeRow(`(b) 1-element add inside \`torch.scope\` (${ADDS_PER_SCOPE} adds per scope) (baseline: Python)`, acc.tsAddScope, acc.pyAdd, us);
timeRow('(b) 5-op autograd chain + backward, explicit dispose (baseline: Python)', acc.tsChain, acc.pyChain, us);
timeRow('(b) 5-op autograd chain + backward, one `torch.scope` per step (baseline: Python)', acc.tsChainScope, acc.pyChain, us);
timeRow(`(c) MLP training step ${cfg.mlpBatch}x${cfg.mlpIn}->${cfg.mlpHidden}->${cfg.mlpOut}, CE loss, AdamW (baseline: Python)`, acc.tsMlp, acc.pyMlp, ms);

const maxRel = Math.max(...tsLosses.map((l, k) => Math.abs(l - pyLosses[k]!) / Math.max(1e-12, Math.abs(pyLosses[k]!))));
const lossOk = maxRel <= 1e-4;
const when = utcStamp();
const header = [
  `Measured ${when} by \`npm run bench:engine\` (${elapsed.toFixed(0)} s of measuring; median of ${cfg.reps} repetitions per side, alternating baseline and TS one by one, after warm-up).`,
  '',
  machineLine(info.cpu),
  `- libtorch ${version} (binding and C++ baseline), Python PyTorch ${pyInfo.version} (\`/usr/bin/python3\`)`,
  `- threads: ${THREADS} on every side (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, set_num_threads, OMP_WAIT_POLICY=PASSIVE; TS ${torch.getNumThreads()}, C++ ${cppThreads}, Python ${pyInfo.threads})`,
  `- BLAS loaded by libtorch: ${info.blas}`,
];
const table = [
  '| what | TS | baseline | ratio | target | pass |',
  '|---|---:|---:|---:|---|---|',
  ...rows.map((r) => `| ${r.what} | ${r.ts} | ${r.base} | ${r.ratio.toFixed(3)}x | ${r.target} | ${r.pass ? 'pass' : 'FAIL'} |`),
];
const notes = [
  `AdamW check: loss over the first ${cfg.checkSteps} steps from the same seed, TS [${tsLosses.map((l) => l.toFixed(6)).join(', ')}] vs Python [${pyLosses.map((l) => l.toFixed(6)).join(', ')}]: max relative difference ${maxRel.toExponential(2)} (${lossOk ? 'pass' : 'FAIL'}, <= 1e-4).`,
  `Live tensors before/after the measurements: ${startMem.tensors}/${endMem.tensors}.`,
];

// Plain-text table on stdout.
const cols = ['what', 'TS', 'baseline', 'ratio', 'target', 'pass'];
const cells = rows.map((r) => [r.what.replace(/`/g, ''), r.ts, r.base, `${r.ratio.toFixed(3)}x`, r.target, r.pass ? 'pass' : 'FAIL']);
const widths = cols.map((c, k) => Math.max(c.length, ...cells.map((row) => row[k]!.length)));
const line = (xs: string[]): string => xs.map((x, k) => (k === 0 ? x.padEnd(widths[k]!) : x.padStart(widths[k]!))).join('  ');
console.log('');
for (const h of header.filter(Boolean)) console.log(plain(h));
console.log('');
console.log(line(cols));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const c of cells) console.log(line(c));
console.log('');
for (const n of notes) console.log(n);

if (readmeWanted()) {
  const readme = writeReadmeSection('engine', [...header, '', ...table, '', ...notes.map((n) => `- ${n}`)]);
  console.log(`\ntable written to ${readme}`);
}
