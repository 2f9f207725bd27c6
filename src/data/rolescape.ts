// RoleScape-20 reader for any split folder (docs/dataset.md 2–7, 10). Reads every character folder
// of a split (rolescape-folder.ts reads one), accepts the known quirks of docs/dataset.md 9 with a
// warning, and throws a DataError naming the file, the record and the field for anything else.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Character } from './character.js';
import { DataError, Diagnostics, type DataWarning } from './diagnostics.js';
import { readCharacterFolder } from './rolescape-folder.js';
import type { LoadedCharacter, ReadOptions, SplitResult } from './rolescape-types.js';

/** Reads every character folder of a split folder (e.g. `rolescape20/train`). */
export function readRoleScapeSplit(splitDir: string, opts: ReadOptions = {}): SplitResult {
  if (!existsSync(splitDir) || !statSync(splitDir).isDirectory()) throw new DataError({ file: splitDir }, 'is not a folder');
  const diag = new Diagnostics();
  const characters: LoadedCharacter[] = [];
  for (const name of readdirSync(splitDir).sort()) {
    const p = join(splitDir, name);
    if (name === '.DS_Store') {
      diag.warn({ file: p }, 'macOS junk file ignored', 14);
      continue;
    }
    if (!statSync(p).isDirectory()) {
      diag.warn({ file: p }, 'not a character folder; ignored');
      continue;
    }
    characters.push(readCharacterFolder(p, opts, diag));
  }
  if (characters.length) checkTestLeakage(characters, diag);
  return { characters, warnings: diag.warnings };
}

/** Reads one character folder of any split. */
export function readRoleScapeCharacter(dir: string, opts: ReadOptions = {}): { loaded: LoadedCharacter; warnings: DataWarning[] } {
  const diag = new Diagnostics();
  const loaded = readCharacterFolder(dir, opts, diag);
  checkTestLeakage([loaded], diag);
  return { loaded, warnings: diag.warnings };
}

/** Test user prompts that reappear as train prompts (§3.9, §9.2): reported, not removed. */
function checkTestLeakage(chars: LoadedCharacter[], diag: Diagnostics): void {
  for (const { character, facts } of chars) {
    const train = new Set(character.dialogue.map((s) => s.user));
    const n = character.tests.dialogue.filter((s) => train.has(s.user)).length;
    if (n) diag.warn({ file: join(facts.dir, `${character.names.prefix}_dialogue_text_extension_test.json`) }, `${n} test user prompt(s) also occur as train prompts`, 2);
  }
}

/** Merges a test-split read into the train-split read of the same character. */
export function mergeSplits(train: Character, test: Character): Character {
  return {
    ...train,
    profile: train.profile || test.profile,
    tests: { ...train.tests, heldOutImages: test.tests.heldOutImages, heldOutScenes: test.tests.heldOutScenes },
  };
}
