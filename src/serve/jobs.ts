// Training and evaluation jobs run by the server, with progress over SSE (docs/architecture.md
// "Jobs"). A job is a row in the `jobs` table; the JobManager runs one job at a time, each in its
// own worker thread (job-worker.ts) so the event loop keeps serving chat, and keeps the row's
// `progress` JSON current from what the worker reports:
//
//   { phase, step, total, loss, metrics: [{step, loss}] (at most MAX_HISTORY points, thinned
//     evenly when longer), latest: {last metrics line}, samples: [{step, hash, url}] (images in
//     the image store), message, vae?: {step, total, loss}, run_dir, model?, report? }
//
// Files: the job's run directory is `<dataDir>/runs/<job id>/`; a finished customization or GRPO
// job installs its character model folder at `<dataDir>/models/<character id>/` (copied to
// `<dataDir>/.staging/` first, then renamed into place), where ModelChatEngine serves it.
// Customization starts from `<dataDir>/base/` when that folder holds a finished base run
// (`unicharacter train base`), else it trains the tiny model from scratch (VAE stage first).
// Nothing from a request becomes a path: the only request value in a path is the character id,
// checked against the character library.
//
// A server that stops or dies with a job running leaves the row 'running'; the next start marks
// every such job (and every queued one) 'interrupted', so none stays 'running' forever, naming the
// checkpoint its run directory really holds. An install the crash cut short is finished or undone
// first (recoverInstalls); a job that died installing is 'succeeded' when the model now in place
// is its own.
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Character } from '../data/index.js';
import { CHARACTER_MODEL_FILES } from '../character/index.js';
import { DEFAULT_GRPO, grpoConfigFrom, tinySftConfig, type GrpoConfig, type SftConfigInput } from '../train/index.js';
import type { CharacterLibrary } from './characters.js';
import type { JobRow, JobStatus, Store } from './db.js';
import { ApiError } from './errors.js';
import type { ImageStore } from './images.js';
import type { JobSpec, JobWorkerReply, JobWorkerRequest, MetricsLine } from './job-worker.js';
import { installModel, recoverInstalls } from './model-install.js';
import { readLatestCheckpoint } from '../train/index.js';
import { JobRequestSchema, type JobRequest, type ServerJobKind } from './schemas.js';

// ---- the request: the job schemas live with the other request schemas (schemas.ts) ----

export {
  CustomizeOptionsSchema, GrpoOptionsSchema, EvalOptionsSchema, JobRequestSchema, type JobRequest, type ServerJobKind,
} from './schemas.js';

// ---- progress ----

export const MAX_HISTORY = 500;
export const MAX_SAMPLES = 16;

export interface JobProgress {
  phase: 'queued' | 'vae' | 'train' | 'eval' | 'install' | 'done';
  step: number;
  total: number | null;
  loss?: number;
  metrics: { step: number; loss: number }[];
  latest?: Record<string, number>;
  samples: { step: number | null; hash: string; url: string }[];
  message?: string;
  vae?: { step: number; total: number | null; loss?: number };
  run_dir: string;
  model?: string;
  report?: string;
}

/** Appends a point; past `max` points every other older point goes, so the curve still spans
 * the whole run at half the resolution. */
export function pushHistory(h: { step: number; loss: number }[], p: { step: number; loss: number }, max = MAX_HISTORY): { step: number; loss: number }[] {
  // A resumed or restarted loop may repeat steps: keep the history increasing.
  while (h.length && h[h.length - 1]!.step >= p.step) h.pop();
  h.push(p);
  if (h.length > max) h = h.filter((_, i) => i % 2 === 0 || i === h.length - 1);
  return h;
}

