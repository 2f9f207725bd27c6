// One task's part of the report (docs/architecture.md "Evaluation"): its metric rows, one cell per
// column, each cell naming its evaluator; a metric not measured is null with the reason.
import type { MetricCell, MetricRow, TaskName, TaskReport, TaskSample } from '../report-types.js';

/** Secondary-source numbers for the paper's model (context only; protocols not published). */
export const PAPER_NUMBERS = {
  knowledgeMcq: 77,
  vqa: 84,
  memorization: 5.45,
  t2iClipI: 0.88,
  multimodalClipI: 0.86,
} as const;
export const PAPER_SOURCE = 'UniCharacter paper as reported by secondary sources (evaluation protocol not published)';

/** The evaluator ids of the rule-based metrics. */
export const RULE = {
  mcq: 'rule:mcq-letter-parse',
  rouge: 'rule:rouge-l-f1',
  bleu: 'rule:bleu-4-corpus',
  sbleu: 'rule:bleu-4-sentence-smooth1',
  vqa: 'rule:vqa-normalised-exact-match',
  chance: 'rule:chance',
} as const;

export const NO_JUDGE = 'judge-only metric: no judge configured (--judge-url/--judge-model); not estimated';

export class TaskTable {
  readonly rows = new Map<string, MetricRow>();
  readonly samples: TaskSample[] = [];
  readonly notes: string[] = [];
  items = 0;
  constructor(readonly name: TaskName, readonly title: string) {}
  def(key: string, r: Omit<MetricRow, 'key' | 'cells'>): void {
    this.rows.set(key, { key, ...r, cells: {} });
  }
  set(key: string, column: string, cell: MetricCell): void {
    const row = this.rows.get(key);
    if (!row) throw new Error(`eval: metric ${key} is not defined`);
    row.cells[column] = cell;
  }
  report(): TaskReport {
    return { name: this.name, title: this.title, notes: this.notes, items: this.items, metrics: [...this.rows.values()], samples: this.samples };
  }
}

/** A measured cell; a value that is not finite (no items) becomes a not-measured cell. */
export const measured = (value: number, evaluator: string, n: number, detail?: MetricCell['detail']): MetricCell =>
  (Number.isFinite(value) ? { value, evaluator, n, ...(detail ? { detail } : {}) } : { value: null, evaluator, n, notMeasured: 'no items to score' });
export const notMeasured = (evaluator: string, reason: string): MetricCell => ({ value: null, evaluator, n: 0, notMeasured: reason });
