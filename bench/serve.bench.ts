// `npm run bench:serve`: the server under load (docs/architecture.md "Performance targets"), all on 127.0.0.1:
//   - latency of GET /v1/models (p50/p95 over sequential requests, idle; and again while 32
//     streaming clients keep the model busy),
//   - time to first token and tokens/s of streaming chat completions from a tiny untrained
//     character model, with 1, 8 and 32 concurrent clients (bounded request counts), once on a
//     server with continuous batching (the default maxBatch) and once on one forced to batch 1
//     (maxBatch 1: one request generating at a time), in one run (docs/serving.md 9),
//   - per level: requests answered, deliberate 429s (the queue is full: 1 running + 16 waiting by
//     default, as `unicharacter serve`), and every other error (target: none),
//   - hostile input (serve-hostile.ts): N bad requests of each kind, their statuses, the 5xx
//     count (target 0) and the server's peak RSS (target: bounded growth, stated).
// The server runs in a child process (this file with `--serve`), so the load generator does not
// share its event loop. Prints the tables and writes them into bench/README.md (between the
// bench:serve markers; other sections are kept).
//
// Settings (environment): BENCH_MODELS_N (GET /v1/models requests, default 500), BENCH_MAX_TOKENS
// (per chat request, default 32), BENCH_WARMUP (warm-up chat requests, default 5),
// BENCH_HOSTILE_N (bad requests of each kind, default 50), BENCH_NO_README=1 (print only).
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, freemem, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { plain, quantile, readmeWanted, utcStamp, writeReadmeSection } from './common.js';
import { hostileKinds, hostileReport, hostileRound } from './serve-hostile.js';
import { DEFAULT_LIMITS, DEFAULT_MAX_BATCH } from '../src/serve/index.js';

interface Ready {
  type: 'ready';
  url: string;
  id: string;
  libtorch: string;
  threads: number;
  queue: { capacity: number; concurrency: number };
  maxBatch: number;
}

// ---------------------------------------------------------------- server side (child process)
async function serveChild(dir: string, maxBatch: number): Promise<void> {
  const { exportCard, loadSampleCharacter } = await import('../src/data/index.js');
  const { TINY } = await import('../src/model/index.js');
  const { CharacterModel } = await import('../src/character/index.js');
  const { ModelChatEngine, startServer } = await import('../src/serve/index.js');
  const torch = await import('../src/torch/index.js');
  const server = await startServer({ dataDir: dir, engine: new ModelChatEngine(join(dir, 'models'), { maxBatch }), port: 0, host: '127.0.0.1' });
  const { character } = loadSampleCharacter();
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
  if (res.status !== 201) throw new Error(`card import: ${res.status} ${await res.text()}`);
  const id = ((await res.json()) as { id: string }).id;
  const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
  const m = CharacterModel.untrained(character, { config: TINY, imageSize: 32, vocabSize: 300, seed: 5, texts });
  m.save(join(dir, 'models', id));
  m.dispose();
  const stats = server.queue.stats;
  process.send!({ type: 'ready', url: server.url, id, libtorch: torch.version(), threads: torch.getNumThreads(), queue: { capacity: stats.capacity, concurrency: stats.concurrency }, maxBatch } satisfies Ready);
  // Peak RSS (worker threads included) for the hostile-input row: sampled every 20 ms; each
  // `peak-rss` request answers the peak since the previous one.
  let peak = process.memoryUsage().rss;
  setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20).unref();
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'close') void server.close().then(() => process.exit(0));
    if (msg.type === 'peak-rss') {
      process.send!({ type: 'peak-rss', rss: Math.max(peak, process.memoryUsage().rss) });
      peak = process.memoryUsage().rss;
    }
  });
}

if (process.argv[2] === '--serve') {
  await serveChild(process.argv[3]!, Number(process.argv[4]));
} else {
  await main();
}

// ---------------------------------------------------------------- load side (this process)
async function timeModels(url: string, n: number): Promise<{ ms: number[]; errors: number }> {
  const ms: number[] = [];
  let errors = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    try {
      const res = await fetch(`${url}/v1/models`);
      const body = (await res.json()) as { data?: unknown[] };
      if (res.status !== 200 || !Array.isArray(body.data) || body.data.length !== 1) errors++;
      else ms.push(performance.now() - t0);
    } catch {
      errors++;
    }
  }
  return { ms, errors };
}

