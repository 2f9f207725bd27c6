// What a job's run directory really holds, and the start-up pass over jobs a previous server
// left behind (docs/architecture.md "Jobs"). A server that stops or dies with a job running
// leaves the row 'running'; the next start marks every such job (and every queued one)
// 'interrupted', so none stays 'running' forever, naming the checkpoint its run directory
// really holds. An install the crash cut short is finished or undone first (recoverInstalls); a
// job that died installing is 'succeeded' when the model now in place is its own.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHARACTER_MODEL_FILES } from '../character/index.js';
import { readLatestCheckpoint } from '../train/index.js';
import type { Store } from './db.js';
import type { JobDirs } from './jobs-dirs.js';
import type { JobProgress } from './jobs-progress.js';
import { recoverInstalls } from './model-install.js';

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

/** Whether the model installed for a character is the one this job trained: its manifest (which
 * names the run folder and step) is byte for byte the job's own (runs/<job>/character for a
 * customization, runs/<job>/model for GRPO). */
function installedIsFrom(d: JobDirs, jobId: string, characterId: string): boolean {
  const installed = join(d.modelsDir, characterId, CHARACTER_MODEL_FILES.manifest);
  if (!existsSync(installed)) return false;
  const bytes = readFileSync(installed);
  return ['character', 'model'].some((sub) => {
    const own = join(d.runsDir, jobId, sub, CHARACTER_MODEL_FILES.manifest);
    return existsSync(own) && readFileSync(own).equals(bytes);
  });
}

/** Start-up: installs a crash cut short are finished or undone; jobs left 'running' or 'queued'
 * are marked 'interrupted' (or 'succeeded' when only their install was left, now completed). */
export function recoverJobs(store: Store, d: JobDirs): void {
  const installs = recoverInstalls(d.modelsDir, d.stagingDir);
  const rows = store.db.prepare("SELECT id, status FROM jobs WHERE status IN ('running', 'queued')").all() as { id: string; status: string }[];
  for (const r of rows) {
    const job = store.getJob(r.id);
    if (!job) continue;
    const progress = (job.progress ?? {}) as Partial<JobProgress>;
    if (r.status === 'running' && progress.phase === 'install' && job.characterId && installedIsFrom(d, job.id, job.characterId)) {
      const how = installs.completed.includes(job.characterId) ? 'the install was completed when the server restarted' : 'the server stopped after the install';
      const p = { ...progress, phase: 'done', model: job.characterId, message: `finished: model installed for ${job.characterId} (${how})` };
      store.updateJob(r.id, { status: 'succeeded', progress: p, error: null });
      continue;
    }
    const message = r.status === 'running'
      ? `the server stopped while this job was running; ${checkpointNote(job.id, join(d.runsDir, job.id))}`
      : 'the server stopped before this job started';
    store.updateJob(r.id, { status: 'interrupted', error: message });
  }
}
