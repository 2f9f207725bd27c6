// Name forms of a RoleScape-20 character (docs/dataset.md 1, "Folder names vs name forms").
import type { CharacterNames } from './character.js';

/** Folder → file prefix `<P>`: the text after the last `-`, or the whole folder name.
 * This one rule reproduces every row of the docs/dataset.md 1 table. */
export function prefixOfFolder(folder: string): string {
  const i = folder.lastIndexOf('-');
  return i >= 0 ? folder.slice(i + 1) : folder;
}

/** File prefix → GRPO folder `<G>`: spaces become underscores. */
export function grpoOfPrefix(prefix: string): string {
  return prefix.replace(/ /g, '_');
}

/** Folder → the lower-snake dataset key of `dataset_info.py` (docs/dataset.md 8); "Soul" is dropped
 * for the Mahjong Soul characters. */
export function datasetKeyOfFolder(folder: string): string {
  return folder
    .replace(/^Mahjong Soul-/, 'Mahjong-')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '');
}

export function namesOfFolder(folder: string, display?: string): CharacterNames {
  const prefix = prefixOfFolder(folder);
  return { display: display ?? prefix, prefix, folder, grpo: grpoOfPrefix(prefix) };
}

/** The `character` values accepted in processed and GRPO files: `<P>` or `<G>` (docs/dataset.md 1). */
export function characterFieldMatches(value: string, names: CharacterNames): 'prefix' | 'grpo' | false {
  if (value === names.prefix) return 'prefix';
  if (value === names.grpo) return 'grpo';
  return false;
}