type Outcome =
  // prompt: the usage chunk's prompt_tokens and prompt_tokens_details.cached_tokens (the prompt prefix cache, docs/serving.md 9)
  | { kind: 'ok'; ttftMs: number; totalMs: number; chunks: number; decodeMs: number; firstAt: number; lastAt: number; prompt: { tokens: number; cached: number } }
  | { kind: '429' }
  | { kind: 'error'; why: string };

/** One streaming chat completion; the SSE stream parsed as it arrives. */
async function streamOnce(url: string, model: string, maxTokens: number, k: number): Promise<Outcome> {
  const t0 = performance.now();
  let res: Response;
  try {
    res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        messages: [{ role: 'user', content: `Tell me about delivery number ${k}.` }],
        modalities: ['text'],
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: maxTokens,
        temperature: 0.7,
        seed: k,
      }),
    });
  } catch (e) {
    return { kind: 'error', why: `fetch: ${String(e)}` };
  }
  if (res.status === 429) {
    const body = (await res.json().catch(() => ({}))) as { error?: { type?: string } };
    return body.error?.type === 'rate_limit_error' ? { kind: '429' } : { kind: 'error', why: `429 without the OpenAI rate-limit shape: ${JSON.stringify(body)}` };
  }
  if (res.status !== 200 || !res.body) return { kind: 'error', why: `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}` };
  let first = NaN;
  let last = NaN;
  let chunks = 0;
  let done = false;
  let usage = false;
  let prompt = { tokens: 0, cached: 0 };
  let buf = '';
  const decoder = new TextDecoder();
  try {
    for await (const bytes of res.body) {
      buf += decoder.decode(bytes as Uint8Array, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!event.startsWith('data: ')) continue;
        const data = event.slice(6);
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const json = JSON.parse(data) as { error?: { message: string }; usage?: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens: number } }; choices?: { delta?: { content?: string } }[] };
        if (json.error) return { kind: 'error', why: `stream error event: ${json.error.message}` };
        if (json.usage) {
          usage = true;
          prompt = { tokens: json.usage.prompt_tokens, cached: json.usage.prompt_tokens_details?.cached_tokens ?? 0 };
        }
        const piece = json.choices?.[0]?.delta?.content;
        if (piece) {
          const now = performance.now();
          if (!chunks) first = now;
          last = now;
          chunks++;
        }
      }
    }
  } catch (e) {
    return { kind: 'error', why: `stream: ${String(e)}` };
  }
  const end = performance.now();
  if (!done) return { kind: 'error', why: 'stream ended without [DONE]' };
  if (!usage) return { kind: 'error', why: 'no usage chunk' };
  // A complete answer with no content: the (untrained) model stopped at once. Valid, not an error.
  if (!chunks) return { kind: 'ok', ttftMs: NaN, totalMs: end - t0, chunks: 0, decodeMs: 0, firstAt: NaN, lastAt: NaN, prompt };
  return { kind: 'ok', ttftMs: first - t0, totalMs: end - t0, chunks, decodeMs: last - first, firstAt: first, lastAt: last, prompt };
}

interface Level {
  clients: number;
  perClient: number;
  attempts: number;
  ok: Extract<Outcome, { kind: 'ok' }>[];
  rejected: number;
  errors: string[];
  wallS: number;
}

async function level(url: string, model: string, clients: number, perClient: number, maxTokens: number): Promise<Level> {
  const ok: Level['ok'] = [];
  const errors: string[] = [];
  let rejected = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let r = 0; r < perClient; r++) {
        const o = await streamOnce(url, model, maxTokens, c * 1000 + r);
        if (o.kind === 'ok') ok.push(o);
        else if (o.kind === '429') rejected++;
        else errors.push(o.why);
      }
    }),
  );
  return { clients, perClient, attempts: clients * perClient, ok, rejected, errors, wallS: (performance.now() - t0) / 1000 };
}

interface Child {
  child: ChildProcess;
  exited: Promise<number | null>;
  ready: Ready;
  dir: string;
}

/** A server child process on a fresh data folder, decoding up to maxBatch replies together. */
async function startChild(maxBatch: number): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-serve-'));
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve', dir, String(maxBatch)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const ready = await Promise.race([
    new Promise<Ready>((r) => child.once('message', (m) => r(m as Ready))),
    exited.then((code): never => {
      throw new Error(`the server process exited (code ${code}) before it was ready`);
    }),
  ]);
  if (new URL(ready.url).hostname !== '127.0.0.1') throw new Error(`the server is not on 127.0.0.1: ${ready.url}`);
  console.log(`server ${ready.url} (child pid ${child.pid}), maxBatch ${maxBatch}, model ${ready.id}, queue capacity ${ready.queue.capacity}, concurrency ${ready.queue.concurrency}`);
  return { child, exited, ready, dir };
}

