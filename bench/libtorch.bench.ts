// `npm run bench:libtorch`: the engine on libtorch 1.13 (Debian bookworm, this machine) and 2.6
// (Debian trixie, in the root of scripts/libtorch2.sh) side by side, in one run: the same
// compiled TS runs in each, one process per libtorch, the two alternating for BENCH_ROUNDS
// rounds (default 2); each figure is the better of its rounds (a shared machine only ever
// slows a figure down). Rows: fp32 and bf16 1024x1024 matmul GFLOPS, a 1-element add, the
// engine bench's MLP training step, attention fwd+bwd at head size 32 (the tiny model's), the
// tiny SFT step (ms and MFU against the fp32 matmul peak of the same process) and tiny decoding
// tokens/s (the native decode step, and the layer-by-layer ATen path). Rewrites the section
// between the bench:libtorch markers of bench/README.md.
//
// Settings (environment): BENCH_THREADS (default 1: steadier on a shared machine),
// BENCH_ROUNDS (default 2), BENCH_QUICK=1 (short smoke run), BENCH_NO_README=1 (print only).
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { cpuName, machineLine, median, plain, readmeWanted, root, threadEnv, utcStamp, writeReadmeSection } from './common.js';

const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const QUICK = process.env.BENCH_QUICK === '1';
const self = fileURLToPath(import.meta.url);
const now = (): number => performance.now();

if (process.argv.includes('--help')) {
  console.log(`usage: npm run bench:libtorch   (node dist/bench/libtorch.bench.js)

Measures the engine on libtorch 1.13 (this machine) and 2.6 (the trixie root of
scripts/libtorch2.sh, made on first use) in one run and rewrites the bench:libtorch section
of bench/README.md. Environment: BENCH_THREADS (default 1), BENCH_ROUNDS (default 2),
BENCH_QUICK=1, BENCH_NO_README=1. --part measures in this process only (prints RESULT <json>).`);
  process.exit(0);
}

interface Measures {
  libtorch: string;
  node: string;
  blas: string;
  matmulF32: number;
  matmulBf16: number;
  addUs: number;
  mlpMs: number;
  attnMs: number;
  sftMs: number;
  sftGflops: number;
  sftMfu: number;
  sftTokensPerStep: number;
  decodeTps: number;
  decodeAtenTps: number;
}

