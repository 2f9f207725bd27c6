// How a job ends (docs/architecture.md "Jobs"): its terminal status from the worker's last word
// and why it was being stopped, and the final message, which names only the checkpoints the run
// directory really holds (a worker stopped by its grace timer has none of its last steps).
import { join } from 'node:path';
import { readMetrics } from '../train/index.js';
import type { JobStatus } from './db.js';
import type { JobProgress } from './jobs-progress.js';
import type { JobSpec, JobWorkerReply } from './job-worker.js';

export type WorkerEnd = Extract<JobWorkerReply, { type: 'done' | 'error' }>;

export interface StopState {
  cancelRequested: boolean;
  stopping: 'cancel' | 'shutdown' | null;
}

const SHUTDOWN = 'the server stopped while this job was running';

/** The terminal status and error of a job whose worker ended with `m` (a success still has its
 * model to install). */
export function endingOf(m: WorkerEnd, s: StopState, note: () => string): { status: JobStatus; error: string | null } {
  if (m.type === 'error') {
    if (s.stopping === 'shutdown') return { status: 'interrupted', error: `${SHUTDOWN}; ${note()}` };
    if (s.cancelRequested) return { status: 'cancelled', error: null };
    return { status: 'failed', error: m.message };
  }
  if (m.interrupted || s.cancelRequested) {
    if (s.stopping === 'shutdown' && !s.cancelRequested) return { status: 'interrupted', error: `${SHUTDOWN}; ${note()}` };
    return { status: 'cancelled', error: null };
  }
  return { status: 'succeeded', error: null };
}

/** The progress of a job whose thread was ended (its last reports went with it), brought up to
 * the last step its run folder's metrics record. */
export function withStepsOnDisk(p: JobProgress, runDir: string): JobProgress {
  const lastStep = (path: string): number | null => readMetrics(path).at(-1)?.step ?? null;
  const train = lastStep(join(runDir, 'metrics.jsonl'));
  if (train !== null && train > p.step) return { ...p, phase: 'train', step: train };
  const vae = p.phase === 'vae' ? lastStep(join(runDir, 'vae', 'metrics.jsonl')) : null;
  if (vae !== null && vae > (p.vae?.step ?? 0)) return { ...p, vae: { total: null, ...p.vae, step: vae } };
  return p;
}

/** Where the job stopped, in words, from its progress before the phase becomes 'done'. */
export function whereStopped(p: JobProgress, spec: JobSpec): string {
  if (p.phase === 'vae') return `during the VAE stage at step ${p.vae?.step ?? 0}`;
  return spec.kind === 'eval' ? 'during the evaluation' : `at step ${p.step}`;
}

/** The message of a finished job (none for a failed or interrupted one: its error says it);
 * `how` says how a cancelled job's worker ended when it did not end by itself in time. */
export function finalMessage(status: JobStatus, where: string, spec: JobSpec, note: () => string, how?: string): string | undefined {
  if (status === 'cancelled') return `cancelled ${where}${how ? ` (${how})` : ''}; ${note()}`;
  if (status === 'succeeded') return spec.kind === 'eval' ? 'evaluation finished' : `finished: model installed for ${spec.character.id}`;
  return undefined;
}
