// The RoleScape-20 benchmark for one character (docs/architecture.md "Evaluation"): every task of
// the paper's evaluation (src/eval/tasks/, one file each), run for each given model folder (base /
// SFT / SFT+GRPO, labelled by the caller), plus the "return the nearest training image" copy
// baseline for the image metrics and chance baselines for the multiple-choice tasks. Every number
// names the scorer that produced it; judge-only metrics without a judge, and metrics without
// weights or references, are null with a reason.
import { mkdirSync } from 'node:fs';
import { CharacterModel } from '../character/index.js';
import { loadEvaluators } from './evaluators.js';
import { parseEvalConfig, resolveLimits, type EvalOptions, type EvalRun, type ResolvedLimits } from './config.js';
import type { EvalReport, ReportColumn, TaskName } from './report-types.js';
import { writeReportFiles } from './report.js';
import { withHeldOutAfter, withSplit } from './split.js';
import { imageBytes } from '../data/index.js';
import { EVAL_TASKS, chanceColumns, chwOf, copyBaselineColumn, type EvalContext, type TaskTable } from './tasks/index.js';

/** Runs every task on one model folder into its column. */
async function modelColumn(ctx: EvalContext, tables: ReadonlyMap<TaskName, TaskTable>, run: EvalRun): Promise<ReportColumn> {
  ctx.log(`eval: loading ${run.label} from ${run.modelDir}`);
  const cm = await CharacterModel.load(run.modelDir);
  try {
    for (const task of EVAL_TASKS) {
      ctx.log(`eval: ${run.label}: ${task.progress}`);
      await task.run(ctx, tables.get(task.name)!, run.label, cm);
    }
    return { label: run.label, kind: 'model', modelDir: run.modelDir, provenance: cm.manifest.provenance, description: `character model folder ${run.modelDir}` };
  } finally {
    cm.dispose();
  }
}

function reportSettings(limits: ResolvedLimits, judge: string): EvalReport['settings'] {
  return {
    maxItems: Number.isFinite(limits.maxItems) && limits.maxItems < Number.MAX_SAFE_INTEGER ? limits.maxItems : 'all',
    maxTokens: limits.maxTokens, maxAnswerTokens: limits.maxAnswerTokens, maxThinkTokens: limits.maxThinkTokens, numTimesteps: limits.numTimesteps,
    samplesPerPrompt: limits.samplesPerPrompt, temperature: limits.temperature, seed: limits.seed, judge,
  };
}

/** Runs the benchmark and writes report.json, report.md and report.html into `out`; the config is
 * checked first (EvalConfigSchema), an error naming every bad field. */
export async function runEval(o: EvalOptions): Promise<EvalReport> {
  const { character, log: logTo, ...config } = o;
  const cfg = parseEvalConfig(config);
  const log = logTo ?? (() => {});
  const { character: c, warnings } = cfg.split ? withSplit(character, cfg.split)
    : { character: cfg.heldOutAfter !== undefined ? withHeldOutAfter(character, cfg.heldOutAfter) : character, warnings: [] };
  mkdirSync(cfg.out, { recursive: true });
  const limits = resolveLimits(cfg.limits);
  const heldOutBytes = c.tests.heldOutImages.map(imageBytes);
  const ev = await loadEvaluators(cfg, c, heldOutBytes, warnings, log);
  const tables = new Map(EVAL_TASKS.map((task) => [task.name, task.define(c)]));
  for (const task of EVAL_TASKS) tables.get(task.name)!.items = task.items(c, limits);
  const tab = (n: TaskName): TaskTable => tables.get(n)!;
  const columns: ReportColumn[] = [];
  try {
    const ctx: EvalContext = {
      ...ev, out: cfg.out, c, limits, log,
      heldOut: { bytes: heldOutBytes, chw: await Promise.all(heldOutBytes.map(chwOf)) },
      heldOutIndependent: ev.independent && heldOutBytes.length ? await ev.independent.embed(heldOutBytes) : null,
    };
    for (const run of cfg.runs) columns.push(await modelColumn(ctx, tables, run));
    if (cfg.copyBaseline) columns.push(await copyBaselineColumn(ctx, tab));
    columns.push(...chanceColumns(ctx, tab));
  } finally {
    ev.dispose();
  }
  const report: EvalReport = {
    format: 'unicharacter-eval/1',
    createdAt: new Date().toISOString(),
    character: { id: c.id, display: c.names.display, category: c.category },
    split: { dir: cfg.split ?? (cfg.heldOutAfter !== undefined ? `images after the first ${cfg.heldOutAfter}` : null), heldOutImages: c.tests.heldOutImages.length, heldOutScenes: c.tests.heldOutScenes.length },
    columns,
    evaluators: ev.info,
    settings: reportSettings(limits, ev.judge ? ev.judge.id : 'none'),
    tasks: [...tables.values()].map((x) => x.report()),
    warnings,
  };
  writeReportFiles(report, cfg.out);
  return report;
}
