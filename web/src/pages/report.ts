// The evaluation report: fetched from a configurable URL (?report=URL in the hash, else the last
// one used, else DEFAULT_REPORT_URL). HTML renders in a sandboxed frame (no scripts); an
// evaluation report.json as its metric tables (report-tables.ts); other JSON as a table of its
// numbers when it has some, else as formatted JSON.
import { apiFetch, errorMessage } from '../api.js';
import { clear, h, notice } from '../dom.js';
import { isEvalReport, reportTables } from './report-tables.js';

export const DEFAULT_REPORT_URL = (import.meta.env.VITE_REPORT_URL as string | undefined) ?? '/v1/eval/report';
const STORAGE = 'unichar.reportUrl';

function flatten(v: unknown, prefix = '', out: [string, number | string][] = []): [string, number | string][] {
  if (typeof v === 'number' || typeof v === 'string') out.push([prefix || 'value', v]);
  else if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

export async function reportPage(main: HTMLElement, signal: AbortSignal, query: URLSearchParams): Promise<void> {
  clear(main);
  const url = query.get('report') ?? localStorage.getItem(STORAGE) ?? DEFAULT_REPORT_URL;
  const input = h('input', { type: 'text', id: 'report-url', name: 'report-url', value: url, spellcheck: false });
  const form = h('form', { class: 'report-form' }, h('label', { for: 'report-url' }, 'Report URL'), input, h('button', { type: 'submit' }, 'Load'));
  const out = h('div', { id: 'report', 'aria-live': 'polite' });
  main.append(h('h1', {}, 'Evaluation report'), form, out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    localStorage.setItem(STORAGE, input.value.trim());
    location.hash = `#/report?report=${encodeURIComponent(input.value.trim())}`;
  });

  let res: Response;
  try {
    res = await apiFetch(url, { signal });
  } catch (e) {
    if (!signal.aborted) out.append(notice(`Could not fetch ${url}: ${(e as Error).message}`, 'error'));
    return;
  }
  if (res.status === 404) {
    out.append(notice(`No evaluation report yet at ${url}. Run an evaluation, or point this page at a report file.`));
    return;
  }
  if (!res.ok) {
    out.append(notice(`${url}: ${await errorMessage(res)}`, 'error'));
    return;
  }
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  if (signal.aborted) return;
  if (/html/i.test(type)) {
    // sandbox without allow-scripts: the report's markup shows, its scripts never run.
    out.append(h('iframe', { class: 'report-frame', title: 'Evaluation report', sandbox: '', srcdoc: text }));
    return;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    out.append(h('pre', { class: 'report-text' }, text));
    return;
  }
  if (isEvalReport(data)) {
    out.append(...reportTables(data), h('details', {}, h('summary', {}, 'Settings and raw JSON'), h('pre', { class: 'report-text' }, JSON.stringify(data, null, 2))));
    return;
  }
  const rows = flatten(data).filter(([, v]) => typeof v === 'number');
  if (rows.length) {
    out.append(
      h(
        'table',
        { class: 'metrics' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Metric'), h('th', { scope: 'col' }, 'Value'))),
        h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, typeof v === 'number' ? String(Number(v.toPrecision(6))) : v)))),
      ),
    );
  }
  out.append(h('details', { open: rows.length === 0 }, h('summary', {}, 'Raw JSON'), h('pre', { class: 'report-text' }, JSON.stringify(data, null, 2))));
}
