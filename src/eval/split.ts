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

/** The character with its reference images after the first `keep` (and their scenes) moved to the
 * held-out images: a held-out split for a folder without a test split, matching the few-shot step
 * that trains on the first `keep` images (src/train/sft-data.ts fewShotCharacter). */
export function withHeldOutAfter(c: Character, keep: number): Character {
  const n = c.referenceImages.length;
  if (!(Number.isInteger(keep) && keep >= 1 && keep < n)) {
    throw new Error(`heldOutAfter ${keep}: ${c.names.display} has ${n} reference images, so it must be an integer from 1 to ${n - 1}`);
  }
  const held = c.referenceImages.slice(keep);
  const ids = new Set(held.map((i) => i.id));
  return {
    ...c,
    referenceImages: c.referenceImages.slice(0, keep),
    scenes: c.scenes.filter((s) => s.image === undefined || !ids.has(s.image)),
    tests: { ...c.tests, heldOutImages: held, heldOutScenes: c.scenes.filter((s) => s.image !== undefined && ids.has(s.image)) },
  };
}
