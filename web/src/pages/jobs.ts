// Jobs (train, eval): the list from /v1/jobs, refreshed while the page is open, with a loss curve
// and sample images when a job's progress carries them.
import { ApiError, apiJson, authImage, type Job } from '../api.js';
import { lossChart, lossPoints } from '../chart.js';
import { clear, h, notice } from '../dom.js';

const POLL_MS = 2000;

function progressLine(p: unknown): string | null {
  if (!p || typeof p !== 'object') return null;
  const r = p as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof r.step === 'number') parts.push(typeof r.total === 'number' ? `step ${r.step} / ${r.total}` : `step ${r.step}`);
  if (typeof r.loss === 'number') parts.push(`loss ${r.loss.toPrecision(4)}`);
  if (typeof r.message === 'string') parts.push(r.message);
  return parts.length ? parts.join(' · ') : null;
}

function sampleUrls(p: unknown): string[] {
  if (!p || typeof p !== 'object') return [];
  const s = (p as Record<string, unknown>).samples;
  if (!Array.isArray(s)) return [];
  return s.flatMap((e) => (typeof e === 'string' ? [e] : e && typeof e === 'object' && typeof (e as { url?: unknown }).url === 'string' ? [(e as { url: string }).url] : [])).slice(-8);
}

function jobCard(j: Job): HTMLElement {
  const pts = lossPoints(j.progress);
  const p = j.progress && typeof j.progress === 'object' ? (j.progress as Record<string, unknown>) : {};
  const pct = typeof p.step === 'number' && typeof p.total === 'number' && p.total > 0 ? Math.min(1, p.step / p.total) : null;
  const line = progressLine(j.progress);
  const samples = sampleUrls(j.progress);
  return h(
    'li',
    { class: `job ${j.status}`, 'data-id': j.id },
    h('h2', {}, `${j.kind} · ${j.character_id ?? 'no character'}`, ' ', h('span', { class: `badge ${j.status}` }, j.status)),
    h('p', { class: 'meta' }, `${j.id} · updated ${new Date(j.updated_at * 1000).toLocaleString()}`),
    pct !== null ? h('progress', { max: 1, value: pct, 'aria-label': 'progress' }) : null,
    line ? h('p', {}, line) : null,
    j.error ? notice(j.error, 'error') : null,
    pts.length >= 2 ? lossChart(pts, `Loss of ${j.id}`) : null,
    samples.length ? h('div', { class: 'samples' }, samples.map((u) => authImage(u, 'training sample', 'sample'))) : null,
  );
}

export async function jobsPage(main: HTMLElement, signal: AbortSignal): Promise<void> {
  clear(main);
  const list = h('ul', { class: 'jobs', id: 'job-list', 'aria-live': 'polite' });
  main.append(h('h1', {}, 'Jobs'), list);
  const refresh = async (): Promise<boolean> => {
    let jobs: Job[];
    try {
      jobs = (await apiJson<{ data: Job[] }>('/v1/jobs')).data;
    } catch (e) {
      if (signal.aborted) return false;
      clear(list);
      const missing = e instanceof ApiError && e.status === 404;
      list.append(h('li', {}, notice(missing ? 'This server has no jobs API yet.' : `Could not load jobs: ${(e as Error).message}`, missing ? 'info' : 'error')));
      return !missing;
    }
    if (signal.aborted) return false;
    // Keep the open <details>/focus stable: only rebuild when something changed.
    const key = JSON.stringify(jobs.map((j) => [j.id, j.updated_at, j.status]));
    if (list.dataset.key === key) return true;
    list.dataset.key = key;
    clear(list);
    if (jobs.length === 0) list.append(h('li', { class: 'empty' }, notice('No jobs yet. Training and evaluation jobs appear here with live progress.')));
    for (const j of jobs) list.append(jobCard(j));
    return true;
  };
  if (!(await refresh())) return;
  const timer = setInterval(() => void refresh(), POLL_MS);
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}
