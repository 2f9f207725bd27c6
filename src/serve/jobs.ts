// Training and evaluation jobs run by the server, with progress over SSE (docs/architecture.md
// "Jobs"). A job is a row in the `jobs` table; the JobManager queues them and runs one at a
// time, each in its own worker thread (jobs-running.ts, job-worker.ts) so the event loop keeps
// serving chat, and keeps the row's `progress` JSON (jobs-progress.ts) current from what the
// worker reports. The rest is one concept per file: the folders (jobs-dirs.ts), a row → the
// worker's spec (jobs-spec.ts), how a job ends (jobs-outcome.ts), the start-up recovery
// (jobs-recover.ts), the API's view (jobs-view.ts); the request schemas are with the others
// (schemas.ts).
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CharacterLibrary } from './characters.js';
import type { JobRow, Store } from './db.js';
import { ApiError } from './errors.js';
import type { ImageStore } from './images.js';
import type { JobSpec } from './job-worker.js';
import { hasModel, jobDirs, type JobDirs } from './jobs-dirs.js';
import { endingOf, finalMessage, whereStopped, withStepsOnDisk, type WorkerEnd } from './jobs-outcome.js';
import { queuedProgress, withMetrics, withSample, type JobProgress } from './jobs-progress.js';
import { checkpointNote, recoverJobs } from './jobs-recover.js';
import { startJobWorker, stopJobWorker, type RunningJob, type WorkerReport } from './jobs-running.js';
import { jobSpecOf, startedProgress } from './jobs-spec.js';
import { TERMINAL } from './jobs-view.js';
import { installModel } from './model-install.js';
import type { JobRequest } from './schemas.js';

export {
  CustomizeOptionsSchema, GrpoOptionsSchema, EvalOptionsSchema, JobRequestSchema, type JobRequest, type ServerJobKind,
} from './schemas.js';
export { MAX_HISTORY, MAX_SAMPLES, pushHistory, type JobProgress } from './jobs-progress.js';
export { jobJson, TERMINAL, dataDirOf } from './jobs-view.js';
export { checkpointNote } from './jobs-recover.js';
export { installModel } from './model-install.js';

export interface JobManagerOptions {
  store: Store;
  images: ImageStore;
  library: CharacterLibrary;
  /** `<dataDir>/runs`, `<dataDir>/models`, `<dataDir>/base`, `<dataDir>/.staging` (jobs-dirs.ts). */
  dataDir: string;
  /** Jobs waiting beyond the running one before 429 (default 32). */
  maxQueued?: number;
  /** How long a cancelled training job's worker may run on before its thread is ended (ms,
   * default 120 s; the job's status is stored at jobs-running.ts CANCEL_DEADLINE_MS anyway). */
  cancelGraceMs?: number;
}

export type JobEvent = { job: JobRow; progressChanged: boolean };

export class JobManager {
  readonly runsDir: string;
  readonly modelsDir: string;
  readonly baseDir: string;
  readonly stagingDir: string;
  private readonly dirs: JobDirs;
  private readonly queue: string[] = [];
  private running: RunningJob | null = null;
  /** A job between the queue and its worker (its spec is being built): at most one. */
  private starting: { id: string; cancelled: boolean } | null = null;
  private readonly events = new EventEmitter();
  private closed = false;
  private readonly maxQueued: number;
  private readonly cancelGraceMs: number;

