// What the RoleScape-20 reader returns and the options it takes (docs/dataset.md 7, 10).
import type { Category, Character } from './character.js';
import type { DataWarning } from './diagnostics.js';

export type SplitName = 'train' | 'test' | 'unknown';

/** What the reader saw beside the Character: file line counts and image facts, for stats. */
export interface FolderFacts {
  split: SplitName;
  dir: string;
  images: { id: string; format: 'png' | 'jpeg' }[];
  /** Lines per processed file kind (`t2i`, `vqa`, …); absent kinds are missing. */
  processed: Record<string, number>;
  /** GRPO files: lines of `<G>_pure_t2i.jsonl` / `<G>_pure_t2i_with_vqa.jsonl`, and whether the
   * GRPO folder was found. Its images are the train images (docs/dataset.md 6, 10). */
  grpo?: { dir: string; pure: number; withVqa: number; images: number };
}

export interface LoadedCharacter {
  character: Character;
  facts: FolderFacts;
}

export interface SplitResult {
  characters: LoadedCharacter[];
  warnings: DataWarning[];
}

export interface ReadOptions {
  /** Split of the folder; default: the parent folder's name when it is `train` or `test`. */
  split?: SplitName;
  /** GRPO root holding `<G>/` folders; default `<split dir>/../grpo` when it exists. `null`: none. */
  grpoRoot?: string | null;
  /** Category per folder, for characters not in the docs/dataset.md 2 table. */
  categories?: Record<string, Category>;
  /** Warn when counts fall short of the RoleScape-20 generation prompts (20 QA pairs and 5 MCQ
   * per image, 20 probes, 180 extension scenes; docs/dataset.md 9.8). Default true; off for
   * characters that were not generated with those prompts. */
  generationTargets?: boolean;
}