async function stopChild(c: Child): Promise<void> {
  if (c.child.connected) c.child.send({ type: 'close' });
  const timer = setTimeout(() => c.child.kill('SIGKILL'), 10_000);
  await c.exited;
  clearTimeout(timer);
  rmSync(c.dir, { recursive: true, force: true });
}

/** Warm-up (connections, JIT, the model loaded into the worker), then every load level; with
 * `timeBusy`, GET /v1/models is timed while the most clients stream. */
async function runLevels(c: Child, levelsWanted: [number, number][], o: { maxTokens: number; warmup: number; timeBusy: boolean }): Promise<{ levels: Level[]; busy?: { ms: number[]; errors: number } }> {
  const { url, id } = c.ready;
  await timeModels(url, 50);
  for (let i = 0; i < o.warmup; i++) {
    const w = await streamOnce(url, id, o.maxTokens, -1 - i);
    if (w.kind !== 'ok') throw new Error(`warm-up chat failed: ${w.kind === 'error' ? w.why : '429'}`);
  }
  const levels: Level[] = [];
  let busy: { ms: number[]; errors: number } | undefined;
  const most = Math.max(...levelsWanted.map(([n]) => n));
  for (const [clients, perClient] of levelsWanted) {
    let stop = false;
    // While the most clients stream, GET /v1/models keeps being timed (the model runs in a worker).
    const side = o.timeBusy && clients === most
      ? (async () => {
          const all: number[] = [];
          let errors = 0;
          while (!stop) {
            const r = await timeModels(url, 10);
            all.push(...r.ms);
            errors += r.errors;
          }
          return { ms: all, errors };
        })()
      : undefined;
    const l = await level(url, id, clients, perClient, o.maxTokens);
    stop = true;
    if (side) busy = await side;
    levels.push(l);
    console.log(`maxBatch ${c.ready.maxBatch}, ${clients} clients: ${l.ok.length} ok, ${l.rejected} x 429, ${l.errors.length} other errors, ${l.wallS.toFixed(1)} s`);
    for (const e of [...new Set(l.errors)].slice(0, 5)) console.log(`  error: ${e}`);
  }
  return busy ? { levels, busy } : { levels };
}

/**
 * Decode tokens/s over all streams: every delta after each stream's first, over the time in
 * which some stream was decoding (the union of the [first, last delta] spans), so time spent only
 * in queues and prefill is left out.
 */
function decodeRate(l: Level): number {
  const spans = l.ok.filter((o) => o.chunks > 1).map((o) => [o.firstAt, o.lastAt] as const).sort((a, b) => a[0] - b[0]);
  let union = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b <= end) continue;
    union += b - Math.max(a, end);
    end = b;
  }
  const tokens = l.ok.reduce((n, o) => n + Math.max(0, o.chunks - 1), 0);
  return union > 0 ? (tokens * 1000) / union : NaN;
}

/** Every content delta of a level over its wall time. */
/** The share of the level's prompt tokens taken from the prompt prefix cache, as "cached of all (percent)". */
function cachedShare(l: Level): string {
  const all = l.ok.reduce((n, o) => n + o.prompt.tokens, 0);
  const cached = l.ok.reduce((n, o) => n + o.prompt.cached, 0);
  return `${cached} of ${all} (${all ? ((100 * cached) / all).toFixed(0) : 0}%)`;
}

function aggregateRate(l: Level): number {
  return l.ok.reduce((n, o) => n + o.chunks, 0) / l.wallS;
}

