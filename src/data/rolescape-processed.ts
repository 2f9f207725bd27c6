// The processed/t2i and processed/vlm files of a RoleScape-20 character folder (docs/dataset.md
// 4, 5): each line parsed, its image path checked against this copy, lines counted per file kind.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CharacterNames } from './character.js';
import { DataError, type Diagnostics } from './diagnostics.js';
import { parseWith, readJsonlFile } from './json-file.js';
import { characterFieldMatches } from './names.js';
import { T2iLine, T2I_VARIANTS, VlmLine, VLM_FILES } from './rolescape-files.js';
import type { SplitName } from './rolescape-types.js';

type Loc = { file: string; record: string };
/** Throws unless an image path of a processed line names an image of this copy. */
type ResolveImage = (path: string, loc: Loc) => void;

/** processed/t2i and processed/vlm: parse, check image paths, count lines (docs/dataset.md 4, 5). */
export function readProcessed(dir: string, names: CharacterNames, split: SplitName, diag: Diagnostics): Record<string, number> {
  const counts: Record<string, number> = {};
  const resolve = imageResolver(dirname(dirname(dir)));
  const t2iDir = join(dir, 'processed', 't2i');
  if (existsSync(t2iDir)) readT2iDir(t2iDir, names, resolve, counts, diag);
  const vlmDir = join(dir, 'processed', 'vlm');
  if (existsSync(vlmDir)) readVlmDir(vlmDir, names, resolve, counts, diag);
  if (split === 'train' && !existsSync(vlmDir)) diag.warn({ file: vlmDir }, 'processed VLM files missing');
  return counts;
}

/** `personalized_data/<split>/<Folder>/<n>.png` → this copy (docs/dataset.md 10); Bo_t2i_full
 * prefixes `data/` (docs/dataset.md 9.10). */
function imageResolver(dataRoot: string): ResolveImage {
  return (p, loc) => {
    let rel = p;
    if (rel.startsWith('data/personalized_data/')) {
      rel = rel.slice('data/'.length);
    }
    if (!rel.startsWith('personalized_data/')) throw new DataError({ ...loc, field: 'image' }, `image path does not start with personalized_data/: ${p}`);
    const abs = join(dataRoot, rel.slice('personalized_data/'.length));
    if (!existsSync(abs)) throw new DataError({ ...loc, field: 'image' }, `image ${p} does not exist (looked for ${abs})`);
  };
}

function readT2iDir(t2iDir: string, names: CharacterNames, resolve: ResolveImage, counts: Record<string, number>, diag: Diagnostics): void {
  const P = names.prefix;
  for (const name of readdirSync(t2iDir).sort()) {
    const file = join(t2iDir, name);
    if (name.endsWith('_parquet')) {
      diag.warn({ file }, 'parquet chunks duplicate the JSONL and images; ignored', 15);
      continue;
    }
    if (name === '.DS_Store') continue;
    const kind = name.startsWith(`${P}_`) && name.endsWith('.jsonl') ? name.slice(P.length + 1, -'.jsonl'.length) : undefined;
    if (kind === undefined) {
      diag.warn({ file }, 'unknown file ignored');
      continue;
    }
    counts[kind] = readT2iFile(file, kind, names, resolve, diag);
  }
  for (const v of T2I_VARIANTS) if (counts[v] === undefined) diag.warn({ file: join(t2iDir, `${P}_${v}.jsonl`) }, 'processed T2I variant missing');
}

/** One processed T2I file; returns its line count. */
function readT2iFile(file: string, kind: string, names: CharacterNames, resolve: ResolveImage, diag: Diagnostics): number {
  const lines = readJsonlFile(file, diag);
  let dataPrefix = 0;
  for (const l of lines) {
    const rec = { file, record: `line ${l.line}` };
    const v = parseWith(T2iLine, l.value, file, rec.record);
    if (v.image.startsWith('data/')) dataPrefix++;
    resolve(v.image, rec);
    if (!characterFieldMatches(v.character, names)) throw new DataError({ ...rec, field: 'character' }, `"${v.character}" is not ${names.prefix}`);
    // scene_id is an int in most variants and a string in _pure_t2i (docs/dataset.md 4, 9.5): both accepted.
  }
  if (dataPrefix) diag.warn({ file, field: 'image' }, `${dataPrefix} path(s) start with data/personalized_data/`, 10);
  if (kind === 't2i_full') diag.warn({ file }, 'older mixed file (t2i + an older thinking variant, repeated 10×); not used', 9);
  return lines.length;
}

function readVlmDir(vlmDir: string, names: CharacterNames, resolve: ResolveImage, counts: Record<string, number>, diag: Diagnostics): void {
  const P = names.prefix;
  for (const name of readdirSync(vlmDir).sort()) {
    const file = join(vlmDir, name);
    if (!name.endsWith('.jsonl')) {
      diag.warn({ file }, 'unknown file ignored');
      continue;
    }
    const stem = name.slice(0, -'.jsonl'.length);
    // The two "full" files are named after the folder, not the prefix (docs/dataset.md 1, 9.11).
    if (stem === `${names.folder}_full` || stem === `${names.folder}_full_new` || stem === `${P}_full` || stem === `${P}_full_new`) {
      counts[stem.endsWith('_new') ? 'full_new' : 'full'] = readOlderVlmFile(file, diag);
      continue;
    }
    const kind = stem.startsWith(`${P}_`) ? stem.slice(P.length + 1) : undefined;
    if (kind === undefined || !(VLM_FILES as readonly string[]).includes(kind)) {
      diag.warn({ file }, 'unknown file ignored');
      continue;
    }
    counts[kind] = readVlmTaskFile(file, resolve, diag);
  }
}

/** An older `_full`/`_full_new` generation: parsed and counted, not used; returns its line count. */
function readOlderVlmFile(file: string, diag: Diagnostics): number {
  const lines = readJsonlFile(file, diag);
  for (const l of lines) parseWith(VlmLine, l.value, file, `line ${l.line}`);
  diag.warn({ file }, 'older generation that disagrees with the per-task files; not used', 9);
  return lines.length;
}

/** A per-task VLM file: one `<image>` placeholder exactly when the line has an image; returns its line count. */
function readVlmTaskFile(file: string, resolve: ResolveImage, diag: Diagnostics): number {
  const lines = readJsonlFile(file, diag);
  for (const l of lines) {
    const rec = `line ${l.line}`;
    const v = parseWith(VlmLine, l.value, file, rec);
    const placeholders = v.conversations[0].value.split('<image>').length - 1;
    if (placeholders !== (v.image === undefined ? 0 : 1)) {
      throw new DataError({ file, record: rec, field: 'conversations.0.value' }, `${placeholders} <image> placeholder(s) with ${v.image === undefined ? 'no' : 'one'} image`);
    }
    if (v.image !== undefined) resolve(v.image, { file, record: rec });
  }
  return lines.length;
}
