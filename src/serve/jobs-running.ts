// The worker thread of the job that is running (job-worker.ts) and how it is stopped
// (docs/architecture.md "Jobs"): cancel and shutdown ask the loop to stop after its step (and
// checkpoint). A cancel that the worker has not finished by CANCEL_DEADLINE_MS is settled without
// it (jobs.ts), and a backstop timer ends a thread that stops far later than that, or that does
// not checkpoint within a shutdown's grace; an evaluation has nothing to save and stops at once.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { JobProgress } from './jobs-progress.js';
import type { StopState, WorkerEnd } from './jobs-outcome.js';
import type { JobSpec, JobWorkerData, JobWorkerReply, JobWorkerRequest } from './job-worker.js';
import type { ServerJobKind } from './schemas.js';

export interface RunningJob extends StopState {
  id: string;
  kind: ServerJobKind;
  worker: Worker;
  progress: JobProgress;
  /** Resolves once the job's final status is stored. */
  finished: Promise<void>;
  /** What the worker runs. */
  spec: JobSpec;
  /** Ends the thread of a stopping job that does not end by itself (the backstop). */
  graceTimer: NodeJS.Timeout | null;
  /** Fires CANCEL_DEADLINE_MS after a cancel (stopJobWorker's onDeadline). */
  deadlineTimer: NodeJS.Timeout | null;
  /** Set when the backstop, not the worker itself, ended a stopping job's thread. */
  endedByTimer: boolean;
  /** Set when the job's terminal status was stored at the cancel deadline, before its worker
   * ended (jobs.ts); its reports are ignored from then on. */
  settledAtDeadline: boolean;
  /** Set to 1 on cancel or shutdown; the worker polls it inside long steps (job-worker.ts). */
  stopFlag: Int32Array;
  /** Store writes in order: progress updates and the final status never overtake each other. */
  chain: Promise<void>;
}

/**
 * How long after a cancel a training job (the VAE stage, Unified-SFT, Character-GRPO) has to end
 * by itself before its terminal status is stored without waiting for it. The loop reads the stop
 * flag after every step and skips the step's sample, and a GRPO epoch also before every rollout
 * and sampler step, inside the scoring pass and between update micro-steps, so a GRPO worker ends
 * by itself; but an SFT or VAE step under way cannot be cut, and on a busy machine one SFT step
 * and its checkpoint take seconds. The thread is not ended then, so that it finishes its step and
 * checkpoint in the background and the run resumes from there (the next job waits for it; ending
 * a thread is safe, docs/engine.md "Worker threads", but loses the step), and the message, read
 * from disk at the deadline, is read again when it has ended. 500 ms leaves
 * half the second the cancel promise (docs/serving.md 8) to storing the status on a busy machine.
 */
export const CANCEL_DEADLINE_MS = 500;

/** A shutdown's most time for a running job to checkpoint before its thread is ended. */
export const SHUTDOWN_GRACE_MS = 10_000;

export type WorkerReport = Exclude<JobWorkerReply, { type: 'done' | 'error' }>;

/** Starts the worker of `spec`. Reports go to `onReport`; when the thread has exited, `onEnd`
 * gets its last word (or an error saying it exited without one) and, once that is stored,
 * `finished` resolves. */
export function startJobWorker(
  spec: JobSpec, progress: JobProgress, onReport: (r: RunningJob, m: WorkerReport) => void, onEnd: (r: RunningJob, m: WorkerEnd) => Promise<void>,
): RunningJob {
  const stopFlag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL('./job-worker.js', import.meta.url), { workerData: { spec, stopFlag } satisfies JobWorkerData });
  let resolveFinished!: () => void;
  const r: RunningJob = {
    id: spec.id, kind: spec.kind, spec, worker, progress, cancelRequested: false, stopping: null, stopFlag,
    graceTimer: null, deadlineTimer: null, endedByTimer: false, settledAtDeadline: false,
    finished: new Promise<void>((res) => (resolveFinished = res)), chain: Promise.resolve(),
  };
  let outcome: WorkerEnd | null = null;
  worker.on('message', (m: JobWorkerReply) => {
    if (m.type === 'done' || m.type === 'error') {
      outcome = m;
      // It ended by itself: the timers must not claim it.
      clearTimers(r);
      void worker.terminate();
    } else onReport(r, m);
  });
  worker.on('error', (e) => {
    outcome ??= { type: 'error', message: e.message };
  });
  worker.on('exit', (code) => {
    clearTimers(r);
    if (r.endedByTimer) releaseRunLocks(spec.runDir);
    const final = outcome ?? { type: 'error' as const, message: `the job worker exited (code ${code}) before the job finished` };
    r.chain = r.chain.then(() => onEnd(r, final)).catch(() => {});
    void r.chain.then(resolveFinished);
  });
  return r;
}

/** The run locks (run-dir.ts) an ended thread left in its run directory and its VAE stage's:
 * they name this process, which lives on, so a later `--resume` would take them as held. */
function releaseRunLocks(runDir: string): void {
  for (const lock of [join(runDir, 'run.lock'), join(runDir, 'vae', 'run.lock')]) {
    try {
      if (Number(readFileSync(lock, 'utf8').trim()) === process.pid) rmSync(lock, { force: true });
    } catch {
      // no lock there
    }
  }
}

function clearTimers(r: RunningJob): void {
  if (r.graceTimer) clearTimeout(r.graceTimer);
  if (r.deadlineTimer) clearTimeout(r.deadlineTimer);
  r.graceTimer = r.deadlineTimer = null;
}

/** (Re)arms the backstop: the thread is ended after `ms` unless it has ended by then. */
function armBackstop(r: RunningJob, ms: number): void {
  if (r.graceTimer) clearTimeout(r.graceTimer);
  r.graceTimer = setTimeout(() => {
    r.endedByTimer = true;
    void r.worker.terminate();
  }, ms);
  r.graceTimer.unref();
}

/** Asks the running job to stop; returns false when it was already stopping (a shutdown then
 * still shortens the backstop to its grace). A cancelled training job's `onDeadline` runs
 * CANCEL_DEADLINE_MS later unless the worker has ended; its thread is ended after `graceMs`. On
 * shutdown it may checkpoint for `graceMs`, at most SHUTDOWN_GRACE_MS. */
export function stopJobWorker(r: RunningJob, why: 'cancel' | 'shutdown', graceMs: number, onDeadline?: () => void): boolean {
  if (why === 'cancel') r.cancelRequested = true;
  const shutdownGrace = Math.min(graceMs, SHUTDOWN_GRACE_MS);
  if (r.stopping) {
    if (why === 'shutdown' && r.kind !== 'eval') armBackstop(r, shutdownGrace);
    return false;
  }
  r.stopping = why;
  if (r.kind === 'eval') {
    // The evaluation runner has no stop signal and nothing to checkpoint: stop the thread.
    void r.worker.terminate();
    return false;
  }
  Atomics.store(r.stopFlag, 0, 1);
  r.worker.postMessage({ type: 'cancel' } satisfies JobWorkerRequest);
  armBackstop(r, why === 'shutdown' ? shutdownGrace : graceMs);
  if (why === 'cancel' && onDeadline) {
    r.deadlineTimer = setTimeout(onDeadline, CANCEL_DEADLINE_MS);
    r.deadlineTimer.unref();
  }
  return true;
}
