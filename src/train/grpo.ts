// Character-GRPO (method.md section 3): starting from a customized (SFT) character model, each
// epoch draws prompts with checklists, makes k rollouts per prompt with an SDE window, scores
// them (VQA checklist, text-image alignment, diversity, identity band), normalises rewards per
// prompt over the epoch, and updates the generation expert with the clipped objective.
//
// The reference's accidental behaviours are corrected by default and selectable by flag
// (`reference` options): a fresh SDE window per rollout (reference: fixed per rank), diversity over
// the whole group (reference: per-GPU subsets), gradient clipping applied (reference: defined but
// never applied).
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as torch from '../torch/index.js';
import { AdamW, clipGradNorm } from '../nn/index.js';
import { latentDownsample, type Bagel } from '../model/index.js';
import { Rng, prepareImage, encodePng, type Character, type ChwImage } from '../data/index.js';
import { createRewardScorers, computeRewards, REFERENCE_REWARD_WEIGHTS, type RewardScorerOptions, type RewardWeights } from '../reward/index.js';
import { CharacterModel } from './character-model.js';
import { groupAdvantages } from './grpo-advantages.js';
import { clippedPolicyLoss } from './grpo-objective.js';
import { promptContexts, rollout, windowLogProb, type Rollout } from './grpo-rollout.js';
import { runTraining, type TrainingResult } from './loop.js';
import { checkpointState } from './checkpoint-state.js';
import { RunDir, type Json } from './run-dir.js';

export interface GrpoConfig {
  /** The SFT character model folder to start from. */
  from: string;
  /** The run directory. */
  out: string;
  epochs: number;
  /** Prompt draws per epoch (each makes groupSize rollouts). */
  promptsPerEpoch: number;
  /** k, rollouts per prompt (reference 8). */
  groupSize: number;
  /** Rollout steps N (reference 15) and evaluation steps (reference 50). */
  numSteps: number;
  evalSteps: number;
  timestepShift: number;
  cfgTextScale: number;
  /** SDE noise level a (1.3), window size (3) and range ((0, 7)). */
  noiseLevel: number;
  windowSize: number;
  windowRange: [number, number];
  /** PPO clip range (1e-5 both sides). */
  clipRange: number;
  /** KL weight to a frozen reference; 0 (reference) disables it. */
  beta: number;
  lr: number;
  weightDecay: number;
  /** Micro-steps (window steps) whose gradients are averaged into one optimizer step (reference 72). */
  microStepsPerUpdate: number;
  /** Applied unless reference.noGradClip (reference value 1.0, never applied there). */
  maxGradNorm: number;
  advClipMax: number;
  evalEvery: number;
  saveEvery: number;
  seed: number;
  rewards: { weights: RewardWeights; scorers: Omit<RewardScorerOptions, 'tauHi' | 'tauLo'> };
  /** Opt into the reference implementation's accidental behaviours (method.md 3.3-3.6 [quirk]s). */
  reference: { fixedWindow: boolean; localDiversityBatch: number | null; noGradClip: boolean };
}

export const DEFAULT_GRPO: Omit<GrpoConfig, 'from' | 'out'> = {
  epochs: 10,
  promptsPerEpoch: 8,
  groupSize: 4,
  numSteps: 15,
  evalSteps: 50,
  timestepShift: 3.0,
  cfgTextScale: 4.0,
  noiseLevel: 1.3,
  windowSize: 3,
  windowRange: [0, 7],
  clipRange: 1e-5,
  beta: 0,
  lr: 1e-5,
  weightDecay: 1e-4,
  microStepsPerUpdate: 72,
  maxGradNorm: 1.0,
  advClipMax: 5,
  evalEvery: 5,
  saveEvery: 10,
  seed: 42,
  rewards: { weights: REFERENCE_REWARD_WEIGHTS, scorers: {} },
  reference: { fixedWindow: false, localDiversityBatch: null, noGradClip: false },
};

/** The trainable set of method.md 3.1: every language-model parameter of the generation expert. */
export function generationExpertParameters(model: Bagel): torch.Tensor[] {
  const out: torch.Tensor[] = [];
  for (const [name, p] of model.namedParameters()) {
    const trainable = name.startsWith('language_model.') && name.includes('moe_gen');
    p.requiresGrad = trainable;
    if (trainable) out.push(p);
  }
  if (out.length === 0) throw new Error('the model has no generation-expert parameters (names containing "moe_gen")');
  return out;
}