// ================================================================ one process: measure
async function measure(): Promise<Measures> {
  const torch = await import('../src/torch/index.js');
  const { ops } = torch;
  const { AdamW, Linear, clipGradNorm } = await import('../src/nn/index.js');
  const { Bagel, TINY, disposeBatch, newContext, prefillText, decodeSteps } = await import('../src/model/index.js');
  const { loadSampleCharacter } = await import('../src/data/index.js');
  const { sftBenchModel, stepFlops } = await import('./sft-step.js');
  const { tinySftConfig } = await import('../src/train/sft-config.js');
  const { sftForwardBackward } = await import('../src/train/sft.js');
  const { blasLibs } = await import('./common.js');
  torch.setNumThreads(THREADS);
  torch.manualSeed(0);

  /** Median time in ms of `f` over `reps` repetitions of ~`seconds` each (after 2 warm-up calls). */
  const timeMs = (f: () => void, reps: number, seconds: number): number => {
    f();
    f();
    let t0 = now();
    f();
    const iters = Math.max(1, Math.round((seconds * 1000) / Math.max(1e-3, now() - t0)));
    const ms: number[] = [];
    for (let r = 0; r < reps; r++) {
      t0 = now();
      for (let i = 0; i < iters; i++) f();
      ms.push((now() - t0) / iters);
    }
    return median(ms);
  };
  const reps = QUICK ? 3 : 5;
  const secs = QUICK ? 0.2 : 0.6;

  const matmul = (dtype: 'float32' | 'bfloat16'): number => {
    const n = 1024;
    const a = torch.randn([n, n]).to(dtype);
    const b = torch.randn([n, n]).to(dtype);
    const ms = timeMs(() => a.matmul(b).dispose(), reps, secs);
    a.dispose();
    b.dispose();
    return (2 * n ** 3) / (ms / 1000) / 1e9;
  };
  const matmulF32 = matmul('float32');
  const matmulBf16 = matmul('bfloat16');

  const addUs = torch.scope(() => {
    const a = torch.ones([1]);
    const b = torch.ones([1]);
    return timeMs(() => {
      for (let i = 0; i < 1000; i++) a.add(b).dispose();
    }, reps, secs); // ms per 1000 adds = µs per add
  });

  // the MLP step of bench:engine (c): 64 x 512 -> 512 (ReLU) -> 10, CE loss, backward, AdamW
  const mlpMs = (() => {
    const l1 = new Linear(512, 512);
    const l2 = new Linear(512, 10);
    const params = [...l1.parameters(), ...l2.parameters()];
    const opt = new AdamW(params, { lr: 1e-3 });
    const x = torch.randn([64, 512]);
    const y = torch.randint(0, 10, [64]);
    const ms = timeMs(() => torch.scope(() => {
      opt.zeroGrad();
      ops.cross_entropy_loss(l2.forward(l1.forward(x).relu()), y).backward();
      opt.step();
    }), reps, secs);
    opt.dispose();
    l1.dispose();
    l2.dispose();
    x.dispose();
    y.dispose();
    return ms;
  })();

  // attention as the tiny model's packed training runs it: 8 heads of 32, 640 tokens, an
  // additive mask, forward and backward
  const attnMs = torch.scope(() => {
    const [H, L, d] = [8, 640, 32];
    const q = torch.randn([1, H, L, d], { requiresGrad: true });
    const k = torch.randn([1, H, L, d], { requiresGrad: true });
    const v = torch.randn([1, H, L, d], { requiresGrad: true });
    const mask = torch.zeros([L, L]);
    return timeMs(() => torch.scope(() => {
      torch.scaledDotProductAttention(q, k, v, mask).sum().backward();
      for (const t of [q, k, v]) t.grad = null;
    }), reps, secs);
  });

  // the tiny SFT step of bench:train (trainSft's step without the run directory)
  const { character } = loadSampleCharacter();
  const config = tinySftConfig();
  const m = await sftBenchModel(character, config);
  const o = config.optim;
  const opt = new AdamW(m.trainable, { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay });
  const sftStep = (index: number): { ms: number; flops: number; tokens: number } => torch.scope(() => {
    const t0 = now();
    const bs = m.data.stepBatches(index, { packsPerRank: config.data.packsPerRank });
    opt.zeroGrad();
    sftForwardBackward(m.model, bs, { ceWeight: config.ceWeight, mseWeight: config.mseWeight, timestepShift: config.timestepShift });
    torch.noGrad(() => {
      for (const p of m.trainable) if (p.grad === null) p.grad = ops.zeros_like(p);
    });
    clipGradNorm(m.trainable, o.gradClip);
    opt.step();
    const ms = now() - t0;
    let flops = 0;
    let tokens = 0;
    for (const b of bs) {
      flops += stepFlops(m.mc, b.batch)[0];
      tokens += b.tokens;
      disposeBatch(b.batch);
      b.noise?.dispose();
    }
    return { ms, flops, tokens };
  });
  for (let i = 0; i < 2; i++) sftStep(i);
  const steps: { ms: number; flops: number; tokens: number }[] = [];
  const until = now() + (QUICK ? 2000 : 10000);
  for (let i = 2; steps.length < 3 || now() < until; i++) steps.push(sftStep(i));
  const sftMs = median(steps.map((s) => s.ms));
  const achieved = steps.reduce((a, s) => a + s.flops, 0) / (steps.reduce((a, s) => a + s.ms, 0) / 1000) / 1e9;
  const peak = Math.max(matmulF32, matmul('float32'));
  const sftTokensPerStep = median(steps.map((s) => s.tokens));
  opt.dispose();
  m.dispose();

  // greedy decoding at batch 1 on the tiny model after a 32-token prompt
  const decode = (decodeKernels: boolean): number => {
    torch.manualSeed(0);
    const model = new Bagel(structuredClone(TINY), { decodeKernels });
    model.eval();
    const ctx = newContext(model);
    prefillText(model, ctx, Array.from({ length: 32 }, (_, i) => 20 + i));
    const run = (n: number): number => {
      let got = 0;
      let ms = 0;
      while (got < n) {
        const t0 = now();
        let k = 0;
        for (const _ of decodeSteps(model, ctx, { maxTokens: Math.min(128, n - got) })) k++;
        ms += now() - t0;
        got += Math.max(k, 1);
      }
      return got / (ms / 1000);
    };
    run(16);
    const tps = run(QUICK ? 64 : 256);
    ctx.dispose();
    model.dispose();
    return tps;
  };
  const decodeTps = decode(true);
  const decodeAtenTps = decode(false);

  return {
    libtorch: torch.version(), node: process.version, blas: blasLibs(), matmulF32, matmulBf16, addUs, mlpMs, attnMs,
    sftMs, sftGflops: achieved, sftMfu: achieved / peak, sftTokensPerStep, decodeTps, decodeAtenTps,
  };
}

// ================================================================ parent: both libtorch versions
/** Runs the measuring part under `cmd args` and returns its RESULT line. */
function runMeasure(label: string, cmd: string, args: string[]): Promise<Measures> {
  const env = { ...process.env, ...threadEnv(THREADS), BENCH_THREADS: String(THREADS), OMP_WAIT_POLICY: 'PASSIVE' };
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { env, cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      const line = out.split('\n').reverse().find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) rej(new Error(`${label} exited with ${code}:\n${out.slice(-4000)}`));
      else res(JSON.parse(line.slice(7)) as Measures);
    });
  });
}

