// Public surface of the evaluation layer (docs/architecture.md "Evaluation"): the benchmark runner, its tasks, its metrics,
// the judge client, the independent evaluators, the report writers and the CLI entry.
export { runEval } from './run-eval.js';
export {
  EvalConfigSchema, EvalLimitsSchema, EvalEvaluatorsSchema, EvalRunSchema, JudgeConfigSchema, EVAL_LIMIT_FIELDS, parseEvalConfig, evalConfigIssues, resolveLimits,
  type EvalConfig, type EvalConfigInput, type EvalOptions, type EvalRun, type EvalEvaluators, type EvalLimits, type ResolvedLimits,
} from './config.js';
export { resolveSplitFolder, withSplit } from './split.js';
export { EVAL_TASKS, nearestTrainingImage, answerAboutImage, PAPER_NUMBERS, COPY_LABEL, type EvalTask, type EvalContext } from './tasks/index.js';
export { metricTokens, lcsLength, rougeL, ngramCounts, corpusBleu, sentenceBleu, normalizeVqaAnswer, vqaExactMatch, mean, type RougeL, type BleuResult } from './text-metrics.js';
export { mcqPrompt, parseMcqChoice, mcqChance, type ChanceBaselines } from './mcq.js';
export { JudgeClient, parseJudgeReply, fillTemplate, loadJudgePrompts, promptsDir, chatCompletionsUrl, JUDGE_API_KEY_ENV, JUDGE_TASKS, JUDGE_SCALE, type JudgeConfig, type JudgeTask, type JudgeVerdict, type JudgePrompts } from './judge.js';
export { NsfwjsMobileNetEmbedder, loadFaceEvaluator, humanModelsDir, cosine, cosineTable, FACE_EVALUATOR_UNAVAILABLE, type IndependentImageEmbedder } from './independent.js';
export { writeReportFiles, reportMarkdown, reportHtml, formatValue, REPORT_FILES } from './report.js';
export * from './report-types.js';
export { evalCommand, resolveCharacter, EVAL_HELP } from './cli.js';
