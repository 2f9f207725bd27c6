// CHARX: a zip with card.json at the root and assets under assets/<type>/images/ (docs/ecosystem.md
// 1.1, V3 spec). Sizes are checked from the zip directory before anything is inflated.
import { unzipSync, zipSync } from 'fflate';
import { DataError } from '../diagnostics.js';
import { parseCardText, decodeUtf8Strict, type Card } from './card-format.js';

export interface CharxLimits {
  maxEntries: number;
  maxTotalBytes: number;
  maxCardJsonBytes: number;
}
/** The inflated total is bounded from the zip directory before anything is inflated (and fflate
 * inflates no entry past its declared size), so it bounds the memory an archive can take. */
export const DEFAULT_CHARX_LIMITS: CharxLimits = { maxEntries: 10_000, maxTotalBytes: 256 * 1024 * 1024, maxCardJsonBytes: 16 * 1024 * 1024 };

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export function readCharx(bytes: Uint8Array, file = 'card.charx', limits: CharxLimits = DEFAULT_CHARX_LIMITS): { card: Card; files: Map<string, Uint8Array> } {
  let entries = 0;
  let total = 0;
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        entries++;
        total += f.originalSize;
        if (entries > limits.maxEntries) throw new DataError({ file }, `archive has more than ${limits.maxEntries} entries`);
        if (total > limits.maxTotalBytes) throw new DataError({ file, record: f.name }, `archive expands to more than ${limits.maxTotalBytes} bytes (the limit for inflated archives)`);
        if (f.name === 'card.json' && f.originalSize > limits.maxCardJsonBytes) throw new DataError({ file, record: f.name }, `card.json is ${f.originalSize} bytes, over the ${limits.maxCardJsonBytes}-byte limit`);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError({ file }, `not a readable zip archive: ${(e as Error).message}`);
  }
  // The directory's sizes could lie; check what was actually inflated too.
  const inflated = Object.values(files).reduce((n, b) => n + b.length, 0);
  if (inflated > limits.maxTotalBytes) throw new DataError({ file }, `archive expands to more than ${limits.maxTotalBytes} bytes`);
  const json = files['card.json'];
  if (!json) throw new DataError({ file }, 'CHARX has no card.json at its root');
  const loc = { file, record: 'card.json' };
  const card = parseCardText(decodeUtf8Strict(json, loc), loc);
  return { card, files: new Map(Object.entries(files)) };
}

export function writeCharx(card: Card, assets: Map<string, Uint8Array>): Uint8Array {
  const entries: Record<string, Uint8Array> = { 'card.json': new TextEncoder().encode(JSON.stringify(card, null, 2)) };
  for (const [path, bytes] of [...assets].sort(([a], [b]) => (a < b ? -1 : 1))) entries[path] = bytes;
  // Fixed mtime so the same card zips to the same bytes.
  return zipSync(entries, { level: 6, mtime: new Date('2025-01-01T00:00:00Z') });
}
