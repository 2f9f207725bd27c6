// What every task reads while it runs (docs/architecture.md "Evaluation"): the character with its
// split, the limits, the loaded scorers and the held-out references, and the shape of a task.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage, toChw, type Character, type ChwImage } from '../../data/index.js';
import type { CharacterModel } from '../../character/index.js';
import type { ClipScorer, FaceIdentityScorer, IdentityScorer, RewardScorers } from '../../reward/index.js';
import type { JudgeClient } from '../judge.js';
import type { IndependentImageEmbedder } from '../independent.js';
import type { ResolvedLimits } from '../config.js';
import type { TaskName } from '../report-types.js';
import type { TaskTable } from './table.js';

/** A generated (or copied) image as the tasks keep it: its PNG bytes, its CHW form and its report path. */
export interface ImageOut {
  bytes: Uint8Array;
  chw: ChwImage;
  file: string;
}

export interface EvalContext {
  /** The report folder. */
  out: string;
  c: Character;
  limits: ResolvedLimits;
  scorers: RewardScorers;
  clip: ClipScorer | null;
  clipIdentity: IdentityScorer | null;
  independent: IndependentImageEmbedder | null;
  independentReason: string;
  /** Why face identity is not measured for this character (null: measured, or not a human character). */
  faceReason: string | null;
  /** The face scorer (human characters, when it loaded) and the held-out images' face descriptors. */
  face: FaceIdentityScorer | null;
  heldOutFaces: Float32Array[];
  judge: JudgeClient | null;
  heldOut: { chw: ChwImage[]; bytes: Uint8Array[] };
  heldOutIndependent: Float32Array[] | null;
  log: (s: string) => void;
}

/** One task of the benchmark: its table for a character, its item count, and its run over one model. */
export interface EvalTask {
  name: TaskName;
  /** The progress line's name for it. */
  progress: string;
  /** The task's table with its metric rows and notes, for this character. */
  define(c: Character): TaskTable;
  /** How many items the task scores under the limits. */
  items(c: Character, limits: ResolvedLimits): number;
  /** Scores one model into its column. */
  run(ctx: EvalContext, t: TaskTable, column: string, cm: CharacterModel): Promise<void>;
}

export const limit = <T>(xs: readonly T[], n: number): T[] => xs.slice(0, Math.max(0, n));

export async function chwOf(bytes: Uint8Array): Promise<ChwImage> {
  return toChw(await decodeImage(bytes));
}

const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'run';

/** Writes an image under `images/<column>/` of the report folder. */
export async function saveImage(ctx: EvalContext, column: string, name: string, bytes: Uint8Array): Promise<ImageOut> {
  const rel = join('images', slug(column), `${name}.png`);
  mkdirSync(join(ctx.out, 'images', slug(column)), { recursive: true });
  writeFileSync(join(ctx.out, rel), bytes);
  return { bytes, chw: await chwOf(bytes), file: rel.split('\\').join('/') };
}
