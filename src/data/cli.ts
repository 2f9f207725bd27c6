// `unicharacter data validate|stats <dir>` as plain functions; the CLI layer wires them in.
// <dir> is a split folder (e.g. rolescape20/train) or a data root holding train/ (and test/).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DataError, formatWarning, type DataWarning } from './diagnostics.js';
import { readRoleScapeCharacter } from './rolescape.js';
import type { LoadedCharacter, ReadOptions } from './rolescape-types.js';
import { characterStats, formatStatsTable, type CharacterStats } from './stats.js';

export interface DataCliOptions {
  /** Where lines go; default console.log. */
  print?: (line: string) => void;
  read?: ReadOptions;
}

interface Layout {
  train: string | null;
  test: string | null;
}

function layoutOf(dir: string): Layout {
  if (existsSync(join(dir, 'train'))) return { train: join(dir, 'train'), test: existsSync(join(dir, 'test')) ? join(dir, 'test') : null };
  // A split folder: `test` only if it is named so.
  return basename(dir) === 'test' ? { train: null, test: dir } : { train: dir, test: null };
}

function characterFolders(split: string): string[] {
  return readdirSync(split)
    .filter((n) => n !== '.DS_Store' && statSync(join(split, n)).isDirectory())
    .sort();
}

interface ReadAll {
  loaded: { train?: LoadedCharacter; test?: LoadedCharacter; folder: string }[];
  warnings: DataWarning[];
  errors: DataError[];
}

function readAll(dir: string, read: ReadOptions = {}): ReadAll {
  if (!existsSync(dir)) throw new DataError({ file: dir }, 'does not exist');
  const { train, test } = layoutOf(dir);
  const out: ReadAll = { loaded: [], warnings: [], errors: [] };
  const folders = new Set<string>([...(train ? characterFolders(train) : []), ...(test ? characterFolders(test) : [])]);
  for (const folder of [...folders].sort()) {
    const entry: ReadAll['loaded'][number] = { folder };
    for (const [split, root] of [['train', train], ['test', test]] as const) {
      if (!root || !existsSync(join(root, folder))) continue;
      try {
        const r = readRoleScapeCharacter(join(root, folder), { ...read, split });
        entry[split] = r.loaded;
        out.warnings.push(...r.warnings);
      } catch (e) {
        if (e instanceof DataError) out.errors.push(e);
        else throw e;
      }
    }
    out.loaded.push(entry);
  }
  return out;
}

export interface ValidateResult {
  characters: number;
  warnings: DataWarning[];
  errors: DataError[];
  /** 0 when there are no errors (warnings do not fail validation). */
  exitCode: number;
}

export function dataValidate(dir: string, opts: DataCliOptions = {}): ValidateResult {
  const print = opts.print ?? ((l: string) => console.log(l));
  const r = readAll(dir, opts.read);
  for (const w of r.warnings) print(`warning: ${formatWarning(w)}`);
  for (const e of r.errors) print(`error: ${e.message}`);
  const ok = r.loaded.filter((l) => l.train || l.test).length;
  print(`${r.loaded.length} character(s), ${ok} read, ${r.warnings.length} warning(s), ${r.errors.length} error(s)`);
  return { characters: r.loaded.length, warnings: r.warnings, errors: r.errors, exitCode: r.errors.length ? 1 : 0 };
}

export async function dataStats(dir: string, opts: DataCliOptions = {}): Promise<CharacterStats[]> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const r = readAll(dir, opts.read);
  if (r.errors.length) throw r.errors[0]!;
  const rows: CharacterStats[] = [];
  for (const l of r.loaded) if (l.train) rows.push(await characterStats(l.train, l.test));
  print(formatStatsTable(rows));
  return rows;
}
