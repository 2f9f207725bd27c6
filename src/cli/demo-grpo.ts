// The demo's Character-GRPO stage settings and its evaluation curve (docs/grpo-settings.md 2):
// the `project` preset's CPU-size learning settings, 2 of the character's T2I prompts held out and
// evaluated from fixed seeds before the first update and after every epoch, and the printout of
// that curve with its noise band and the before/after values.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { evalRiseOf, readMetrics, type EvalRise, type GrpoConfig } from '../train/index.js';

/** The demo's GRPO sizes (the learning settings come from the `project` preset). */
export function demoGrpoSettings(quick: boolean): Partial<GrpoConfig> {
  const evaluation = { heldOutPrompts: 2, evalAtStart: true, evalEvery: 1 };
  return quick
    ? { ...evaluation, epochs: 1, promptsPerEpoch: 2, groupSize: 2, numSteps: 6, windowSize: 2, windowRange: [0, 3], evalSeeds: 2, evalSteps: 6, saveEvery: 1 }
    : { ...evaluation, epochs: 10, promptsPerEpoch: 4, groupSize: 4, numSteps: 10, windowSize: 3, windowRange: [0, 5], evalSeeds: 4, evalSteps: 10, saveEvery: 5 };
}

/** The seed part of the noise: the paired error of the rise where the run logged per-seed means. */
function seedPart(r: EvalRise): string {
  const level = `the level's seed standard error ${r.seedSe.toFixed(3)}`;
  return Number.isFinite(r.pairedSe) ? `the rise's standard error over the seeds, paired, ${r.pairedSe.toFixed(3)}; ${level}` : level;
}

/** The lines that show a finished GRPO run's evaluation curve (none when the run logged no starting evaluation). */
export function grpoEvalCurveLines(grpoRun: string): string[] {
  const path = join(grpoRun, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  const metrics = readMetrics(path) as unknown as Record<string, unknown>[];
  if (metrics.length === 0 || typeof metrics[0]!.eval_start_reward !== 'number') return [];
  const r = evalRiseOf(metrics);
  const se = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? ` +- ${v.toFixed(3)}` : '');
  const rows = [`before ${r.before.toFixed(3)}${se(metrics[0]!.eval_start_reward_se)}`];
  metrics.forEach((m, i) => rows.push(`${i + 1}: ${r.curve[i + 1]!.toFixed(3)}${se(m.eval_reward_se)}`));
  const verdict = r.rise > 2 * r.noise ? 'more than' : 'NOT more than';
  return [
    `evaluation reward on the held-out prompts per epoch (+- standard error over the fixed seeds): ${rows.join(', ')}`,
    `before ${r.before.toFixed(3)}, after ${r.after.toFixed(3)}: rise ${r.rise.toFixed(3)}, ${verdict} 2 x the noise ` +
      `${r.noise.toFixed(3)} (${seedPart(r)}, epoch-to-epoch ${Number.isFinite(r.epochNoise) ? r.epochNoise.toFixed(3) : 'n/a (under 3 epochs)'})`,
  ];
}