async function main(): Promise<void> {
  const MODELS_N = Number(process.env.BENCH_MODELS_N ?? 500);
  const MAX_TOKENS = Number(process.env.BENCH_MAX_TOKENS ?? 32);
  const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
  const HOSTILE_N = Number(process.env.BENCH_HOSTILE_N ?? 50);
  /** The RSS growth the hostile round may cause (its bodies are small; the card uploads are parsed
   * and refused, images decoded): a bound with room, not a measurement. */
  const HOSTILE_RSS_BOUND = 256 * 2 ** 20;
  const LEVELS: [clients: number, perClient: number][] = [
    [1, 10],
    [8, 3],
    [32, 2],
  ];
  const started = performance.now();
  const loadBefore = loadavg()[0]!;
  // The batched server (the default maxBatch) first, with the latency and hostile rows; then
  // the same levels on a server forced to batch 1.
  let c = await startChild(DEFAULT_MAX_BATCH);
  try {
    const { url, id } = c.ready;
    const ready = c.ready;
    const idle = await timeModels(url, MODELS_N);
    console.log(`GET /v1/models idle: p50 ${quantile(idle.ms, 0.5).toFixed(2)} ms, p95 ${quantile(idle.ms, 0.95).toFixed(2)} ms (${idle.ms.length} ok, ${idle.errors} errors)`);
    const { levels, busy } = await runLevels(c, LEVELS, { maxTokens: MAX_TOKENS, warmup: WARMUP, timeBusy: true });

    // Hostile input (serve-hostile.ts): N bad requests of each kind, after the load levels.
    const child = c.child;
    const peakRss = () =>
      new Promise<number>((resolve) => {
        const on = (m: { type?: string; rss?: number }) => {
          if (m.type !== 'peak-rss') return;
          child.off('message', on);
          resolve(m.rss!);
        };
        child.on('message', on);
        child.send({ type: 'peak-rss' });
      });
    // The peak since the last call covers the load levels: reset, idle a moment, then read.
    await peakRss();
    await new Promise((r) => setTimeout(r, 200));
    const rssBefore = await peakRss();
    const hostile = hostileReport(await hostileRound(url, id, HOSTILE_N, hostileKinds(DEFAULT_LIMITS.jsonBodyBytes + 1), peakRss), rssBefore, HOSTILE_RSS_BOUND);
    for (const t of hostile.table) console.log(t);
    await stopChild(c);

    c = await startChild(1);
    const single = await runLevels(c, LEVELS, { maxTokens: MAX_TOKENS, warmup: WARMUP, timeBusy: false });
    const singleReady = c.ready;

    // ------------------------------------------------------------ report
    const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
    const cp = cpus();
    const totalS = (performance.now() - started) / 1000;
    const otherErrors = [...levels, ...single.levels].reduce((n, l) => n + l.errors.length, 0) + idle.errors + (busy?.errors ?? 0);
    const header = [
      `Measured ${utcStamp()} by \`npm run bench:serve\` (${f(totalS, 0)} s in all).`,
      '',
      `- machine: ${cp[0]?.model.trim() ?? 'unknown'}, ${availableParallelism()} cores (${process.platform}/${process.arch}), ${f(totalmem() / 2 ** 30)} GiB memory (${f(freemem() / 2 ** 30)} GiB free at the end), 1-min load average ${f(loadBefore, 2)} before and ${f(loadavg()[0]!, 2)} after (other work on the machine skews the numbers), Node ${process.version}`,
      `- servers: \`startServer\` defaults as \`unicharacter serve\`, in a child process on 127.0.0.1: batched (maxBatch ${ready.maxBatch}: queue ${ready.queue.concurrency} generating, ${ready.queue.capacity} waiting, then 429) and forced to batch 1 (\`--max-batch 1\`: queue ${singleReady.queue.concurrency} generating, ${singleReady.queue.capacity} waiting); the load generator is this process (Node fetch, keep-alive); libtorch ${ready.libtorch} (\`getNumThreads()\` ${ready.threads} in the server process)`,
      `- model: the sample character with a tiny untrained model (\`TINY\` config, 32 px images, vocabulary 300); chat requests are text-only streaming completions, \`max_tokens\` ${MAX_TOKENS}, temperature 0.7, a seed each, \`stream_options.include_usage\``,
    ];
    const modelsTable = [
      '| GET /v1/models (batched server) | requests | p50 | p95 | max | errors |',
      '|---|---:|---:|---:|---:|---:|',
      `| idle, sequential | ${idle.ms.length + idle.errors} | ${f(quantile(idle.ms, 0.5), 2)} ms | ${f(quantile(idle.ms, 0.95), 2)} ms | ${f(Math.max(...idle.ms), 2)} ms | ${idle.errors} |`,
      ...(busy ? [`| during the 32-client level, sequential | ${busy.ms.length + busy.errors} | ${f(quantile(busy.ms, 0.5), 2)} ms | ${f(quantile(busy.ms, 0.95), 2)} ms | ${f(Math.max(...busy.ms), 2)} ms | ${busy.errors} |`] : []),
    ];
    const row = (mode: string, l: Level, base: Level | undefined) => {
      const ttft = l.ok.filter((o) => o.chunks > 0).map((o) => o.ttftMs);
      const rate = l.ok.filter((o) => o.chunks > 1 && o.decodeMs > 0).map((o) => ((o.chunks - 1) * 1000) / o.decodeMs);
      const speedup = base ? `${f(aggregateRate(l) / aggregateRate(base), 2)}x` : '1x';
      const decodeSpeedup = base ? `${f(decodeRate(l) / decodeRate(base), 2)}x` : '1x';
      return `| ${mode} | ${l.clients} | ${l.attempts} (${l.clients} x ${l.perClient}) | ${l.ok.length} (${l.ok.filter((o) => o.chunks === 0).length}) | ${l.rejected} | ${l.errors.length} | ${f(quantile(ttft, 0.5), 0)} ms | ${f(quantile(ttft, 0.95), 0)} ms | ${f(quantile(rate, 0.5))} | ${f(aggregateRate(l))} | ${speedup} | ${f(decodeRate(l))} | ${decodeSpeedup} | ${f(quantile(l.ok.map((o) => o.totalMs), 0.5), 0)} ms | ${cachedShare(l)} |`;
    };
    const chatTable = [
      '| server | clients | requests (clients x each) | answered (of which empty) | deliberate 429 | other errors | TTFT p50 | TTFT p95 | tokens/s per stream (median) | tokens/s all streams | all streams vs batch 1 | decode tokens/s all streams | decode vs batch 1 | request p50 | prompt tokens cached |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...levels.map((l, i) => row(`batched (maxBatch ${ready.maxBatch})`, l, single.levels[i])),
      ...single.levels.map((l) => row('batch 1', l, undefined)),
    ];
    const eight = levels.findIndex((l) => l.clients === 8);
    const speed8 = eight >= 0 ? aggregateRate(levels[eight]!) / aggregateRate(single.levels[eight]!) : NaN;
    const decode8 = eight >= 0 ? decodeRate(levels[eight]!) / decodeRate(single.levels[eight]!) : NaN;
    const notes = [
      `Errors other than deliberate 429s: ${otherErrors} (target: none) — ${otherErrors === 0 ? 'pass' : 'FAIL'}.`,
      `Batching at 8 streams: ${f(speed8, 2)}x the batch-1 aggregate tokens/s, ${f(decode8, 2)}x its aggregate decode tokens/s (target: at least 4x) — ${speed8 >= 4 ? 'pass' : 'FAIL'}.`,
      'Decode tokens/s all streams: every delta after each stream\'s first, over the time in which at least one stream was decoding (the union of the streams\' first-to-last-delta spans): queue waits and prefill alone are left out. Prefill stays per request (docs/serving.md 9), so where it is a large part of each request the end-to-end ("all streams") gain stays below the decode gain.',
      'Prompt tokens cached: over the level\'s answered requests, the `usage.prompt_tokens_details.cached_tokens` of their usage chunks (KV rows taken from the model\'s prompt prefix cache, docs/serving.md 9) of their `prompt_tokens`; both servers keep the default cache (32 MiB).',
      'TTFT: from sending the request to the first non-empty content delta, queue wait included (at batch 1 one request generates at a time, so with more clients most of it is waiting; batched, a request prefills on arrival and joins the running batch). "Empty" answers are complete streams (usage chunk, `[DONE]`) in which the untrained model ended at once with `<|im_end|>`; they count as answered and are left out of TTFT.',
      'Tokens are streamed content deltas (one per decoded token, except where a multi-byte character waits for its next token). Tokens/s per stream: (deltas − 1) / (last − first delta); all streams: every delta of the level / its wall time; "vs batch 1": that figure over the batch-1 server\'s at the same level.',
      "A 429 is counted when the answer has the OpenAI rate-limit shape (`error.type` 'rate_limit_error'); the client then goes on to its next request without retrying.",
    ];
    console.log('');
    for (const h of header) console.log(plain(h));
    console.log('');
    for (const t of modelsTable) console.log(t);
    console.log('');
    for (const t of chatTable) console.log(t);
    console.log('');
    for (const n of notes) console.log(`- ${plain(n)}`);
    console.log('');
    for (const t of hostile.table) console.log(t);
    console.log('');
    for (const n of hostile.notes) console.log(`- ${plain(n)}`);

    if (readmeWanted()) {
      const readme = writeReadmeSection('serve', [...header, '', ...modelsTable, '', ...chatTable, '', ...notes.map((n) => `- ${n}`), '', ...hostile.table, '', ...hostile.notes.map((n) => `- ${n}`)], '## Serve results\n\n');
      console.log(`\ntables written to ${readme}`);
    }
    if (otherErrors || !hostile.pass) process.exitCode = 1;
  } finally {
    await stopChild(c);
  }
}
