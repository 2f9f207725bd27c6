// The tasks of the benchmark (docs/architecture.md "Evaluation"), one file each, in report order,
// and the baseline columns scored beside the models.
import type { EvalTask } from './context.js';
import { knowledgeTask } from './knowledge.js';
import { memorizationTask, personalityTask } from './probes.js';
import { rolePlayTask } from './roleplay.js';
import { vqaTask } from './vqa.js';
import { t2iTask } from './t2i.js';
import { multimodalTask } from './multimodal.js';
import { multimodalThinkingTask } from './multimodal-thinking.js';

/** Every task, in the order of TASK_NAMES (the report's order). */
export const EVAL_TASKS: readonly EvalTask[] = [knowledgeTask, memorizationTask, personalityTask, rolePlayTask, vqaTask, t2iTask, multimodalTask, multimodalThinkingTask];

export { knowledgeTask, memorizationTask, personalityTask, rolePlayTask, vqaTask, t2iTask, multimodalTask, multimodalThinkingTask };
export { answerAboutImage } from './vqa.js';
export { t2iPrompts, type T2iPromptItem } from './t2i.js';
export { COPY_LABEL, nearestTrainingImage, copyBaselineColumn } from './copy-baseline.js';
export { chanceColumns } from './chance.js';
export { chwOf, saveImage, type EvalContext, type EvalTask, type ImageOut } from './context.js';
export { TaskTable, measured, notMeasured, PAPER_NUMBERS, RULE } from './table.js';