  constructor(private readonly o: JobManagerOptions) {
    this.dirs = jobDirs(o.dataDir);
    ({ runsDir: this.runsDir, modelsDir: this.modelsDir, baseDir: this.baseDir, stagingDir: this.stagingDir } = this.dirs);
    this.maxQueued = o.maxQueued ?? 32;
    this.cancelGraceMs = o.cancelGraceMs ?? 120_000;
    this.events.setMaxListeners(0);
    recoverJobs(o.store, this.dirs);
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

  private emit(job: JobRow | undefined, progressChanged: boolean): void {
    if (job) this.events.emit(job.id, { job, progressChanged } satisfies JobEvent);
  }

  private update(id: string, patch: Parameters<Store['updateJob']>[1], progressChanged = true): JobRow | undefined {
    const row = this.o.store.updateJob(id, patch);
    this.emit(row, progressChanged);
    return row;
  }

  /** Validated request → a queued job (404 for an unknown character, 409 when GRPO or eval has
   * no model to start from, 429 when the queue is full). */
  async submit(req: JobRequest): Promise<JobRow> {
    if (this.closed) throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
    const found = await this.o.library.get(req.character);
    if (!found) throw new ApiError(404, `no character with id ${JSON.stringify(req.character)}`, 'not_found_error', 'character', 'character_not_found');
    const id = found.row.id;
    if (req.kind !== 'customize' && !hasModel(this.dirs, id)) {
      throw new ApiError(409, `character '${id}' has no customized model yet: run a 'customize' job first`, 'invalid_request_error', 'character', 'model_not_ready');
    }
    if (this.queue.length >= this.maxQueued) throw new ApiError(429, `too many jobs waiting (${this.queue.length}); try again when one has finished`, 'rate_limit_error', null, 'job_queue_full');
    const job = this.o.store.createJob(req.kind, { options: req.options }, id);
    const row = this.update(job.id, { progress: queuedProgress(job.id) })!;
    this.queue.push(job.id);
    queueMicrotask(() => void this.pump());
    return row;
  }

  /** Queued: cancelled at once. Running: the loop checkpoints and stops (status 'cancelled'). */
  cancel(id: string): JobRow {
    const job = this.require(id);
    if (TERMINAL.has(job.status)) return job;
    const q = this.queue.indexOf(id);
    if (q >= 0 || this.starting?.id === id) {
      if (q >= 0) this.queue.splice(q, 1);
      else this.starting!.cancelled = true;
      return this.update(id, { status: 'cancelled', progress: { ...(job.progress as object), phase: 'done', message: 'cancelled before it started' } })!;
    }
    if (this.running?.id === id) this.stop(this.running, 'cancel');
    return this.o.store.getJob(id)!;
  }

  private stop(r: RunningJob, why: 'cancel' | 'shutdown'): void {
    if (!stopJobWorker(r, why, this.cancelGraceMs, () => this.settleAtDeadline(r))) return;
    const message = why === 'cancel' ? 'cancelling: stopping after the step under way' : 'server stopping: saving a checkpoint';
    this.setProgress(r, { ...r.progress, message });
  }

  /** A cancelled job whose worker is still finishing its step at the cancel deadline
   * (jobs-running.ts CANCEL_DEADLINE_MS): 'cancelled' now, naming the checkpoint on disk now.
   * The worker goes on to its end in the background (the queue waits for it), and `finish` then
   * names the checkpoint it really left. */
  private settleAtDeadline(r: RunningJob): void {
    if (r.settledAtDeadline) return;
    r.settledAtDeadline = true;
    const p = withStepsOnDisk(r.progress, r.spec.runDir);
    const where = whereStopped(p, r.spec);
    p.phase = 'done';
    p.stopped_by = 'deadline';
    p.message = finalMessage('cancelled', where, r.spec, () => checkpointNote(r.spec.id, r.spec.runDir), 'its worker is finishing its step')!;
    r.progress = p;
    r.chain = r.chain.then(() => void this.update(r.id, { status: 'cancelled', progress: p, error: null }));
  }

  /** Starts the next queued job when none is running. */
  private async pump(): Promise<void> {
    if (this.running || this.starting || this.closed) return;
    const id = this.queue.shift();
    if (!id) return;
    const job = this.o.store.getJob(id);
    if (!job || job.status !== 'queued') return void this.pump();
    const starting = (this.starting = { id, cancelled: false });
    const spec = await this.specOf(job).catch((e: Error) => e);
    this.starting = null;
    if (starting.cancelled) return void this.pump();
    if (spec instanceof Error) {
      if (!this.closed) this.update(id, { status: 'failed', error: spec.message }, false);
      return void this.pump();
    }
    if (this.closed) return void this.update(id, { status: 'interrupted', error: 'the server stopped before this job started' }, false);
    const progress = startedProgress(job.progress as JobProgress, spec);
    this.running = startJobWorker(spec, progress, (r, m) => this.onReport(r, m), async (r, m) => {
      try {
        await this.finish(r, spec, m);
      } finally {
        this.running = null;
        void this.pump();
      }
    });
    this.update(id, { status: 'running', progress });
  }

  private async specOf(job: JobRow): Promise<JobSpec> {
    const found = job.characterId ? await this.o.library.get(job.characterId) : undefined;
    if (!found) throw new Error('the character was deleted before the job started');
    return jobSpecOf(job, found.character, this.dirs);
  }

  private setProgress(r: RunningJob, p: JobProgress): void {
    r.progress = p;
    r.chain = r.chain.then(() => void this.update(r.id, { progress: p }));
  }

  private onReport(r: RunningJob, m: WorkerReport): void {
    if (r.settledAtDeadline) return; // its status is stored; finish() reads the rest from disk
    if (m.type === 'metrics') this.setProgress(r, withMetrics(r.progress, m.phase, m.records, r.stopping !== null));
    else if (m.type === 'log') this.setProgress(r, { ...r.progress, message: m.line.trim().slice(0, 500) });
    else {
      // A sample: the PNG goes into the image store; the progress keeps its hash.
      r.chain = r.chain.then(async () => {
        const bytes = await readFile(m.path).catch(() => null);
        if (!bytes) return;
        const { hash } = await this.o.images.put(new Uint8Array(bytes));
        r.progress = withSample(r.progress, m.step, hash);
        this.update(r.id, { progress: r.progress });
      });
    }
  }

  private async finish(r: RunningJob, spec: JobSpec, m: WorkerEnd): Promise<void> {
    // A worker ended by the backstop, or settled without, may have done steps it never reported.
    const p: JobProgress = r.endedByTimer || r.settledAtDeadline ? withStepsOnDisk(r.progress, spec.runDir) : { ...r.progress };
    const where = whereStopped(p, spec);
    const note = (): string => (spec.kind === 'eval' ? 'an evaluation keeps no checkpoint' : checkpointNote(spec.id, spec.runDir));
    let { status, error } = endingOf(m, r, note);
    if (status === 'succeeded' && m.type === 'done') {
      if (m.modelDir) {
        const failed = await this.install(r, p, spec, m.modelDir);
        if (failed) [status, error] = ['failed', failed];
      }
      if (m.reportDir) p.report = `/v1/jobs/${spec.id}/report`;
    }
    p.phase = 'done';
    if (r.stopping) p.stopped_by = r.endedByTimer || r.settledAtDeadline ? 'deadline' : 'worker';
    const how = r.endedByTimer ? 'its worker was ended' : r.settledAtDeadline ? 'its worker finished its step after the cancel deadline' : undefined;
    const message = finalMessage(status, where, spec, note, how);
    if (message === undefined) delete p.message;
    else p.message = message;
    r.progress = p;
    this.update(r.id, { status, progress: p, error });
  }

  /** Installs a finished job's model; returns the error, or null. The 'install' phase is stored
   * before it starts: a restart after a crash in it knows this job was installing (jobs-recover.ts). */
  private async install(r: RunningJob, p: JobProgress, spec: JobSpec, modelDir: string): Promise<string | null> {
    p.phase = 'install';
    r.progress = p;
    this.o.store.updateJob(r.id, { progress: p });
    try {
      await installModel(modelDir, this.modelsDir, spec.character.id, this.stagingDir);
      p.model = spec.character.id;
      return null;
    } catch (e) {
      return `training finished but the model could not be installed: ${(e as Error).message}`;
    }
  }

  /** The evaluation report of an eval job (report.json), or undefined when there is none. */
  async report(id: string, format: 'json' | 'md' | 'html' = 'json'): Promise<string | undefined> {
    const job = this.get(id);
    if (!job || job.kind !== 'eval' || job.status !== 'succeeded') return undefined;
    const name = format === 'json' ? 'report.json' : format === 'md' ? 'report.md' : 'report.html';
    return readFile(join(this.runsDir, job.id, name), 'utf8').catch(() => undefined);
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
    for (const id of this.queue.splice(0)) this.update(id, { status: 'interrupted', error: 'the server stopped before this job started' }, false);
    const r = this.running;
    if (r) {
      this.stop(r, 'shutdown');
      await r.finished;
    }
    this.events.removeAllListeners();
  }
}