function toChw(unit: torch.Tensor): ChwImage {
  const [, h, w] = unit.shape as [number, number, number];
  const data = torch.scope(() => unit.mul(2).sub(1).contiguous().dataSync() as Float32Array);
  return { channels: 3, height: h, width: w, data };
}

async function referenceImages(c: Character, side: number): Promise<ChwImage[]> {
  const out: ChwImage[] = [];
  for (const img of c.referenceImages) {
    const bytes = img.data ?? (img.path ? new Uint8Array((await import('node:fs')).readFileSync(img.path)) : undefined);
    if (bytes) out.push(await prepareImage(bytes, { rule: 'fixed', width: side, height: side }));
  }
  return out;
}

interface EpochRollout {
  prompt: number;
  rollout: Rollout;
  image: ChwImage;
}

export async function trainGrpo(cfg: GrpoConfig, o: { resume?: boolean; signal?: AbortSignal; log?: (line: string) => void } = {}): Promise<TrainingResult & { modelDir: string }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const cm = await CharacterModel.load(cfg.from);
  const { model, vae, character } = cm;
  const prompts = character.t2iPrompts;
  if (prompts.length === 0) throw new Error(`${character.names.display} has no T2I prompts with checklists: Character-GRPO needs them (method.md 3.2)`);
  const grid = cm.manifest.imageSize / latentDownsample(model.config);
  const params = generationExpertParameters(model);
  const optimizer = new AdamW(params, { lr: cfg.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: cfg.weightDecay });
  const scorers = createRewardScorers({ ...cfg.rewards.scorers, tauHi: cfg.rewards.weights.tauHi, tauLo: cfg.rewards.weights.tauLo, diversity: cfg.reference.localDiversityBatch ? { localBatch: cfg.reference.localDiversityBatch } : undefined });
  const references = await referenceImages(character, cm.manifest.imageSize);
  const promptIds = await Promise.all(prompts.map((p) => cm.encode(p.text)));
  const rng = new Rng(cfg.seed);
  const fixedWindowRng = new Rng(cfg.seed + 1);
  const fixedWindow = cfg.reference.fixedWindow ? Math.floor(fixedWindowRng.next() * (cfg.windowRange[1] - cfg.windowSize - cfg.windowRange[0] + 1)) + cfg.windowRange[0] : undefined;
  log(`Character-GRPO on ${character.names.display}: ${params.length} generation-expert tensors trainable; rewards by ${JSON.stringify(scorers.ids)}${scorers.usesFallback ? ' (substitute scorers: no pretrained weights given)' : ''}`);

  const runDir = RunDir.open(cfg.out, { stage: 'grpo', ...cfg } as unknown as Json, { resume: o.resume ?? false });
  const state = checkpointState({ model, optimizer, rngs: { sampler: rng } });
  const samplesDir = runDir.samplesDir;

  const scoreRollouts = async (items: EpochRollout[]) => computeRewards(scorers, {
    images: items.map((r) => r.image),
    prompts: items.map((r) => prompts[r.prompt]!.text),
    checklists: items.map((r) => prompts[r.prompt]!.checklist),
    references,
  }, cfg.rewards.weights);

  const decode = (latent: torch.Tensor): torch.Tensor => torch.noGrad(() => torch.scope(() => vae.decodeToUnit(latent.unsqueeze(0)).squeeze(0)));

  const trainStep = async (epoch: number) => {
    // 1. Rollouts: promptsPerEpoch draws (without replacement while prompts last), k each.
    const order: number[] = [];
    while (order.length < cfg.promptsPerEpoch) order.push(...rng.shuffle(prompts.map((_, i) => i)));
    const items: EpochRollout[] = [];
    for (const p of order.slice(0, cfg.promptsPerEpoch)) {
      const ctx = promptContexts(model, promptIds[p]!);
      try {
        for (let k = 0; k < cfg.groupSize; k++) {
          const r = rollout(model, ctx, {
            grid, numSteps: cfg.numSteps, timestepShift: cfg.timestepShift, cfgTextScale: cfg.cfgTextScale, noiseLevel: cfg.noiseLevel,
            windowSize: cfg.windowSize, windowRange: cfg.windowRange, windowStart: fixedWindow, random: () => rng.next(),
          });
          const unit = decode(r.latent);
          items.push({ prompt: p, rollout: r, image: toChw(unit) });
          unit.dispose();
        }
      } finally {
        ctx.dispose();
      }
    }
    // 2. Rewards and 3. advantages, pooled per prompt over the epoch.
    const report = await scoreRollouts(items);
    const adv = groupAdvantages(items.map((r) => String(r.prompt)), report.total, { clipMax: cfg.advClipMax });
    // 4. Policy update over every stored window step.
    let micro = 0;
    let clippedCount = 0;
    let lossSum = 0;
    const totalMicro = items.length * cfg.windowSize;
    const perUpdate = Math.min(cfg.microStepsPerUpdate, totalMicro);
    let gradNorm = 0;
    for (const [i, it] of items.entries()) {
      const ctx = promptContexts(model, promptIds[it.prompt]!);
      try {
        for (const step of it.rollout.window) {
          torch.scope(() => {
            const { logProb } = windowLogProb(model, ctx, step, grid, cfg.cfgTextScale);
            const l = clippedPolicyLoss(logProb, step.logProb, adv.advantages[i]!, { lo: cfg.clipRange, hi: cfg.clipRange });
            l.loss.div(perUpdate).backward();
            lossSum += l.loss.item();
            if (l.clipped) clippedCount++;
          });
          micro++;
          if (micro % perUpdate === 0 || micro === totalMicro) {
            if (!cfg.reference.noGradClip) gradNorm = clipGradNorm(params, cfg.maxGradNorm);
            optimizer.step();
            optimizer.zeroGrad();
          }
        }
      } finally {
        ctx.dispose();
        it.rollout.dispose();
      }
    }
    const metrics: Record<string, number> = {
      reward: report.means.total ?? 0,
      clip_fraction: micro ? clippedCount / micro : 0,
      zero_std_ratio: adv.zeroStdRatio,
      mean_group_size: adv.meanGroupSize,
      grad_norm: gradNorm,
    };
    for (const [k, v] of Object.entries(report.means)) if (k !== 'total' && v !== undefined) metrics[`reward_${k}`] = v;
    metrics.identity_similarity = report.identitySimilarity.reduce((a, b) => a + b, 0) / report.identitySimilarity.length;
    if (cfg.evalEvery > 0 && epoch % cfg.evalEvery === 0) Object.assign(metrics, await evaluate(epoch));
    return { loss: micro ? lossSum / micro : 0, tokens: items.length * grid * grid, metrics };
  };

  // Deterministic evaluation (method.md 3.7): noise 0, evalSteps, every prompt once, fixed seed.
  const evaluate = async (epoch: number): Promise<Record<string, number>> => {
    const rngState = torch.getRngState();
    torch.manualSeed(cfg.seed);
    const items: EpochRollout[] = [];
    try {
      for (const [p] of prompts.entries()) {
        const ctx = promptContexts(model, promptIds[p]!);
        try {
          const r = rollout(model, ctx, { grid, numSteps: cfg.evalSteps, timestepShift: cfg.timestepShift, cfgTextScale: cfg.cfgTextScale, noiseLevel: 0, windowSize: 0, windowRange: [0, 0], windowStart: 0 });
          const unit = decode(r.latent);
          items.push({ prompt: p, rollout: r, image: toChw(unit) });
          if (p < 4) {
            const pixels = torch.scope(() => unit.mul(255).round().to('uint8').permute([1, 2, 0]).contiguous());
            mkdirSync(samplesDir, { recursive: true });
            writeFileSync(join(samplesDir, `epoch-${String(epoch).padStart(4, '0')}-prompt-${p}.png`), await encodePng({ width: unit.shape[2]!, height: unit.shape[1]!, data: new Uint8Array((pixels.dataSync() as Uint8Array).buffer) }));
            pixels.dispose();
          }
          unit.dispose();
        } finally {
          ctx.dispose();
        }
      }
      const report = await scoreRollouts(items);
      const out: Record<string, number> = { eval_reward: report.means.total ?? 0 };
      for (const [k, v] of Object.entries(report.means)) if (k !== 'total' && v !== undefined) out[`eval_${k}`] = v;
      return out;
    } finally {
      for (const it of items) it.rollout.dispose();
      torch.setRngState(rngState);
      rngState.dispose();
    }
  };

  try {
    const result = await runTraining({ runDir, totalSteps: cfg.epochs, trainStep, state, saveEvery: cfg.saveEvery, signal: o.signal, label: 'grpo', plot: { series: ['loss', 'reward'], title: 'Character-GRPO' } });
    const modelDir = join(cfg.out, 'model');
    new CharacterModel(character, model, vae, cm.tokenizer, { ...cm.manifest, provenance: { ...cm.manifest.provenance, stage: 'grpo', grpo_run: cfg.out, epochs: result.step } }).save(modelDir);
    return { ...result, modelDir };
  } finally {
    scorers.dispose();
    cm.dispose();
  }
}
