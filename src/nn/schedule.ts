// Learning-rate schedules as pure functions of the step: lr(step), where step counts the
// optimizer steps already taken (0 for the first). They follow the Hugging Face schedules that
// BAGEL's trainer uses (docs/method.md 2.6): get_constant_schedule_with_warmup and
// get_cosine_with_min_lr_schedule_with_warmup, so during warmup lr(step) = lr * step / warmup
// (0 at step 0, as there).
export type Schedule = (step: number) => number;

/** A flat learning rate, after an optional linear warmup. */
export function constantSchedule(lr: number, options: { warmupSteps?: number } = {}): Schedule {
  const warmup = options.warmupSteps ?? 0;
  return (step) => (step < warmup ? (lr * step) / Math.max(1, warmup) : lr);
}

export interface CosineOptions {
  /** Peak learning rate, reached at the end of warmup. */
  lr: number;
  warmupSteps: number;
  /** The step at which the cosine reaches minLr (and stays there). */
  totalSteps: number;
  /** Floor of the decay (default 0). */
  minLr?: number;
}

/**
 * Linear warmup from 0 to lr over warmupSteps, then a half cosine from lr down to minLr at
 * totalSteps:  lr(s) = minLr + (lr - minLr) * 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup))).
 */
export function warmupCosineSchedule(o: CosineOptions): Schedule {
  const minLr = o.minLr ?? 0;
  if (o.totalSteps < o.warmupSteps) throw new RangeError(`warmupCosineSchedule: totalSteps ${o.totalSteps} < warmupSteps ${o.warmupSteps}`);
  return (step) => {
    if (step < o.warmupSteps) return (o.lr * step) / Math.max(1, o.warmupSteps);
    const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
    return minLr + (o.lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
