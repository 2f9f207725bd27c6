// Where the sample character lives in the repo: `samples/` with one folder per split, in the
// RoleScape-20 layout (docs/dataset.md 10), so the same reader loads it.
import { fileURLToPath } from 'node:url';

/** `samples/` at the repo root (this file compiles to dist/src/data/sample-character/). */
export const SAMPLE_ROOT = fileURLToPath(new URL('../../../../samples', import.meta.url));
/** Folder name; by the docs/dataset.md 1 rule its file prefix is `Tessel`. */
export const SAMPLE_FOLDER = 'UniCharacter-Tessel';
export const SAMPLE_PREFIX = 'Tessel';
