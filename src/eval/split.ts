// The held-out split of a character (docs/dataset.md 7): its test folder read in the RoleScape-20
// layout and merged over the character, so the tasks score held-out items only.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { formatWarning, mergeSplits, readRoleScapeCharacter, type Character } from '../data/index.js';

/** The character folder inside a split folder: the folder itself when it holds annotation.json. */
export function resolveSplitFolder(split: string, c: Character): string {
  if (existsSync(join(split, 'annotation.json'))) return split;
  for (const name of [c.names.folder, c.names.prefix, c.names.display, c.id]) {
    const p = join(split, name);
    if (existsSync(join(p, 'annotation.json'))) return p;
  }
  throw new Error(`${split}: no character folder for ${c.names.display} (looked for annotation.json there and in ${c.names.folder}/)`);
}

/** The character with the split's held-out items (and any evaluation sets the split folder carries). */
export function withSplit(c: Character, split: string): { character: Character; warnings: string[] } {
  const dir = resolveSplitFolder(split, c);
  const { loaded, warnings } = readRoleScapeCharacter(dir, { split: 'test', grpoRoot: null, generationTargets: false, categories: { [folderName(dir)]: c.category } });
  const t = loaded.character.tests;
  const merged = mergeSplits(c, loaded.character);
  merged.tests = {
    ...merged.tests,
    knowledgeMcq: t.knowledgeMcq.length ? t.knowledgeMcq : merged.tests.knowledgeMcq,
    memorization: t.memorization.length ? t.memorization : merged.tests.memorization,
    personality: t.personality.length ? t.personality : merged.tests.personality,
    dialogue: t.dialogue.length ? t.dialogue : merged.tests.dialogue,
  };
  return { character: merged, warnings: warnings.map(formatWarning) };
}

function folderName(dir: string): string {
  return dir.replace(/[\\/]+$/, '').split(/[\\/]/).pop()!;
}
