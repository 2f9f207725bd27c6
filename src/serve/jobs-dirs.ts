// The folders of a server's jobs (docs/architecture.md "Jobs"): a job's run directory is
// `<dataDir>/runs/<job id>/`; a finished customization or GRPO job installs its character model
// folder at `<dataDir>/models/<character id>/` (copied to `<dataDir>/.staging/` first, then
// renamed into place), where ModelChatEngine serves it; customization starts from
// `<dataDir>/base/` when that folder holds a finished base run. Nothing from a request becomes a
// path: the only request value in a path is the character id, checked against the library.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CHARACTER_MODEL_FILES } from '../character/index.js';

export interface JobDirs {
  runsDir: string;
  modelsDir: string;
  baseDir: string;
  stagingDir: string;
}

export function jobDirs(dataDir: string): JobDirs {
  return { runsDir: join(dataDir, 'runs'), modelsDir: join(dataDir, 'models'), baseDir: join(dataDir, 'base'), stagingDir: join(dataDir, '.staging') };
}

/** Whether a character has an installed model (GRPO and evaluation start from it). */
export function hasModel(d: JobDirs, characterId: string): boolean {
  return existsSync(join(d.modelsDir, characterId, CHARACTER_MODEL_FILES.manifest));
}

/** The finished base run a customization starts from, or null (train from scratch). */
export function baseRun(d: JobDirs): string | null {
  return existsSync(join(d.baseDir, 'config.json')) && existsSync(join(d.baseDir, 'model.safetensors')) ? d.baseDir : null;
}
