// The report's data model: one row per metric, one cell per column (a model run, the copy
// baseline or a chance baseline), every cell naming the evaluator that produced it. A null value
// always comes with the reason it was not measured; a column a metric does not apply to has no cell.

export interface MetricCell {
  /** The number, or null when not measured (see notMeasured). */
  value: number | null;
  /** Which scorer / evaluator produced it, e.g. 'rule:rouge-l', 'fallback:colour-words', 'judge:gpt-4o@api…'. */
  evaluator: string;
  /** Items that contributed. */
  n: number;
  /** Why there is no value (judge not configured, no weights, no references, …). */
  notMeasured?: string;
  /** Extra facts (parse failures, judge failures, max-over-references variant, …). */
  detail?: Record<string, number | string>;
}

export type ColumnKind = 'model' | 'copy' | 'chance';

export interface ReportColumn {
  label: string;
  kind: ColumnKind;
  /** Model folder for model runs. */
  modelDir?: string;
  /** The model's own provenance (stage, run dir, step) when it has one. */
  provenance?: Record<string, string | number>;
  description: string;
}

export interface MetricRow {
  key: string;
  title: string;
  description: string;
  unit: '%' | 'score 1-10' | 'cosine' | 'F1' | 'BLEU' | 'distance' | 'reward';
  higherIsBetter: boolean;
  /** The paper's number as reported by secondary sources, for context only. */
  paper?: { value: number; source: string };
  cells: Record<string, MetricCell>;
}

export interface TaskSample {
  column: string;
  input: string;
  output: string;
  reference?: string;
  /** Image path relative to the report folder. */
  image?: string;
  scores?: Record<string, number | null>;
}

export interface TaskReport {
  name: TaskName;
  title: string;
  /** Which test items, and caveats. */
  notes: string[];
  items: number;
  metrics: MetricRow[];
  samples: TaskSample[];
}

export const TASK_NAMES = ['knowledge', 'memorization', 'personality', 'roleplay', 'vqa', 't2i', 'multimodal', 'multimodalThinking'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

export interface EvaluatorInfo {
  id: string;
  description: string;
  /** Set when the evaluator was asked for and could not run. */
  unavailable?: string;
}

export interface EvalReport {
  format: 'unicharacter-eval/1';
  createdAt: string;
  character: { id: string; display: string; category: string };
  split: { dir: string | null; heldOutImages: number; heldOutScenes: number };
  columns: ReportColumn[];
  evaluators: EvaluatorInfo[];
  settings: Record<string, number | string | boolean>;
  tasks: TaskReport[];
  warnings: string[];
}
