// What runEval is asked to do (docs/architecture.md "Evaluation"): the runs to evaluate, the
// evaluators to load, the limits, and the limits with their defaults filled in.
import type { Character } from '../data/index.js';
import type { JudgeConfig } from './judge.js';

export interface EvalRun {
  /** Column label, e.g. 'base', 'SFT', 'SFT+GRPO'. */
  label: string;
  /** A character model folder (CharacterModel.save). */
  modelDir: string;
}

export interface EvalEvaluators {
  /** transformers CLIP folder: CLIP-T and CLIP-I. Without it CLIP-T uses the named fallback and CLIP-I is not measured. */
  clipDir?: string;
  /** transformers DINOv2 folder; without it identity uses the named fallback embedder. */
  dinoDir?: string;
  /** LPIPS-alex file(s) for diversity; without them a named pixel-distance fallback. */
  lpipsFiles?: string | readonly string[];
  /** The independent npm evaluators (nsfwjs MobileNetV2 embedding; face identity for human characters). Default true. */
  independent?: boolean;
  /** Face identity for human characters (`human-models:faceres`) on its own; default: the value of `independent`. */
  face?: boolean;
}

export interface EvalLimits {
  /** At most this many items per task (default: all). */
  maxItems?: number;
  /** Token limit for replies and open answers (default 500, the reference's response limit). */
  maxTokens?: number;
  /** Token limit for MCQ and VQA answers (default 64). */
  maxAnswerTokens?: number;
  /** ODE steps per image (default 50). */
  numTimesteps?: number;
  /** Images per T2I prompt; 2 or more gives the diversity metric (default 2). */
  samplesPerPrompt?: number;
  /** Sampling temperature of role-play replies (default 0.7 as the reference); answers are greedy. */
  temperature?: number;
  seed?: number;
  /** ViT input side for VQA (default: the model's provenance, else 56 for small ViTs, else the ViT resize rule). */
  vitImageSize?: number;
}

export interface EvalOptions {
  character: Character;
  /** A split folder (a character's test folder, or a split root holding it) whose held-out images and
   * scenes (and any *_test.json sets) replace the character's. */
  split?: string;
  runs: EvalRun[];
  judge?: JudgeConfig;
  evaluators: EvalEvaluators;
  /** Report folder (created). */
  out: string;
  limits?: EvalLimits;
  /** Add the nearest-training-image copy baseline (default true). */
  copyBaseline?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** The limits with every default filled in (maxItems: all = Number.MAX_SAFE_INTEGER). */
export type ResolvedLimits = Required<Omit<EvalLimits, 'vitImageSize'>> & { vitImageSize?: number };

export function resolveLimits(L: EvalLimits = {}): ResolvedLimits {
  return {
    maxItems: L.maxItems ?? Number.MAX_SAFE_INTEGER,
    maxTokens: L.maxTokens ?? 500,
    maxAnswerTokens: L.maxAnswerTokens ?? 64,
    numTimesteps: L.numTimesteps ?? 50,
    samplesPerPrompt: L.samplesPerPrompt ?? 2,
    temperature: L.temperature ?? 0.7,
    seed: L.seed ?? 0,
    ...(L.vitImageSize ? { vitImageSize: L.vitImageSize } : {}),
  };
}
