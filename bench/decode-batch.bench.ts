// `npm run bench:decode-batch`: where the time of one batched decode step goes (docs/serving.md 9),
// in process, on the tiny model the serve bench uses (`TINY`, vocabulary 300): one step of
// decodeBatchStep for B = 1, 2, 4, 8, 16, 32 sequences side by side, split into its phases:
//   - embedding (the B next tokens' rows), the decoder (the native step; its own timers split it
//     into setup, norms, projections q/k/v/o, attention over each row's cache, MLP and output),
//     the LM head ([B, D] x [D, V]) and sampling (each row's choice from its logits),
// each the median over BENCH_STEPS steps (default 40, after 5 warm-up steps) of CPU time (the
// machine may be shared: CPU time leaves out the time the process waited for a core; the wall
// time of the step is shown too). B = 1 is the batch-1 path (motDecodeStep), B > 1 the batched one
// (motDecodeBatch). One thread, as the server's model runs. The sequences sample as serving does
// (temperature 0.7, a seeded random source each) after a 500-token prompt (PROMPT_TOKENS: about what the serve bench's requests prefill, so attention is as long), and never stop (a
// step's stop token is ignored, so every row stays in the batch).
// Prints the table and writes it into bench/README.md between the bench:decode-batch markers
// (BENCH_NO_README=1: print only). BENCH_BATCHES ("1,2,4,...") picks the batch sizes.
// A second table does the same for the decoder of the `SMALL` config (0.1 B parameters per
// expert: its weights do not fit in cache) at BENCH_SMALL_BATCHES (default 1,2,4,8; empty: none)
// over BENCH_SMALL_STEPS steps (default 10): batching gains most where each step streams the
// weights from memory, least where they stay in cache and the step is arithmetic.
import { loadavg } from 'node:os';
import { cpuName, machineLine, median, plain, readmeWanted, threadEnv, utcStamp, writeReadmeSection } from './common.js';

Object.assign(process.env, threadEnv(1));
const torch = await import('../src/torch/index.js');
const { native } = await import('../src/torch/native.js');
const { Bagel, DecodeSequence, SMALL, TINY, newContext, prefillText, routingFromFlags, seededRandom } = await import('../src/model/index.js');
type Bagel = InstanceType<typeof Bagel>;
type KVCache = ReturnType<typeof newContext>;
type DecodeSequence = InstanceType<typeof DecodeSequence>;

const STEPS = Number(process.env.BENCH_STEPS ?? 40);
const BATCHES = (process.env.BENCH_BATCHES ?? '1,2,4,8,16,32').split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1);
const PROMPT_TOKENS = 500;
const SMALL_STEPS = Number(process.env.BENCH_SMALL_STEPS ?? 10);
const SMALL_BATCHES = (process.env.BENCH_SMALL_BATCHES ?? '1,2,4,8').split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1);
const NATIVE_PHASES = ['setup', 'norms', 'projections', 'attention', 'mlp', 'output'] as const;
const PHASES = ['embedding', ...NATIVE_PHASES, 'lmHead', 'sampling'] as const;
type Phase = (typeof PHASES)[number];
interface Row { B: number; cpuMs: number; wallMs: number; phases: Record<Phase, number> }

/** CPU time of this process in ms (one thread does the work: libtorch runs single-threaded here). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * One step of decodeBatchStep (src/model/inference.ts) spelled out phase by phase, so that each
 * can be timed; adds each phase's CPU ms to `into`.
 */
function timedStep(model: Bagel, seqs: DecodeSequence[], into: Record<Phase, number>): void {
  const { noGrad, scope, tensor } = torch;
  noGrad(() => scope(() => {
    let t = cpuMs();
    const lap = (p: Phase): void => {
      const now = cpuMs();
      into[p] += now - t;
      t = now;
    };
    const inputs = model.language_model.embed(tensor(seqs.map((q) => q.next), { dtype: 'int64' }));
    lap('embedding');
    native.motDecodeProfile(true);
    const lm = model.language_model.model;
    const hidden = seqs.length === 1
      ? lm.forward(inputs, tensor([seqs[0]!.work.nextPosition], { dtype: 'int64' }), routingFromFlags([false]), { kind: 'cached', causal: true }, { cache: seqs[0]!.work, update: true })
      : lm.decodeBatch(inputs, seqs.map((q) => ({ cache: q.work, position: q.work.nextPosition })));
    const inside = native.motDecodeProfile(false);
    for (const q of seqs) q.work.nextPosition += 1;
    t = cpuMs();
    for (const p of NATIVE_PHASES) into[p] += inside[p];
    const logits = model.logits(hidden).to('float32');
    lap('lmHead');
    seqs.forEach((q, b) => scope(() => q.choose(logits.select(0, b))));
    // every row stays in the batch: a sampled stop token or the token limit does not end it here
    for (const q of seqs) q.done = false;
    lap('sampling');
  }));
}

