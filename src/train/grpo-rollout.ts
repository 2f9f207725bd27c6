// Rollouts for Character-GRPO (docs/method.md 3.3): the T2I sampler with text CFG at every step,
// deterministic outside a window of `windowSize` SDE transitions that record log-probabilities.
// The stored window (x_b .. x_{b+size}) lets the policy update recompute log p with grad.
import { noGrad, randn, scope, type Tensor } from '../torch/index.js';
import {
  type Bagel, type KVCache, newContext, prefillText, latentVelocity, latentVelocities, cfgCombine, timestepGrid, sdeSigma, sdeStep,
  unpatchify, latentTokenDim,
} from '../model/index.js';

export interface RolloutOptions {
  /** Latent grid in tokens per side. */
  grid: number;
  numSteps: number;
  timestepShift: number;
  cfgTextScale: number;
  /** a: noise level inside the window (reference 1.3). */
  noiseLevel: number;
  windowSize: number;
  /** Window starts are drawn from [range[0], range[1] - windowSize]. */
  windowRange: [number, number];
  /** The window start; drawn with `random` when absent. */
  windowStart?: number;
  random?: () => number;
  /** Called before every sampler step; throws to abandon the rollout (a stop request, loop.ts
   * StepInterrupted), which then leaves no tensor behind. */
  checkStop?: () => void;
}

export interface WindowStep {
  j: number;
  tau: number;
  tauNext: number;
  sigma: number;
  x: Tensor;
  next: Tensor;
  logProb: number;
}

export interface Rollout {
  /** Final latent tokens [h*w, p*p*z]. */
  tokens: Tensor;
  /** Final latent [z, 2h, 2w] for the VAE. */
  latent: Tensor;
  window: WindowStep[];
  windowStart: number;
  dispose(): void;
}

/** The prompt contexts of plain T2I: cond (the prompt) and text-uncond (empty). */
export interface PromptContexts {
  cond: KVCache;
  uncond: KVCache;
  dispose(): void;
}

export function promptContexts(model: Bagel, promptIds: number[]): PromptContexts {
  const cond = newContext(model);
  prefillText(model, cond, promptIds);
  const uncond = newContext(model);
  return { cond, uncond, dispose: () => { cond.dispose(); uncond.dispose(); } };
}

/**
 * The CFG-combined velocity (global renorm, min 0), with or without a graph; the conditional and
 * unconditional velocities come from one decoder pass over both contexts (latentVelocities).
 */
export function cfgVelocity(model: Bagel, ctx: PromptContexts, x: Tensor, tau: number, grid: number, scale: number, grad: boolean): Tensor {
  return scope(() => {
    if (!(scale > 1)) return latentVelocity(model, ctx.cond, x, tau, grid, grid, { grad });
    const [cond, uncond] = latentVelocities(model, [ctx.cond, ctx.uncond], x, tau, grid, grid, { grad }) as [Tensor, Tensor];
    return cfgCombine(cond, uncond, null, { textScale: scale, imgScale: 1, renormMin: 0, renormType: 'global' });
  });
}

export function drawWindowStart(o: Pick<RolloutOptions, 'windowSize' | 'windowRange' | 'random'>): number {
  const lo = o.windowRange[0];
  const hi = o.windowRange[1] - o.windowSize; // inclusive, as Python's randint
  if (hi < lo) throw new Error(`window range [${o.windowRange}] is shorter than the window size ${o.windowSize}`);
  return lo + Math.floor((o.random ?? Math.random)() * (hi - lo + 1));
}

/** One rollout from fresh noise. */
export function rollout(model: Bagel, ctx: PromptContexts, o: RolloutOptions): Rollout {
  const taus = timestepGrid(o.numSteps, o.timestepShift);
  if (o.windowRange[1] > taus.length - 1) throw new Error(`window range end ${o.windowRange[1]} exceeds the ${taus.length - 1} transitions`);
  const b = o.windowStart ?? drawWindowStart(o);
  const window: WindowStep[] = [];
  let x = randn([o.grid * o.grid, latentTokenDim(model.config)]).keep();
  try {
    noGrad(() => {
      for (let j = 0; j < taus.length - 1; j++) {
        o.checkStop?.();
        const inWindow = j >= b && j < b + o.windowSize;
        const tau = taus[j]!;
        const tauNext = taus[j + 1]!;
        const sigma = inWindow ? sdeSigma(taus, j, o.noiseLevel) : 0;
        const next = scope(() => {
          const v = cfgVelocity(model, ctx, x, tau, o.grid, o.cfgTextScale, false);
          const step = sdeStep(x, v, tau, tauNext, sigma);
          if (inWindow) window.push({ j, tau, tauNext, sigma, x: x.clone().keep(), next: step.next.clone().keep(), logProb: step.logProb.item() });
          return step.next;
        }).keep();
        x.dispose();
        x = next;
      }
    });
  } catch (e) {
    // a stop request (checkStop) part-way: nothing of the rollout is kept
    x.dispose();
    for (const w of window) {
      w.x.dispose();
      w.next.dispose();
    }
    throw e;
  }
  const latent = scope(() => unpatchify(x, o.grid, o.grid, model.config.latentPatchSize, model.config.vae.zChannels)).keep();
  return {
    tokens: x,
    latent,
    window,
    windowStart: b,
    dispose: () => {
      x.dispose();
      latent.dispose();
      for (const w of window) {
        w.x.dispose();
        w.next.dispose();
      }
    },
  };
}

/** log p and the mean mu of a stored window step under the current weights, with a graph through the model unless grad is false. */
export function windowLogProb(model: Bagel, ctx: PromptContexts, step: WindowStep, grid: number, cfgTextScale: number, grad = true): { logProb: Tensor; mean: Tensor } {
  return scope(() => {
    const v = cfgVelocity(model, ctx, step.x, step.tau, grid, cfgTextScale, grad);
    const r = sdeStep(step.x, v, step.tau, step.tauNext, step.sigma, { sample: step.next });
    return { logProb: r.logProb, mean: r.mean };
  });
}