function numbersOf(r: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

// ---- the API's view of a job ----

export function jobJson(j: JobRow): Record<string, unknown> {
  return {
    id: j.id,
    object: 'job',
    kind: j.kind,
    status: j.status,
    character_id: j.characterId,
    config: j.config,
    options: (j.config as { options?: unknown } | null)?.options ?? {},
    progress: j.progress,
    error: j.error,
    created_at: Math.floor(j.createdAt / 1000),
    updated_at: Math.floor(j.updatedAt / 1000),
  };
}

export const TERMINAL: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

export { installModel } from './model-install.js';

// ---- the manager ----

export interface JobManagerOptions {
  store: Store;
  images: ImageStore;
  library: CharacterLibrary;
  /** `<dataDir>/runs`, `<dataDir>/models`, `<dataDir>/base`, `<dataDir>/.staging`. */
  dataDir: string;
  /** Jobs waiting beyond the running one before 429 (default 32). */
  maxQueued?: number;
  /** How long a cancelled training job may take to checkpoint before its worker is stopped (ms). */
  cancelGraceMs?: number;
}

interface Running {
  id: string;
  kind: ServerJobKind;
  worker: Worker;
  progress: JobProgress;
  cancelRequested: boolean;
  stopping: 'cancel' | 'shutdown' | null;
  finished: Promise<void>;
  graceTimer: NodeJS.Timeout | null;
  /** Store writes in order: progress updates and the final status never overtake each other. */
  chain: Promise<void>;
}

export type JobEvent = { job: JobRow; progressChanged: boolean };

export class JobManager {
  readonly runsDir: string;
  readonly modelsDir: string;
  readonly baseDir: string;
  readonly stagingDir: string;
  private readonly queue: string[] = [];
  private running: Running | null = null;
  /** A job between the queue and its worker (its spec is being built): at most one. */
  private starting: { id: string; cancelled: boolean } | null = null;
  private readonly events = new EventEmitter();
  private closed = false;
  private readonly maxQueued: number;
  private readonly cancelGraceMs: number;

  constructor(private readonly o: JobManagerOptions) {
    this.runsDir = join(o.dataDir, 'runs');
    this.modelsDir = join(o.dataDir, 'models');
    this.baseDir = join(o.dataDir, 'base');
    this.stagingDir = join(o.dataDir, '.staging');
    this.maxQueued = o.maxQueued ?? 32;
    this.cancelGraceMs = o.cancelGraceMs ?? 120_000;
    this.events.setMaxListeners(0);
    this.recover();
  }

  /** Startup: installs a crash cut short are finished or undone; jobs a previous server left
   * 'running' or 'queued' are marked 'interrupted' (or 'succeeded' when only their install was
   * left, and it has now been completed). */
  private recover(): void {
    const installs = recoverInstalls(this.modelsDir, this.stagingDir);
    const rows = this.o.store.db.prepare("SELECT id, status FROM jobs WHERE status IN ('running', 'queued')").all() as { id: string; status: string }[];
    for (const r of rows) {
      const job = this.o.store.getJob(r.id);
      if (!job) continue;
      const progress = (job.progress ?? {}) as Partial<JobProgress>;
      if (r.status === 'running' && progress.phase === 'install' && job.characterId && this.installedIsFrom(job.id, job.characterId)) {
        const how = installs.completed.includes(job.characterId) ? 'the install was completed when the server restarted' : 'the server stopped after the install';
        const p = { ...progress, phase: 'done', model: job.characterId, message: `finished: model installed for ${job.characterId} (${how})` };
        this.o.store.updateJob(r.id, { status: 'succeeded', progress: p, error: null });
        continue;
      }
      const message = r.status === 'running'
        ? `the server stopped while this job was running; ${checkpointNote(job.id, join(this.runsDir, job.id))}`
        : 'the server stopped before this job started';
      this.o.store.updateJob(r.id, { status: 'interrupted', error: message });
    }
  }

  /** Whether the model installed for a character is the one this job trained: its manifest (which
   * names the run folder and step) is byte for byte the job's own (runs/<job>/character for a
   * customization, runs/<job>/model for GRPO). */
  private installedIsFrom(jobId: string, characterId: string): boolean {
    const installed = join(this.modelsDir, characterId, CHARACTER_MODEL_FILES.manifest);
    if (!existsSync(installed)) return false;
    const bytes = readFileSync(installed);
    return ['character', 'model'].some((d) => {
      const own = join(this.runsDir, jobId, d, CHARACTER_MODEL_FILES.manifest);
      return existsSync(own) && readFileSync(own).equals(bytes);
    });
  }

  list(): JobRow[] {
    return this.o.store.listJobs();
  }

  get(id: string): JobRow | undefined {
    return /^job-[0-9a-f-]{36}$/.test(id) ? this.o.store.getJob(id) : undefined;
  }

  require(id: string): JobRow {
    const j = this.get(id);
    if (!j) throw new ApiError(404, `no job with id ${JSON.stringify(id)}`, 'not_found_error', 'id', 'job_not_found');
    return j;
  }

  /** Every change to a job (status or progress). Returns the unsubscribe function. */
  subscribe(id: string, f: (e: JobEvent) => void): () => void {
    this.events.on(id, f);
    return () => this.events.off(id, f);
  }

  private emit(job: JobRow, progressChanged: boolean): void {
    this.events.emit(job.id, { job, progressChanged } satisfies JobEvent);
  }

  private hasModel(id: string): boolean {
    return existsSync(join(this.modelsDir, id, CHARACTER_MODEL_FILES.manifest));
  }

  /** Validated request → a queued job (404 for an unknown character, 409 when GRPO or eval has
   * no model to start from, 429 when the queue is full). */
  async submit(req: JobRequest): Promise<JobRow> {
    if (this.closed) throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
    const found = await this.o.library.get(req.character);
    if (!found) throw new ApiError(404, `no character with id ${JSON.stringify(req.character)}`, 'not_found_error', 'character', 'character_not_found');
    const id = found.row.id;
    if (req.kind !== 'customize' && !this.hasModel(id)) {
      throw new ApiError(409, `character '${id}' has no customized model yet: run a 'customize' job first`, 'invalid_request_error', 'character', 'model_not_ready');
    }
    if (this.queue.length >= this.maxQueued) throw new ApiError(429, `too many jobs waiting (${this.queue.length}); try again when one has finished`, 'rate_limit_error', null, 'job_queue_full');
    const job = this.o.store.createJob(req.kind, { options: req.options }, id);
    const progress: JobProgress = { phase: 'queued', step: 0, total: null, metrics: [], samples: [], run_dir: `runs/${job.id}` };
    const row = this.o.store.updateJob(job.id, { progress })!;
    this.queue.push(job.id);
    this.emit(row, true);
    queueMicrotask(() => void this.pump());
    return row;
  }

  /** Queued: cancelled at once. Running: the loop checkpoints and stops (status 'cancelled'). */
  cancel(id: string): JobRow {
    const job = this.require(id);
    if (TERMINAL.has(job.status)) return job;
    const q = this.queue.indexOf(id);
    if (q >= 0) {
      this.queue.splice(q, 1);
      const row = this.o.store.updateJob(id, { status: 'cancelled', progress: { ...(job.progress as object), phase: 'done', message: 'cancelled before it started' } })!;
      this.emit(row, true);
      return row;
    }
    if (this.starting?.id === id) {
      this.starting.cancelled = true;
      const row = this.o.store.updateJob(id, { status: 'cancelled', progress: { ...(job.progress as object), phase: 'done', message: 'cancelled before it started' } })!;
      this.emit(row, true);
      return row;
    }
    const r = this.running;
    if (r && r.id === id) this.stop(r, 'cancel');
    return this.o.store.getJob(id)!;
  }

  private stop(r: Running, why: 'cancel' | 'shutdown'): void {
    if (why === 'cancel') r.cancelRequested = true;
    if (r.stopping) return;
    r.stopping = why;
    if (r.kind === 'eval') {
      // The evaluation runner has no stop signal and nothing to checkpoint: stop the thread.
      void r.worker.terminate();
      return;
    }
    r.worker.postMessage({ type: 'cancel' } satisfies JobWorkerRequest);
    r.graceTimer = setTimeout(() => void r.worker.terminate(), why === 'cancel' ? this.cancelGraceMs : Math.min(this.cancelGraceMs, 10_000));
    r.graceTimer.unref();
    const p = { ...r.progress, message: why === 'cancel' ? 'cancelling: finishing the step and saving a checkpoint' : 'server stopping: saving a checkpoint' };
    this.setProgress(r, p);
  }

  /** Starts the next queued job when none is running. */
  private async pump(): Promise<void> {
    if (this.running || this.starting || this.closed) return;
    const id = this.queue.shift();
    if (!id) return;
    const job = this.o.store.getJob(id);
    if (!job || job.status !== 'queued') return void this.pump();
    const starting = (this.starting = { id, cancelled: false });
    let spec: JobSpec;
    try {
      spec = await this.specOf(job);
    } catch (e) {
      this.starting = null;
      if (!starting.cancelled && !this.closed) {
        const row = this.o.store.updateJob(id, { status: 'failed', error: (e as Error).message })!;
        this.emit(row, false);
      }
      return void this.pump();
    }
    this.starting = null;
    if (starting.cancelled) return void this.pump();
    if (this.closed) {
      const row = this.o.store.updateJob(id, { status: 'interrupted', error: 'the server stopped before this job started' });
      if (row) this.emit(row, false);
      return;
    }
    const progress: JobProgress = { ...(job.progress as JobProgress), phase: spec.kind === 'eval' ? 'eval' : 'train', total: totalOf(spec) };
    if (spec.kind === 'customize' && !spec.base) {
      progress.phase = 'vae';
      progress.vae = { step: 0, total: tinySftConfig(spec.config).vae.steps };
    }
    const worker = new Worker(new URL('./job-worker.js', import.meta.url), { workerData: spec });
    let resolveFinished!: () => void;
    const r: Running = {
      id, kind: spec.kind, worker, progress, cancelRequested: false, stopping: null, graceTimer: null,
      finished: new Promise<void>((res) => (resolveFinished = res)), chain: Promise.resolve(),
    };
    this.running = r;
    const row = this.o.store.updateJob(id, { status: 'running', progress })!;
    this.emit(row, true);

    let outcome: Extract<JobWorkerReply, { type: 'done' | 'error' }> | null = null;
    worker.on('message', (m: JobWorkerReply) => {
      if (m.type === 'done' || m.type === 'error') {
        outcome = m;
        void worker.terminate();
      } else this.onReport(r, m);
    });
    worker.on('error', (e) => {
      outcome ??= { type: 'error', message: e.message };
    });
    worker.on('exit', (code) => {
      if (r.graceTimer) clearTimeout(r.graceTimer);
      const final = outcome ?? { type: 'error' as const, message: `the job worker exited (code ${code}) before the job finished` };
      r.chain = r.chain.then(() => this.finish(r, spec, final)).catch(() => {});
      void r.chain.then(() => {
        this.running = null;
        resolveFinished();
        void this.pump();
      });
    });
  }

  private async specOf(job: JobRow): Promise<JobSpec> {
    const found = job.characterId ? await this.o.library.get(job.characterId) : undefined;
    if (!found) throw new Error('the character was deleted before the job started');
    const c: Character = found.character;
    const runDir = join(this.runsDir, job.id);
    mkdirSync(this.runsDir, { recursive: true });
    const req = JobRequestSchema.parse({ kind: job.kind, character: c.id, options: (job.config as { options?: unknown }).options ?? {} });
    if (req.kind === 'customize') {
      const o = req.options;
      const steps = o.steps ?? 200;
      const config: SftConfigInput = {
        totalSteps: steps,
        saveEvery: Math.min(o.save_every ?? 50, steps),
        vae: { ...(o.vae_steps !== undefined ? { steps: o.vae_steps } : {}) },
        data: {
          characters: [c.id],
          ...(o.image_size !== undefined ? { imageSize: o.image_size } : {}),
          ...(o.vit_image_size !== undefined ? { vitImageSize: o.vit_image_size } : {}),
          ...(o.max_images !== undefined ? { maxImages: o.max_images } : {}),
        },
        ...(o.sample_every !== undefined ? { sampling: { every: o.sample_every } } : {}),
        ...(o.lr !== undefined ? { optim: { lr: o.lr } } : {}),
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
      };
      const base = existsSync(join(this.baseDir, 'config.json')) && existsSync(join(this.baseDir, 'model.safetensors')) ? this.baseDir : null;
      return { id: job.id, runDir, character: c, kind: 'customize', config, base };
    }
    const from = join(this.modelsDir, c.id);
    if (!this.hasModel(c.id)) throw new Error(`character '${c.id}' has no customized model to start from`);
    if (req.kind === 'grpo') {
      const o = req.options;
      const numSteps = o.num_steps ?? DEFAULT_GRPO.numSteps;
      const windowSize = Math.min(o.window_size ?? DEFAULT_GRPO.windowSize, numSteps - 1);
      const windowEnd = Math.min(DEFAULT_GRPO.windowRange[1], Math.max(windowSize, Math.floor(numSteps / 2)));
      const epochs = o.epochs ?? DEFAULT_GRPO.epochs;
      // The job's options over the defaults, checked by the one GRPO schema (GrpoConfigSchema).
      const { from: _from, out: _out, ...config }: GrpoConfig = grpoConfigFrom({
        epochs,
        promptsPerEpoch: o.prompts_per_epoch ?? DEFAULT_GRPO.promptsPerEpoch,
        groupSize: o.group_size ?? DEFAULT_GRPO.groupSize,
        numSteps,
        evalSteps: o.eval_steps ?? DEFAULT_GRPO.evalSteps,
        evalEvery: o.eval_every ?? DEFAULT_GRPO.evalEvery,
        saveEvery: Math.min(o.save_every ?? DEFAULT_GRPO.saveEvery, epochs),
        windowSize,
        windowRange: [0, windowEnd],
        lr: o.lr ?? DEFAULT_GRPO.lr,
        seed: o.seed ?? DEFAULT_GRPO.seed,
        preset: o.preset ?? DEFAULT_GRPO.preset,
      }, from, runDir);
      return { id: job.id, runDir, character: c, kind: 'grpo', config, from };
    }
    const o = req.options;
    return {
      id: job.id, runDir, character: c, kind: 'eval', modelDir: from, independent: o.independent ?? true,
      limits: {
        maxItems: o.max_items ?? 8, maxTokens: o.max_tokens ?? 48, maxAnswerTokens: o.max_answer_tokens ?? 16,
        numTimesteps: o.num_timesteps ?? 20, samplesPerPrompt: o.samples_per_prompt ?? 2,
        ...(o.temperature !== undefined ? { temperature: o.temperature } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}),
      },
    };
  }

  private setProgress(r: Running, p: JobProgress): void {
    r.progress = p;
    r.chain = r.chain.then(() => {
      const row = this.o.store.updateJob(r.id, { progress: p });
      if (row) this.emit(row, true);
    });
  }

  private onReport(r: Running, m: Exclude<JobWorkerReply, { type: 'done' | 'error' }>): void {
    const p: JobProgress = { ...r.progress };
    if (m.type === 'metrics') {
      const last = m.records[m.records.length - 1] as MetricsLine;
      if (m.phase === 'vae') {
        p.phase = 'vae';
        const loss = typeof last.loss === 'number' ? last.loss : undefined;
        p.vae = { step: last.step, total: p.vae?.total ?? null, ...(loss !== undefined ? { loss } : {}) };
        p.message = `VAE stage: step ${last.step}`;
      } else {
        p.phase = 'train';
        let h = p.metrics.slice();
        for (const rec of m.records) if (typeof rec.loss === 'number' && Number.isFinite(rec.loss)) h = pushHistory(h, { step: rec.step, loss: rec.loss });
        p.metrics = h;
        p.step = last.step;
        if (typeof last.loss === 'number') p.loss = last.loss;
        p.latest = numbersOf(last);
        if (!r.stopping) delete p.message;
      }
      this.setProgress(r, p);
    } else if (m.type === 'sample') {
      // The PNG goes into the image store; the progress keeps its hash.
      r.chain = r.chain.then(async () => {
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(await readFile(m.path));
        } catch {
          return;
        }
        const { hash } = await this.o.images.put(bytes);
        const cur = { ...r.progress };
        cur.samples = [...cur.samples, { step: m.step, hash, url: `/v1/images/${hash}` }].slice(-MAX_SAMPLES);
        r.progress = cur;
        const row = this.o.store.updateJob(r.id, { progress: cur });
        if (row) this.emit(row, true);
      });
    } else if (m.type === 'log') {
      p.message = m.line.trim().slice(0, 500);
      this.setProgress(r, p);
    }
  }

  private async finish(r: Running, spec: JobSpec, m: Extract<JobWorkerReply, { type: 'done' | 'error' }>): Promise<void> {
    const p: JobProgress = { ...r.progress };
    // Where the job stopped, before the phase becomes 'done'; the messages name only the
    // checkpoints the run directory really holds (a worker stopped by its grace timer has none
    // of its last steps).
    const where = p.phase === 'vae' ? `during the VAE stage at step ${p.vae?.step ?? 0}` : spec.kind === 'eval' ? 'during the evaluation' : `at step ${p.step}`;
    const note = (): string => (spec.kind === 'eval' ? 'an evaluation keeps no checkpoint' : checkpointNote(spec.id, spec.runDir));
    let status: JobStatus;
    let error: string | null = null;
    if (m.type === 'error') {
      if (r.stopping === 'shutdown') {
        status = 'interrupted';
        error = `the server stopped while this job was running; ${note()}`;
      } else if (r.cancelRequested) status = 'cancelled';
      else {
        status = 'failed';
        error = m.message;
      }
    } else if (m.interrupted || r.cancelRequested) {
      status = r.stopping === 'shutdown' && !r.cancelRequested ? 'interrupted' : 'cancelled';
      if (status === 'interrupted') error = `the server stopped while this job was running; ${note()}`;
    } else {
      status = 'succeeded';
      if (m.modelDir) {
        // Stored before the install starts: a restart after a crash in it knows this job was
        // installing (recover()).
        p.phase = 'install';
        r.progress = p;
        this.o.store.updateJob(r.id, { progress: p });
        try {
          await installModel(m.modelDir, this.modelsDir, spec.character.id, this.stagingDir);
          p.model = spec.character.id;
        } catch (e) {
          status = 'failed';
          error = `training finished but the model could not be installed: ${(e as Error).message}`;
        }
      }
      if (m.reportDir) p.report = `/v1/jobs/${spec.id}/report`;
    }
    p.phase = 'done';
    if (status === 'cancelled') p.message = `cancelled ${where}; ${note()}`;
    else if (status === 'succeeded') p.message = spec.kind === 'eval' ? 'evaluation finished' : `finished: model installed for ${spec.character.id}`;
    else delete p.message;
    r.progress = p;
    const row = this.o.store.updateJob(r.id, { status, progress: p, error });
    if (row) this.emit(row, true);
  }

  /** The evaluation report of an eval job (report.json), or undefined when there is none. */
  async report(id: string, format: 'json' | 'md' | 'html' = 'json'): Promise<string | undefined> {
    const job = this.get(id);
    if (!job || job.kind !== 'eval' || job.status !== 'succeeded') return undefined;
    const name = format === 'json' ? 'report.json' : format === 'md' ? 'report.md' : 'report.html';
    try {
      return await readFile(join(this.runsDir, job.id, name), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Newest succeeded eval job, if any. */
  latestReportJob(): JobRow | undefined {
    return this.list().find((j) => j.kind === 'eval' && j.status === 'succeeded');
  }

  /** Server shutdown: queued jobs become 'interrupted'; a running training job checkpoints
   * (up to 10 s) and is marked 'interrupted'. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of this.queue.splice(0)) {
      const row = this.o.store.updateJob(id, { status: 'interrupted', error: 'the server stopped before this job started' });
      if (row) this.emit(row, false);
    }
    const r = this.running;
    if (r) {
      this.stop(r, 'shutdown');
      await r.finished;
    }
    this.events.removeAllListeners();
  }
}

/** What a job's run directory really holds, in words: the latest complete checkpoint of the
 * run (SFT, GRPO), else of its VAE stage, else none. */
export function checkpointNote(jobId: string, runDir: string): string {
  const run = readLatestCheckpoint(runDir);
  if (run) return `runs/${jobId} keeps the checkpoint of step ${run.step}`;
  if (existsSync(join(runDir, 'vae', 'ae.safetensors'))) return `runs/${jobId}/vae keeps the finished VAE stage (no training checkpoint yet)`;
  const vae = readLatestCheckpoint(join(runDir, 'vae'));
  if (vae) return `runs/${jobId}/vae keeps the VAE stage's checkpoint of step ${vae.step}`;
  return 'no checkpoint was saved';
}

function totalOf(spec: JobSpec): number | null {
  if (spec.kind === 'customize') return typeof spec.config.totalSteps === 'number' ? spec.config.totalSteps : null;
  if (spec.kind === 'grpo') return spec.config.epochs;
  return null;
}

/** The data folder of an app: where its database lives (or, for an in-memory database, the
 * folder holding its image store). */
export function dataDirOf(store: Store, images: ImageStore): string {
  return store.path === ':memory:' ? dirname(images.root) : dirname(store.path);
}
