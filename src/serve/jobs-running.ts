// The worker thread of the job that is running (job-worker.ts) and how it is stopped
// (docs/architecture.md "Jobs"): cancel and shutdown ask the loop to checkpoint and stop, and a
// grace timer ends the thread when it does not; an evaluation has nothing to save and stops at once.
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
  graceTimer: NodeJS.Timeout | null;
  /** Set to 1 on cancel or shutdown; the worker polls it inside long steps (job-worker.ts). */
  stopFlag: Int32Array;
  /** Store writes in order: progress updates and the final status never overtake each other. */
  chain: Promise<void>;
}

/**
 * How long a cancelled GRPO job may take before its thread is ended. Its epoch is dropped when
 * cancelled part-way anyway (the worker polls the stop flag between rollouts and update steps,
 * but not inside a scoring pass), and checkpoints are written atomically (temporary folder, then
 * rename), so ending it loses nothing a checkpoint holds; the final message names the checkpoint
 * really left (jobs-recover.ts checkpointNote). 500 ms leaves half the second the cancel promise
 * (docs/serving.md) to ending the thread and storing the final status on a busy machine.
 */
export const GRPO_CANCEL_DEADLINE_MS = 500;

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
    id: spec.id, kind: spec.kind, worker, progress, cancelRequested: false, stopping: null, graceTimer: null, stopFlag,
    finished: new Promise<void>((res) => (resolveFinished = res)), chain: Promise.resolve(),
  };
  let outcome: WorkerEnd | null = null;
  worker.on('message', (m: JobWorkerReply) => {
    if (m.type === 'done' || m.type === 'error') {
      outcome = m;
      void worker.terminate();
    } else onReport(r, m);
  });
  worker.on('error', (e) => {
    outcome ??= { type: 'error', message: e.message };
  });
  worker.on('exit', (code) => {
    if (r.graceTimer) clearTimeout(r.graceTimer);
    const final = outcome ?? { type: 'error' as const, message: `the job worker exited (code ${code}) before the job finished` };
    r.chain = r.chain.then(() => onEnd(r, final)).catch(() => {});
    void r.chain.then(resolveFinished);
  });
  return r;
}

/** Asks the running job to stop; returns false when it was already stopping. A training job
 * checkpoints first, within `graceMs` (at most 10 s on shutdown; a cancelled GRPO job
 * GRPO_CANCEL_DEADLINE_MS) before its thread is ended. */
export function stopJobWorker(r: RunningJob, why: 'cancel' | 'shutdown', graceMs: number): boolean {
  if (why === 'cancel') r.cancelRequested = true;
  if (r.stopping) return false;
  r.stopping = why;
  if (r.kind === 'eval') {
    // The evaluation runner has no stop signal and nothing to checkpoint: stop the thread.
    void r.worker.terminate();
    return false;
  }
  Atomics.store(r.stopFlag, 0, 1);
  r.worker.postMessage({ type: 'cancel' } satisfies JobWorkerRequest);
  const grace = why === 'shutdown' ? Math.min(graceMs, 10_000) : r.kind === 'grpo' ? Math.min(graceMs, GRPO_CANCEL_DEADLINE_MS) : graceMs;
  r.graceTimer = setTimeout(() => void r.worker.terminate(), grace);
  r.graceTimer.unref();
  return true;
}
