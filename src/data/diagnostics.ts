// Errors and warnings of the data readers. docs/architecture.md "Data": a malformed file gives an
// error naming the file, the record and the field; known quirks (docs/dataset.md 9) give a warning.

/** Where in the input a problem was found. `record` and `field` are optional: some problems are
 * about a whole file (missing, unreadable). */
export interface DataLocation {
  file: string;
  record?: string;
  field?: string;
}

function formatLocation(loc: DataLocation): string {
  let s = loc.file;
  if (loc.record !== undefined) s += ` record ${loc.record}`;
  if (loc.field !== undefined) s += ` field ${loc.field}`;
  return s;
}

/** A malformed input. The message always starts with the file, then record and field. */
export class DataError extends Error {
  readonly file: string;
  readonly record: string | undefined;
  readonly field: string | undefined;
  constructor(loc: DataLocation, message: string) {
    super(`${formatLocation(loc)}: ${message}`);
    this.name = 'DataError';
    this.file = loc.file;
    this.record = loc.record;
    this.field = loc.field;
  }
}

/** A known quirk accepted by a reader. `quirk` is the docs/dataset.md 9 item number where one
 * applies, so warnings can be grouped and checked against the documentation. */
export interface DataWarning extends DataLocation {
  quirk?: number;
  message: string;
}

export function formatWarning(w: DataWarning): string {
  const tag = w.quirk !== undefined ? `[quirk ${w.quirk}] ` : '';
  return `${tag}${formatLocation(w)}: ${w.message}`;
}

/** Collects warnings while a reader runs; readers never print. */
export class Diagnostics {
  readonly warnings: DataWarning[] = [];
  warn(loc: DataLocation, message: string, quirk?: number): void {
    this.warnings.push(quirk === undefined ? { ...loc, message } : { ...loc, quirk, message });
  }
}
