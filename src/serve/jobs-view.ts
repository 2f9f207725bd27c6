// The API's view of a job (GET /v1/jobs, docs/architecture.md "Jobs") and where a server's job
// files live.
import { dirname } from 'node:path';
import type { JobRow, JobStatus, Store } from './db.js';
import type { ImageStore } from './images.js';

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

/** The data folder of an app: where its database lives (or, for an in-memory database, the
 * folder holding its image store). */
export function dataDirOf(store: Store, images: ImageStore): string {
  return store.path === ':memory:' ? dirname(images.root) : dirname(store.path);
}
