// The evaluation config (docs/architecture.md "Evaluation"): one zod schema, EvalConfigSchema,
// checked by runEval itself, with its fields shared by the CLI (`unicharacter eval`, flags mapped
// to fields) and the server's eval jobs (src/serve/schemas.ts builds its options from
// EVAL_LIMIT_FIELDS), so that a bad value is refused with the same message everywhere.
import { z } from 'zod';
import type { Character } from '../data/index.js';
import type { JudgeConfig } from './judge.js';

const int = (lo: number, hi: number) => z.number().int().min(lo).max(hi);

/** Each limit's rule, without its default: the one definition the CLI and the server share. */
export const EVAL_LIMIT_FIELDS = {
  maxItems: int(1, 1_000_000),
  maxTokens: int(1, 32_768),
  maxAnswerTokens: int(1, 4096),
  maxThinkTokens: int(1, 32_768),
  numTimesteps: int(2, 1000),
  samplesPerPrompt: int(1, 16),
  temperature: z.number().min(0).max(2),
  seed: z.number().int(),
  vitImageSize: int(14, 980),
} as const;
const F = EVAL_LIMIT_FIELDS;

export const EvalLimitsSchema = z.object({
  /** At most this many items per task (absent: all). */
  maxItems: F.maxItems.optional(),
  /** Token limit for replies and open answers (the reference's response limit). */
  maxTokens: F.maxTokens.default(500),
  /** Token limit for MCQ and VQA answers. */
  maxAnswerTokens: F.maxAnswerTokens.default(64),
  /** Token limit of the image plans of role-play with thinking (the official max_think_token_n, docs/method.md 4.3). */
  maxThinkTokens: F.maxThinkTokens.default(1000),
  /** ODE steps per image. */
  numTimesteps: F.numTimesteps.default(50),
  /** Images per T2I prompt; 2 or more gives the diversity metric. */
  samplesPerPrompt: F.samplesPerPrompt.default(2),
  /** Sampling temperature of role-play replies (0.7 as the reference); answers are greedy. */
  temperature: F.temperature.default(0.7),
  seed: F.seed.default(0),
  /** ViT input side for VQA (absent: the model's provenance, else 4 patches for small ViTs, else the ViT resize rule). */
  vitImageSize: F.vitImageSize.optional(),
}).strict();

export const EvalEvaluatorsSchema = z.object({
  /** transformers CLIP folder: CLIP-T and CLIP-I. Without it CLIP-T uses the named fallback and CLIP-I is not measured. */
  clipDir: z.string().min(1).optional(),
  /** transformers DINOv2 folder; without it identity uses the named fallback embedder. */
  dinoDir: z.string().min(1).optional(),
  /** LPIPS-alex file(s) for diversity; without them a named pixel-distance fallback. */
  lpipsFiles: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  /** The independent npm evaluators (nsfwjs MobileNetV2 embedding; face identity for human characters). Default true. */
  independent: z.boolean().optional(),
  /** Face identity for human characters (`human-models:faceres`) on its own; default: the value of `independent`. */
  face: z.boolean().optional(),
}).strict();

export const EvalRunSchema = z.object({
  /** Column label, e.g. 'base', 'SFT', 'SFT+GRPO'. */
  label: z.string().min(1),
  /** A character model folder (CharacterModel.save). */
  modelDir: z.string().min(1),
}).strict();

export const JudgeConfigSchema = z.object({
  url: z.string().min(1),
  model: z.string().min(1),
  apiKey: z.string().optional(),
  timeoutMs: int(1, 3_600_000).optional(),
  retries: int(0, 100).optional(),
}).strict();

export const EvalConfigSchema = z.object({
  /** A split folder (a character's test folder, or a split root holding it) whose held-out images and
   * scenes (and any *_test.json sets) replace the character's. */
  split: z.string().min(1).optional(),
  /** No test split: the character's reference images after its first `heldOutAfter` (the ones
   * `customize --max-images N` did not train on) and their scenes are the held-out images. */
  heldOutAfter: z.number().int().positive().optional(),
  runs: z.array(EvalRunSchema).superRefine((runs, ctx) => {
    const seen = new Set<string>();
    runs.forEach((r, i) => {
      if (seen.has(r.label)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'label'], message: `run label "${r.label}" is used twice` });
      seen.add(r.label);
    });
  }),
  judge: JudgeConfigSchema.optional(),
  evaluators: EvalEvaluatorsSchema.default({}),
  /** Report folder (created). */
  out: z.string().min(1),
  limits: EvalLimitsSchema.default({}),
  /** Add the nearest-training-image copy baseline. */
  copyBaseline: z.boolean().default(true),
}).strict().refine((c) => c.split === undefined || c.heldOutAfter === undefined, {
  message: 'give either a split folder or heldOutAfter, not both', path: ['heldOutAfter'],
});

export type EvalRun = z.infer<typeof EvalRunSchema>;
export type EvalEvaluators = z.input<typeof EvalEvaluatorsSchema>;
export type EvalLimits = z.input<typeof EvalLimitsSchema>;
export type EvalConfigInput = z.input<typeof EvalConfigSchema>;
export type EvalConfig = z.output<typeof EvalConfigSchema>;
/** The limits with every default filled in (maxItems: all = Number.MAX_SAFE_INTEGER). */
export type ResolvedLimits = Omit<EvalConfig['limits'], 'maxItems'> & { maxItems: number };

/** What runEval takes: the config, the character and where progress lines go (default: nowhere). */
export type EvalOptions = EvalConfigInput & { character: Character; log?: (line: string) => void };

// the judge's schema and its interface describe the same object
const _judge: JudgeConfig = {} as z.output<typeof JudgeConfigSchema>;
void _judge;

/** The issues of a config, each with the path of its field ('limits.maxItems', 'runs.1.label'). */
export function evalConfigIssues(input: unknown): { config: EvalConfig | null; issues: { path: string; message: string }[] } {
  const r = EvalConfigSchema.safeParse(input);
  if (r.success) return { config: r.data, issues: [] };
  return { config: null, issues: r.error.issues.map((i) => ({ path: i.path.length ? i.path.join('.') : '(top level)', message: i.message })) };
}

/** A validated EvalConfig (defaults filled in); an error naming every bad field. */
export function parseEvalConfig(input: unknown, where = 'evaluation config'): EvalConfig {
  const { config, issues } = evalConfigIssues(input);
  if (!config) throw new Error(`${where}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return config;
}

export function resolveLimits(l: EvalConfig['limits']): ResolvedLimits {
  return { ...l, maxItems: l.maxItems ?? Number.MAX_SAFE_INTEGER };
}
