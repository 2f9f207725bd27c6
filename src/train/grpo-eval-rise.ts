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
   * The epoch-to-epoch noise of the evaluation curve (before, then every epoch): the standard
   * deviation of its successive differences, over sqrt(2) (the differences' mean, the trend, is
   * taken out). NaN with fewer than 3 differences.
   */
  epochNoise: number;
  /** The larger of seedSe and epochNoise (those that are finite); the rise should exceed 2x this. */
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
  const noise = Math.max(...[seedSe, epochNoise].filter(Number.isFinite), 0);
  return { before, after, rise: after - before, seedSe, epochNoise, noise, curve };
}
