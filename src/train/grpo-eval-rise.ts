// How much a Character-GRPO run raised its evaluation reward, and against what noise
// (docs/grpo-settings.md 1): read from a run's metrics (evalAtStart and an evaluation every epoch,
// on the same held-out prompts and fixed seeds each time).

export interface EvalRise {
  /** eval_start_reward: the starting model on the evaluation prompts. */
  before: number;
  /** The last epoch's eval_reward. */
  after: number;
  rise: number;
  /** eval_start_reward_se: the standard error over the per-seed means (NaN with one seed). */
  seedSe: number;
  /**
   * The standard error of the rise itself over the seeds: of the per-seed differences last epoch
   * minus start (eval_reward_seed<j> - eval_start_reward_seed<j>). Before and after are scored on
   * the same prompts from the same seeds, so what a seed adds to both cancels; NaN when the runs
   * did not log per-seed means (or with one seed).
   */
  pairedSe: number;
  /**
   * The epoch-to-epoch noise of the evaluation curve (before, then every epoch): the standard
   * deviation of its successive differences, over sqrt(2) (the differences' mean, the trend, is
   * taken out). NaN with fewer than 3 differences.
   */
  epochNoise: number;
  /**
   * The rise should exceed 2x this: the larger of pairedSe and epochNoise, or, for runs without
   * per-seed means, of seedSe and epochNoise (those that are finite).
   */
  noise: number;
  /** The evaluation reward before, then after each epoch. */
  curve: number[];
}

/** The rise of a run's metrics records; an error naming what is missing. */
export function evalRiseOf(metrics: readonly Record<string, unknown>[]): EvalRise {
  const num = (r: Record<string, unknown> | undefined, k: string): number => (typeof r?.[k] === 'number' ? (r[k] as number) : Number.NaN);
  const before = num(metrics[0], 'eval_start_reward');
  if (!Number.isFinite(before)) throw new Error('evalRiseOf: the first metrics record has no eval_start_reward (run with evalAtStart: true)');
  const evals = metrics.map((r) => num(r, 'eval_reward'));
  if (evals.some((v) => !Number.isFinite(v))) throw new Error('evalRiseOf: an epoch without eval_reward (run with evalEvery: 1)');
  const curve = [before, ...evals];
  const after = curve[curve.length - 1]!;
  const diffs = curve.slice(1).map((v, i) => v - curve[i]!);
  let epochNoise = Number.NaN;
  if (diffs.length >= 3) {
    const m = diffs.reduce((a, b) => a + b, 0) / diffs.length;
    epochNoise = Math.sqrt(diffs.reduce((a, d) => a + (d - m) ** 2, 0) / (diffs.length - 1) / 2);
  }
  const seedSe = num(metrics[0], 'eval_start_reward_se');
  const pairedSe = pairedSeedSe(metrics[0]!, metrics[metrics.length - 1]!);
  const noise = Math.max(...[Number.isFinite(pairedSe) ? pairedSe : seedSe, epochNoise].filter(Number.isFinite), 0);
  return { before, after, rise: after - before, seedSe, pairedSe, epochNoise, noise, curve };
}

/** The standard error of the per-seed differences last - start; NaN without two seeds logged in both. */
function pairedSeedSe(first: Record<string, unknown>, last: Record<string, unknown>): number {
  const diffs: number[] = [];
  for (let j = 0; ; j++) {
    const b = first[`eval_start_reward_seed${j}`];
    const a = last[`eval_reward_seed${j}`];
    if (typeof a !== 'number' || typeof b !== 'number') break;
    diffs.push(a - b);
  }
  if (diffs.length < 2) return Number.NaN;
  const m = diffs.reduce((x, y) => x + y, 0) / diffs.length;
  const sd = Math.sqrt(diffs.reduce((x, d) => x + (d - m) ** 2, 0) / (diffs.length - 1));
  return sd / Math.sqrt(diffs.length);
}
