// Reading JSON and JSONL with errors that name the file, the record and the field.
import { readFileSync } from 'node:fs';
import type { ZodType, ZodTypeDef } from 'zod';
import { DataError, type Diagnostics } from './diagnostics.js';

/** Splits a zod issue path into a record (the first list element reached) and a field (the rest). */
export function splitIssuePath(path: (string | number)[], recordPrefix?: string): { record?: string; field?: string } {
  let i = path.findIndex((p) => typeof p === 'number');
  let record: string | undefined;
  if (i >= 0) {
    record = path.slice(0, i).join('.') + `[${path[i]}]`;
    i += 1;
  } else {
    i = 0;
  }
  if (recordPrefix !== undefined) record = record === undefined ? recordPrefix : `${recordPrefix} ${record}`;
  const rest = path.slice(i).map(String);
  const field = rest.length ? rest.join('.') : undefined;
  const out: { record?: string; field?: string } = {};
  if (record !== undefined) out.record = record;
  if (field !== undefined) out.field = field;
  return out;
}

/** Validates `value` with `schema`; the first issue becomes a DataError. */
export function parseWith<T>(schema: ZodType<T, ZodTypeDef, unknown>, value: unknown, file: string, recordPrefix?: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more issues)` : '';
  throw new DataError({ file, ...splitIssuePath(issue.path, recordPrefix) }, issue.message + more);
}

function readText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new DataError({ file }, `cannot read file (${(e as Error).message})`);
  }
  // docs/dataset.md 9: every file is UTF-8 without BOM; a BOM or invalid UTF-8 is an error, not a quirk.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) throw new DataError({ file }, 'starts with a UTF-8 BOM');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DataError({ file }, 'is not valid UTF-8');
  }
}

export function readTextFile(file: string): string {
  return readText(file);
}

export function readJsonFile(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError({ file }, `invalid JSON: ${(e as Error).message}`);
  }
}

export interface JsonlLine {
  /** 1-based line number, for error messages. */
  line: number;
  value: unknown;
}

/** Parses JSONL. Blank lines are skipped with a warning (docs/dataset.md 6.1, 9.12). */
export function readJsonlFile(file: string, diag?: Diagnostics): JsonlLine[] {
  const text = readText(file);
  const out: JsonlLine[] = [];
  const lines = text.split('\n');
  // A final newline yields one empty string that is not a blank line.
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  let blanks = 0;
  lines.forEach((raw, i) => {
    const s = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (s.trim() === '') {
      blanks++;
      return;
    }
    try {
      out.push({ line: i + 1, value: JSON.parse(s) });
    } catch (e) {
      throw new DataError({ file, record: `line ${i + 1}` }, `invalid JSON: ${(e as Error).message}`);
    }
  });
  if (blanks && diag) diag.warn({ file }, `${blanks} blank line(s) skipped`, 12);
  return out;
}
