// What the GRPO benchmark (grpo.bench.ts) and the PyTorch-baseline test share about Character-GRPO's
// two costs: a model set up the way bench:grpo sets it (random weights, llm2vae given small random
// weights so velocities are not zero, the generation expert trainable, AdamW over it), one
// rollout from a seed with a given window start, and one policy update (the micro-steps of one
// optimizer step, then clip + AdamW). Import it dynamically, after the thread environment is
// set: it loads libtorch.
import * as torch from '../src/torch/index.js';
import { AdamW, clipGradNorm } from '../src/nn/index.js';
import { Bagel, latentDownsample, type ModelConfig } from '../src/model/index.js';
import { promptContexts, rollout, windowLogProb, type PromptContexts, type Rollout, type RolloutOptions, type WindowStep } from '../src/train/grpo-rollout.js';
import { clippedPolicyLoss } from '../src/train/grpo-objective.js';
import { DEFAULT_GRPO, GRPO_PRESET_FIELDS, generationExpertParameters } from '../src/train/grpo.js';

/** The GRPO settings a bench step uses (DEFAULT_GRPO's unless overridden). */
export interface GrpoBenchSettings {
  imageSize: number;
  numSteps: number;
  windowSize: number;
  windowRange: [number, number];
  microStepsPerUpdate: number;
  promptLength: number;
}

export interface GrpoBenchModel {
  mc: ModelConfig;
  model: Bagel;
  params: torch.Tensor[];
  /** The trainable parameters' names, in `params` order (the baseline's optimizer order). */
  paramNames: string[];
  opt: AdamW;
  prompt: number[];
  ctx: PromptContexts;
  ro: Omit<RolloutOptions, 'windowStart' | 'random'>;
  settings: GrpoBenchSettings;
  optim: { lr: number; betas: [number, number]; eps: number; weightDecay: number };
  clipRange: number;
  maxGradNorm: number;
  dispose(): void;
}

export const GRPO_BENCH_DEFAULTS: GrpoBenchSettings = {
  imageSize: 64, numSteps: DEFAULT_GRPO.numSteps, windowSize: DEFAULT_GRPO.windowSize, windowRange: DEFAULT_GRPO.windowRange,
  microStepsPerUpdate: GRPO_PRESET_FIELDS.reference.microStepsPerUpdate, promptLength: 24,
};

/** The model of bench:grpo on preset `mc` (seed 0), its prompt contexts and optimizer. */
export function grpoBenchModel(mc: ModelConfig, settings: Partial<GrpoBenchSettings> = {}): GrpoBenchModel {
  const s = { ...GRPO_BENCH_DEFAULTS, ...settings };
  // The reference preset's learning settings (the published ones).
  const cfg = { ...DEFAULT_GRPO, ...GRPO_PRESET_FIELDS.reference };
  torch.manualSeed(0);
  const model = new Bagel(mc);
  torch.noGrad(() => torch.scope(() => {
    const w = model.llm2vae!.weight;
    w.copy_(torch.randn(w.shape as number[]).mul(0.05));
  }));
  const params = generationExpertParameters(model);
  const trainable = new Set(params);
  const paramNames = model.namedParameters().filter(([, p]) => trainable.has(p)).map(([k]) => k);
  const optim = { lr: cfg.lr, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: cfg.weightDecay };
  const opt = new AdamW(params, optim);
  const prompt = Array.from({ length: s.promptLength }, (_, i) => 10 + i);
  const ctx = promptContexts(model, prompt);
  const grid = s.imageSize / latentDownsample(mc);
  const ro = { grid, numSteps: s.numSteps, timestepShift: cfg.timestepShift, cfgTextScale: cfg.cfgTextScale, noiseLevel: cfg.noiseLevel, windowSize: s.windowSize, windowRange: s.windowRange };
  return {
    mc, model, params, paramNames, opt, prompt, ctx, ro, settings: s, optim, clipRange: cfg.clipRange,
    // the project preset's clip (the reference has none)
    maxGradNorm: GRPO_PRESET_FIELDS.project.maxGradNorm ?? Number.POSITIVE_INFINITY,
    dispose: () => {
      ctx.dispose();
      opt.dispose();
      model.dispose();
    },
  };
}

/** One rollout after torch.manualSeed(seed), window at `start` (sampling only, no VAE decode). */
export function tsRollout(m: GrpoBenchModel, seed: number, start: number): { ms: number; rollout: Rollout } {
  const t = performance.now();
  torch.manualSeed(seed);
  const r = rollout(m.model, m.ctx, { ...m.ro, windowStart: start });
  return { ms: performance.now() - t, rollout: r };
}

export interface UpdateAnswer { ms: number; loss: number; gradNorm: number; logProbs: number[] }

/**
 * Policy update number `u` over the stored window steps: micro-step m scores step
 * (u * M + m) mod count with advantage advantages[m mod length], backward of loss / M; then clip
 * and AdamW, as one optimizer step of trainGrpo.
 */
export function tsUpdate(m: GrpoBenchModel, steps: WindowStep[], u: number, advantages: number[]): UpdateAnswer {
  const t = performance.now();
  const M = m.settings.microStepsPerUpdate;
  let loss = 0;
  const logProbs: number[] = [];
  for (let k = 0; k < M; k++) {
    const step = steps[(u * M + k) % steps.length]!;
    torch.scope(() => {
      const { logProb } = windowLogProb(m.model, m.ctx, step, m.ro.grid, m.ro.cfgTextScale);
      const l = clippedPolicyLoss(logProb, step.logProb, advantages[k % advantages.length]!, { lo: m.clipRange, hi: m.clipRange });
      l.loss.div(M).backward();
      loss += l.loss.item();
      logProbs.push(logProb.item());
    });
  }
  const gradNorm = clipGradNorm(m.params, m.maxGradNorm);
  m.opt.step();
  m.opt.zeroGrad();
  return { ms: performance.now() - t, loss, gradNorm, logProbs };
}