function measure(model: Bagel, ctx: KVCache, B: number, steps: number): Row {
  const seqs = Array.from({ length: B }, (_, i) => new DecodeSequence(model, ctx, { maxTokens: 1e9, temperature: 0.7, random: seededRandom(i) }));
  const zero = (): Record<Phase, number> => Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
  const samples: { cpu: number; wall: number; phases: Record<Phase, number> }[] = [];
  try {
    for (let i = 0; i < 5 + steps; i++) {
      const phases = zero();
      const c0 = cpuMs();
      const w0 = performance.now();
      timedStep(model, seqs, phases);
      if (i >= 5) samples.push({ cpu: cpuMs() - c0, wall: performance.now() - w0, phases });
    }
  } finally {
    for (const q of seqs) q.dispose();
  }
  const phases = zero();
  for (const p of PHASES) phases[p] = median(samples.map((s) => s.phases[p]));
  return { B, cpuMs: median(samples.map((s) => s.cpu)), wallMs: median(samples.map((s) => s.wall)), phases };
}

/** Multiply-adds of the weight matrices (q/k/v/o and the MLP) for one token. */
function weightMacs(model: Bagel): number {
  const l = model.config.llm;
  const attn = l.hiddenSize * (l.numHeads * l.headDim + 2 * l.numKvHeads * l.headDim) + l.numHeads * l.headDim * l.hiddenSize;
  return l.numLayers * (attn + 3 * l.hiddenSize * l.intermediateSize);
}

function table(rows: Row[], macs: number): string[] {
  const one = rows.find((r) => r.B === 1);
  const f = (x: number): string => x.toFixed(3);
  const head = ['B', 'step (CPU)', 'step (wall)', 'step vs B=1', 'tokens/s (CPU)', 'tokens/s vs B=1', 'embedding', 'decoder: setup', 'norms', 'q/k/v/o gemm', 'attention', 'MLP gemm', 'output', 'LM head', 'sampling', 'gemm GMAC/s'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---:').join('|')}|`];
  for (const r of rows) {
    const p = r.phases;
    const gemm = p.projections + p.mlp;
    lines.push(`| ${[
      r.B, `${f(r.cpuMs)} ms`, `${f(r.wallMs)} ms`, one ? `${(r.cpuMs / one.cpuMs).toFixed(2)}x` : '-',
      ((r.B / r.cpuMs) * 1000).toFixed(0), one ? `${((r.B / r.cpuMs) / (1 / one.cpuMs)).toFixed(2)}x` : '-',
      ...PHASES.map((k) => f(p[k])), gemm > 0 ? ((macs * r.B) / (gemm * 1e6)).toFixed(1) : '-',
    ].join(' | ')} |`);
  }
  return lines;
}

/** A model of `base`'s shapes with the serve bench's vocabulary of 300, a PROMPT_TOKENS-token prompt, its rows. */
function runModel(base: typeof TINY, batches: number[], steps: number): { rows: Row[]; macs: number } {
  const config = { ...base, llm: { ...base.llm, vocabSize: 300 }, tokens: { ...base.tokens, bos: 296, eos: 297, startOfImage: 298, endOfImage: 299 } };
  torch.manualSeed(5);
  const model = new Bagel(config, { visualUnd: false, visualGen: false }).eval();
  const ctx = newContext(model);
  try {
    prefillText(model, ctx, Array.from({ length: PROMPT_TOKENS }, (_, i) => 20 + (i % 250)));
    return { rows: batches.map((B) => measure(model, ctx, B, steps)), macs: weightMacs(model) };
  } finally {
    ctx.dispose();
    model.dispose();
  }
}

async function main(): Promise<void> {
  torch.setNumThreads(1);
  const load0 = loadavg()[0]!;
  const t0 = performance.now();
  const tiny = runModel(TINY, BATCHES, STEPS);
  const small = SMALL_BATCHES.length ? runModel(SMALL, SMALL_BATCHES, SMALL_STEPS) : null;
  const seconds = (performance.now() - t0) / 1000;
  const load1 = loadavg()[0]!;
  const mb = (macs: number): string => `${((macs * 4) / 2 ** 20).toFixed(0)} MiB`;
  const body = [
    `Measured ${utcStamp()} by \`npm run bench:decode-batch\` (${seconds.toFixed(0)} s).`,
    '',
    machineLine(cpuName(), { libtorch: torch.version() }) + `; 1-min load average ${load0.toFixed(1)} before and ${load1.toFixed(1)} after (CPU time leaves out waits for a core, not the slowdown of sharing one)`,
    `- one thread, a ${PROMPT_TOKENS}-token prompt (about what the serve bench's requests prefill), sampling at temperature 0.7, vocabulary 300; phases in ms of CPU time, medians of ${STEPS} steps (${SMALL_STEPS} for \`SMALL\`); "gemm GMAC/s": weight multiply-adds of the q/k/v/o and MLP gemms over their time`,
    '',
    `\`TINY\` (${(tiny.macs / 1e6).toFixed(2)} M weight multiply-adds per token, ${mb(tiny.macs)} of float32 layer weights: they stay in cache):`,
    '',
    ...table(tiny.rows, tiny.macs),
    ...(small ? ['', `\`SMALL\`'s decoder (${(small.macs / 1e6).toFixed(1)} M weight multiply-adds per token, ${mb(small.macs)} of float32 layer weights: read from memory every step):`, '', ...table(small.rows, small.macs)] : []),
  ];
  console.log(body.map(plain).join('\n'));
  if (readmeWanted()) console.log(`\n${writeReadmeSection('decode-batch', body)}`);
}

await main();
