// Loads Tessel from samples/ with the RoleScape-20 reader: the same code path as real data.
import { join } from 'node:path';
import type { Character } from '../character.js';
import { mergeSplits, readRoleScapeCharacter } from '../rolescape.js';
import type { DataWarning } from '../diagnostics.js';
import { VISUAL_DESCRIPTION } from './content.js';
import { SAMPLE_FOLDER, SAMPLE_ROOT } from './paths.js';

export function loadSampleCharacter(root = SAMPLE_ROOT): { character: Character; warnings: DataWarning[] } {
  const opts = { categories: { [SAMPLE_FOLDER]: 'anime' as const }, generationTargets: false, grpoRoot: join(root, 'grpo') };
  const train = readRoleScapeCharacter(join(root, 'train', SAMPLE_FOLDER), { ...opts, split: 'train' });
  const test = readRoleScapeCharacter(join(root, 'test', SAMPLE_FOLDER), { ...opts, split: 'test' });
  const character = mergeSplits(train.loaded.character, test.loaded.character);
  // The RoleScape-20 layout has no visual-description file; the sample keeps its own.
  character.visualDescription = VISUAL_DESCRIPTION;
  return { character, warnings: [...train.warnings, ...test.warnings] };
}