const HIGHER: (keyof Measures)[] = ['matmulF32', 'matmulBf16', 'sftGflops', 'decodeTps', 'decodeAtenTps'];
const LOWER: (keyof Measures)[] = ['addUs', 'mlpMs', 'attnMs', 'sftMs'];

function best(runs: Measures[]): Measures {
  const out = { ...runs[0]! } as Record<string, unknown>;
  for (const k of HIGHER) out[k] = Math.max(...runs.map((r) => r[k] as number));
  for (const k of LOWER) out[k] = Math.min(...runs.map((r) => r[k] as number));
  // the best step's model GFLOPS over the best matmul peak: a busy moment in either round
  // cannot push the MFU above what the machine did at its best
  out.sftMfu = (out.sftGflops as number) / (out.matmulF32 as number);
  return out as unknown as Measures;
}

async function main(): Promise<void> {
  const t0 = now();
  const script = join('dist', 'bench', 'libtorch.bench.js');
  const sides: [string, string, string[]][] = [
    ['libtorch 1.13 (bookworm)', process.execPath, [script, '--part']],
    ['libtorch 2.6 (trixie root)', 'bash', ['scripts/libtorch2.sh', 'node', script, '--part']],
  ];
  const runs: Measures[][] = sides.map(() => []);
  const loads: number[] = [loadavg()[0]!];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, [label, cmd, args]] of sides.entries()) {
      process.stderr.write(`round ${r + 1}/${ROUNDS}: ${label}\n`);
      runs[k]!.push(await runMeasure(label, cmd, args));
      loads.push(loadavg()[0]!);
    }
  }
  const [a, b] = runs.map(best) as [Measures, Measures];
  const ratio = (x: number, y: number): string => `${(y / x).toFixed(2)}x`;
  const f = (x: number, d = 1): string => x.toFixed(d);
  const row = (what: string, x: number, y: number, d = 1, unit = ''): string => `| ${what} | ${f(x, d)}${unit} | ${f(y, d)}${unit} | ${ratio(x, y)} |`;
  const body = [
    `Measured ${utcStamp()} by \`npm run bench:libtorch\` (${((now() - t0) / 1000).toFixed(0)} s; ${ROUNDS} alternating rounds per libtorch, the better of them per row; ${THREADS} thread(s) on both sides).`,
    '',
    machineLine(cpuName()),
    `- libtorch ${a.libtorch}, Node ${a.node}; BLAS: ${a.blas}`,
    `- libtorch ${b.libtorch} (Debian trixie root), Node ${b.node}; BLAS: ${b.blas}`,
    `- 1-minute load average during the rounds: ${loads.map((l) => l.toFixed(1)).join(' -> ')} (above the core count the machine was shared)`,
    '',
    `| what | libtorch ${a.libtorch} | libtorch ${b.libtorch} | 2.6 / 1.13 |`,
    '|---|---:|---:|---:|',
    row('fp32 1024x1024 matmul, GFLOPS', a.matmulF32, b.matmulF32),
    row('bf16 1024x1024 matmul, GFLOPS', a.matmulBf16, b.matmulBf16),
    row('1-element add, `a.add(b)` then dispose, µs', a.addUs, b.addUs, 2),
    row('MLP step 64x512->512->10, CE, AdamW, ms', a.mlpMs, b.mlpMs, 2),
    row('attention fwd+bwd, 8 heads x 640 x 32, additive mask, ms', a.attnMs, b.attnMs, 2),
    row(`tiny SFT step (~${Math.round(a.sftTokensPerStep)} tokens), ms`, a.sftMs, b.sftMs),
    row('tiny SFT step model GFLOPS', a.sftGflops, b.sftGflops),
    row('tiny SFT step MFU (of the fp32 matmul peak above), %', a.sftMfu * 100, b.sftMfu * 100),
    row('tiny decode at batch 1 (native step), tokens/s', a.decodeTps, b.decodeTps, 0),
    row('tiny decode at batch 1 (layer by layer, ATen), tokens/s', a.decodeAtenTps, b.decodeAtenTps, 0),
    '',
    '- ratio above 1: 2.6 gives more (GFLOPS, MFU, tokens/s) or takes longer (µs, ms).',
  ];
  for (const l of body) console.log(plain(l));
  if (readmeWanted()) console.log(`\nwrote ${writeReadmeSection('libtorch', body)}`);
}

if (process.argv.includes('--part')) {
  const r = await measure();
  console.log(`RESULT ${JSON.stringify(r)}`);
} else {
  await main();
}
