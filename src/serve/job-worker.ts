// The worker thread that runs one server job (jobs.ts): a customization (Unified-SFT on one
// character, with the VAE stage first unless a base run gives one), Character-GRPO, or an
// evaluation. Training runs here so the server's event loop stays free; the job's spec comes in
// `workerData`, and the only message in is `cancel`.
//
// Progress: the training loop writes one metrics.jsonl line per step (run-dir.ts). This worker
// tails those files (the VAE stage's `vae/metrics.jsonl`, then the run's own) and the samples
// folder every POLL_MS, which the loop lets run between steps (it yields to the event loop after
// each), and posts what is new to the main thread. Cancel sets a shared stop flag and aborts the
// signal every stage takes (the VAE stage, Unified-SFT, Character-GRPO, and their setup): the
// loop reads the flag after each step, so the step under way finishes, its sample is skipped, a
// checkpoint is saved, and the job reports `interrupted`. A GRPO epoch is long (many rollouts),
// so it also polls the flag before every rollout and sampler step, between the images and
// questions of the scoring pass and between update micro-steps, and is dropped part-way,
// keeping the checkpoints already saved. A worker still busy at the cancel deadline finishes in
// the background after the job is stored as cancelled (jobs-running.ts CANCEL_DEADLINE_MS). The
// main thread names the checkpoint the run directory holds (jobs-recover.ts checkpointNote),
// never one it assumes.
import { closeSync, existsSync, openSync, readSync, readdirSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { Character } from '../data/index.js';
import { SAMPLE_FOLDER, SAMPLE_ROOT } from '../data/index.js';
import type { GrpoConfig, SftConfigInput } from '../train/index.js';
import type { EvalLimits } from '../eval/index.js';

/** What the main thread hands the worker (structured-cloned). */
export type JobSpec = {
  id: string;
  runDir: string;
  character: Character;
} & (
  | { kind: 'customize'; config: SftConfigInput; /** a finished base run to customize from; null: train from scratch */ base: string | null }
  | { kind: 'grpo'; config: Omit<GrpoConfig, 'from' | 'out'>; from: string }
  | { kind: 'eval'; modelDir: string; limits: EvalLimits; independent: boolean }
);

export type JobWorkerRequest = { type: 'cancel' };

/** The worker's `workerData`: the spec, and a flag the main thread sets on cancel (Atomics), which
 * a step polls without waiting for this thread's event loop (TrainGrpoOptions.interrupt). */
export interface JobWorkerData {
  spec: JobSpec;
  stopFlag: Int32Array;
}

export type MetricsLine = Record<string, unknown> & { step: number };

export type JobWorkerReply =
  | { type: 'metrics'; phase: 'vae' | 'train'; records: MetricsLine[] }
  | { type: 'sample'; path: string; step: number | null }
  | { type: 'log'; line: string }
  | { type: 'done'; interrupted: boolean; step: number; modelDir: string | null; reportDir: string | null }
  | { type: 'error'; message: string };

const POLL_MS = 200;

/** Reads the complete lines appended to a file since the last call (a torn last line waits). */
class Tail {
  private offset = 0;
  private rest = '';
  constructor(readonly path: string) {}

  read(): MetricsLine[] {
    if (!existsSync(this.path)) return [];
    const fd = openSync(this.path, 'r');
    try {
      const size = fstatSync(fd).size;
      // A resume may rewrite the file shorter (run-dir.ts discardAfter): start over.
      if (size < this.offset) {
        this.offset = 0;
        this.rest = '';
      }
      if (size === this.offset) return [];
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      const text = this.rest + buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      const out: MetricsLine[] = [];
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          const v = JSON.parse(line) as unknown;
          if (v && typeof v === 'object' && typeof (v as { step?: unknown }).step === 'number') out.push(v as MetricsLine);
        } catch {
          // not a metrics line
        }
      }
      return out;
    } finally {
      closeSync(fd);
    }
  }
}

const post = (m: JobWorkerReply): void => parentPort!.postMessage(m);

function watch(spec: JobSpec): { poll: () => void; stop: () => void } {
  const vae = new Tail(join(spec.runDir, 'vae', 'metrics.jsonl'));
  const train = new Tail(join(spec.runDir, 'metrics.jsonl'));
  const samplesDir = join(spec.runDir, 'samples');
  const seen = new Set<string>();
  const poll = (): void => {
    try {
      const v = vae.read();
      if (v.length) post({ type: 'metrics', phase: 'vae', records: v });
      const t = train.read();
      if (t.length) post({ type: 'metrics', phase: 'train', records: t });
      if (existsSync(samplesDir)) {
        for (const name of readdirSync(samplesDir).sort()) {
          if (!name.endsWith('.png') || seen.has(name)) continue;
          seen.add(name);
          const m = /(\d+)/.exec(name);
          post({ type: 'sample', path: join(samplesDir, name), step: m ? Number(m[1]) : null });
        }
      }
    } catch {
      // a file mid-rename: the next poll sees it
    }
  };
  const timer = setInterval(poll, POLL_MS);
  return { poll, stop: () => clearInterval(timer) };
}

async function run(spec: JobSpec, signal: AbortSignal, interrupt: () => boolean): Promise<Extract<JobWorkerReply, { type: 'done' }>> {
  const log = (line: string): void => post({ type: 'log', line });
  if (spec.kind === 'customize') {
    const { trainSft, customize } = await import('../train/index.js');
    const common = { runDir: spec.runDir, signal, interrupt, progress: null, handleSigint: false };
    const r = spec.base
      ? await customize(spec.character, { ...common, base: spec.base, mode: 'full', config: spec.config })
      : await trainSft(spec.config, { ...common, characters: [spec.character] });
    return { type: 'done', interrupted: r.interrupted, step: r.step, modelDir: r.characterModelPath, reportDir: null };
  }
  if (spec.kind === 'grpo') {
    const { trainGrpo } = await import('../train/index.js');
    // No progress bar on the server's stderr and no SIGINT handler (where trainGrpo takes them).
    const opts = { signal, interrupt, log, progress: null, handleSigint: false };
    const r = await trainGrpo({ ...spec.config, from: spec.from, out: spec.runDir }, opts);
    return { type: 'done', interrupted: r.interrupted, step: r.step, modelDir: r.interrupted ? null : r.modelDir, reportDir: null };
  }
  const { runEval } = await import('../eval/index.js');
  const sampleSplit = join(SAMPLE_ROOT, 'test', SAMPLE_FOLDER);
  const split = spec.character.names.folder === SAMPLE_FOLDER && existsSync(sampleSplit) ? sampleSplit : undefined;
  await runEval({
    character: spec.character,
    ...(split ? { split } : {}),
    runs: [{ label: 'current model', modelDir: spec.modelDir }],
    out: spec.runDir,
    evaluators: { independent: spec.independent },
    limits: spec.limits,
    log,
  });
  return { type: 'done', interrupted: false, step: 0, modelDir: null, reportDir: spec.runDir };
}

if (parentPort) {
  const { spec, stopFlag } = workerData as JobWorkerData;
  const ac = new AbortController();
  parentPort.on('message', (m: JobWorkerRequest) => {
    if (m.type === 'cancel') ac.abort();
  });
  const w = watch(spec);
  run(spec, ac.signal, () => Atomics.load(stopFlag, 0) === 1).then(
    (done) => {
      w.stop();
      w.poll(); // the last steps and samples before the end
      post(done);
    },
    (e: unknown) => {
      w.stop();
      w.poll();
      post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    },
  );
}
