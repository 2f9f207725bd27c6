// A job's `progress` JSON (docs/architecture.md "Jobs") and how the worker's reports change it:
//
//   { phase, step, total, loss, metrics: [{step, loss}] (at most MAX_HISTORY points, thinned
//     evenly when longer), latest: {last metrics line}, samples: [{step, hash, url}] (images in
//     the image store), message, vae?: {step, total, loss}, run_dir, model?, report?,
//     stopped_by?: 'worker' | 'deadline' }
//
// `stopped_by` is set on a job that was cancelled or stopped by a shutdown while running: 'worker'
// when its loop stopped by itself in time, 'deadline' when its status was stored at the cancel
// deadline while the worker finished its step, or its thread was ended (jobs-running.ts).
import type { MetricsLine } from './job-worker.js';

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
  stopped_by?: 'worker' | 'deadline';
}

/** A queued job's progress: nothing done yet, its run directory named. */
export function queuedProgress(jobId: string): JobProgress {
  return { phase: 'queued', step: 0, total: null, metrics: [], samples: [], run_dir: `runs/${jobId}` };
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

/** The progress after new metrics lines of the VAE stage or of training. A stopping job keeps
 * its "cancelling" message. */
export function withMetrics(p0: JobProgress, phase: 'vae' | 'train', records: MetricsLine[], stopping: boolean): JobProgress {
  const p: JobProgress = { ...p0 };
  const last = records[records.length - 1]!;
  if (phase === 'vae') {
    p.phase = 'vae';
    const loss = typeof last.loss === 'number' ? last.loss : undefined;
    p.vae = { step: last.step, total: p.vae?.total ?? null, ...(loss !== undefined ? { loss } : {}) };
    p.message = `VAE stage: step ${last.step}`;
    return p;
  }
  p.phase = 'train';
  let h = p.metrics.slice();
  for (const rec of records) if (typeof rec.loss === 'number' && Number.isFinite(rec.loss)) h = pushHistory(h, { step: rec.step, loss: rec.loss });
  p.metrics = h;
  p.step = last.step;
  if (typeof last.loss === 'number') p.loss = last.loss;
  p.latest = numbersOf(last);
  if (!stopping) delete p.message;
  return p;
}

/** The progress with one more sample image (the newest MAX_SAMPLES are kept). */
export function withSample(p: JobProgress, step: number | null, hash: string): JobProgress {
  return { ...p, samples: [...p.samples, { step, hash, url: `/v1/images/${hash}` }].slice(-MAX_SAMPLES) };
}
