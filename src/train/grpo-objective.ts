// The clipped policy objective of Character-GRPO (docs/method.md 3.6, 6.2):
//   r = exp(log p_new - log p_old),  loss = max(-A r, -A clip(r, 1 - eps_lo, 1 + eps_hi)).
import { ops, scope, type Tensor } from '../torch/index.js';

export interface ClipRange {
  lo: number;
  hi: number;
}

export interface PolicyLoss {
  loss: Tensor;
  /** Whether the ratio fell outside the clip range (for the clip-fraction metric). */
  clipped: boolean;
  ratio: number;
}

/** The per-step loss for one rollout's window step; logProbNew carries the graph. */
export function clippedPolicyLoss(logProbNew: Tensor, logProbOld: number, advantage: number, clip: ClipRange): PolicyLoss {
  return scope(() => {
    const ratio = logProbNew.sub(logProbOld).exp();
    const unclipped = ratio.mul(-advantage);
    const clippedRatio = ratio.clamp(1 - clip.lo, 1 + clip.hi);
    const loss = ops.maximum(unclipped, clippedRatio.mul(-advantage));
    const r = ratio.item();
    return { loss, clipped: r < 1 - clip.lo || r > 1 + clip.hi, ratio: r };
  });
}

/** The KL term of docs/method.md 3.6 when beta > 0: beta * mean((mu_theta - mu_ref)^2) / (2 sigma^2). */
export function klPenalty(meanTheta: Tensor, meanRef: Tensor, sigma: number, beta: number): Tensor {
  return scope(() => meanTheta.sub(meanRef).pow(2).mean().mul(beta / (2 * sigma * sigma)));
}
