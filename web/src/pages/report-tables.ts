// An evaluation report (report.json, format unicharacter-eval/1: src/eval/report-types.ts) as the
// report's own tables: one per task, a row per metric, a column per run or baseline; every cell
// shows its value, evaluator and item count, a "not measured" cell its reason, and "—" a column the
// metric does not apply to (as report.md and report.html do, docs/architecture.md "Evaluation").
import { h } from '../dom.js';

interface Cell {
  value: number | null;
  evaluator: string;
  n: number;
  notMeasured?: string;
}
interface Metric {
  key: string;
  title: string;
  description: string;
  unit: string;
  paper?: { value: number; source: string };
  cells: Record<string, Cell>;
}
interface Task {
  name: string;
  title: string;
  notes: string[];
  items: number;
  metrics: Metric[];
}
export interface EvalReportJson {
  format: string;
  createdAt: string;
  character: { id: string; display: string; category: string };
  columns: { label: string; kind: string; description: string }[];
  tasks: Task[];
  warnings: string[];
}

export function isEvalReport(v: unknown): v is EvalReportJson {
  const r = v as Partial<EvalReportJson> | null;
  return !!r && typeof r === 'object' && typeof r.format === 'string' && r.format.startsWith('unicharacter-eval/') && Array.isArray(r.tasks) && Array.isArray(r.columns);
}

/** The same rounding as the report's own files (src/eval/report.ts formatValue). */
export function formatValue(v: number, unit: string): string {
  if (unit === '%') return `${v.toFixed(1)}%`;
  if (unit === 'score 1-10') return v.toFixed(2);
  return v.toFixed(3);
}

function cellElement(m: Metric, cell: Cell | undefined): HTMLElement {
  if (!cell) return h('td', { class: 'na', title: 'does not apply' }, '—');
  if (cell.value === null) return h('td', { class: 'not-measured' }, 'not measured', h('small', {}, cell.notMeasured ?? ''));
  return h('td', { 'data-value': cell.value }, formatValue(cell.value, m.unit), h('small', {}, `${cell.evaluator} · n=${cell.n}`));
}

function taskTable(r: EvalReportJson, t: Task): HTMLElement {
  const cols = r.columns.map((c) => c.label);
  return h(
    'section',
    { class: 'report-task', 'data-task': t.name },
    h('h2', {}, t.title),
    t.notes.map((n) => h('p', { class: 'notice' }, n)),
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'metrics report-table' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Metric'), h('th', { scope: 'col' }, 'Unit'), cols.map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, 'Paper'))),
        h(
          'tbody',
          {},
          t.metrics.map((m) =>
            h('tr', { 'data-metric': m.key }, h('th', { scope: 'row', title: m.description }, m.title), h('td', {}, m.unit), cols.map((c) => cellElement(m, m.cells[c])), h('td', {}, m.paper ? String(m.paper.value) : '—')),
          ),
        ),
      ),
    ),
  );
}

export function reportTables(r: EvalReportJson): HTMLElement[] {
  return [
    h('p', {}, `${r.character.display} (${r.character.id}, ${r.character.category}) — ${r.createdAt}`),
    h('ul', { class: 'report-columns' }, r.columns.map((c) => h('li', {}, h('strong', {}, c.label), ` (${c.kind}): ${c.description}`))),
    ...r.tasks.map((t) => taskTable(r, t)),
    ...(r.warnings.length ? [h('section', { class: 'report-warnings' }, h('h2', {}, 'Warnings'), h('ul', {}, r.warnings.map((w) => h('li', {}, w))))] : []),
  ];
}
