// The judge's mean grade over a task's items (docs/architecture.md "Evaluation"): failed calls are
// counted in the cell's detail, never filled in.
import { mean } from '../text-metrics.js';
import type { JudgeClient, JudgeTask } from '../judge.js';
import type { MetricCell } from '../report-types.js';
import { notMeasured } from './table.js';

/** Judge grades for a list of items; failures are counted, never filled in. */
export async function judgeMean(judge: JudgeClient, task: JudgeTask, slots: Record<string, string>[]): Promise<{ cell: MetricCell; scores: (number | null)[] }> {
  const scores: (number | null)[] = [];
  const errors: string[] = [];
  for (const s of slots) {
    try {
      scores.push((await judge.grade(task, s)).score);
    } catch (e) {
      scores.push(null);
      errors.push((e as Error).message);
    }
  }
  const ok = scores.filter((x): x is number => x !== null);
  if (ok.length === 0) {
    return { cell: { ...notMeasured(judge.id, `every judge call failed (${errors.length}); first error: ${errors[0] ?? 'no items'}`), detail: { failures: errors.length } }, scores };
  }
  const detail: Record<string, number | string> = { failures: errors.length };
  if (errors.length) detail.firstError = errors[0]!;
  return { cell: { value: mean(ok), evaluator: judge.id, n: ok.length, detail }, scores };
}
