// The chance baselines of the multiple-choice metrics (docs/dataset.md 3.7): a uniformly random
// letter, and always the most frequent answer key of the item set.
import { mcqChance } from '../mcq.js';
import type { ReportColumn, TaskName } from '../report-types.js';
import type { EvalContext } from './context.js';
import { limit } from './context.js';
import { RULE, measured, type TaskTable } from './table.js';

/** Scores both chance columns into the knowledge and VQA MCQ rows; returns the columns. */
export function chanceColumns(ctx: EvalContext, tab: (n: TaskName) => TaskTable): ReportColumn[] {
  const { c, limits } = ctx;
  const chanceK = mcqChance(limit(c.tests.knowledgeMcq, limits.maxItems));
  const chanceV = mcqChance(limit(c.vqaMcq, limits.maxItems));
  const nK = Math.min(c.tests.knowledgeMcq.length, limits.maxItems);
  const nV = Math.min(c.vqaMcq.length, limits.maxItems);
  tab('knowledge').set('knowledge.mcqAccuracy', 'chance: uniform', measured(nK ? 100 * chanceK.uniform : NaN, RULE.chance, nK));
  tab('knowledge').set('knowledge.mcqAccuracy', 'chance: majority key', measured(100 * chanceK.majorityKey, RULE.chance, nK, chanceK.majority ? { key: chanceK.majority } : undefined));
  tab('vqa').set('vqa.mcqAccuracy', 'chance: uniform', measured(nV ? 100 * chanceV.uniform : NaN, RULE.chance, nV));
  tab('vqa').set('vqa.mcqAccuracy', 'chance: majority key', measured(100 * chanceV.majorityKey, RULE.chance, nV, chanceV.majority ? { key: chanceV.majority } : undefined));
  return [
    { label: 'chance: uniform', kind: 'chance', description: 'a uniformly random letter (1 in 4)' },
    { label: 'chance: majority key', kind: 'chance', description: 'always the most frequent answer key of the item set (keys are skewed, docs/dataset.md 3.7)' },
  ];
}
