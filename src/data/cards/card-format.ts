// SillyTavern-compatible card JSON: V1, V2, V3 (docs/ecosystem.md 1.1). Parsing is lenient about
// fields other apps add (they are kept) and strict about what makes a card a card.
import { DataError, type DataLocation } from '../diagnostics.js';

export const SPEC_V2 = 'chara_card_v2';
export const SPEC_V3 = 'chara_card_v3';

/** The card's `data` object; unknown keys are kept as they are. */
export type CardData = Record<string, unknown> & { name: string };

export interface Card {
  spec: typeof SPEC_V2 | typeof SPEC_V3;
  spec_version: string;
  data: CardData;
  /** Keys beside spec/spec_version/data (SillyTavern also writes V1 fields at the top level). */
  [key: string]: unknown;
}

export interface CardAsset {
  type: string;
  uri: string;
  name: string;
  ext: string;
  [key: string]: unknown;
}

/** Strict base64: the text of a `chara`/`ccv3` chunk must decode exactly. */
export function decodeBase64Strict(text: string, loc: DataLocation): Uint8Array {
  const s = text.replace(/\s+/g, '');
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new DataError(loc, 'card text is not valid base64');
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export function decodeUtf8Strict(bytes: Uint8Array, loc: DataLocation): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DataError(loc, 'card text is not valid UTF-8');
  }
}

/** Deepest nesting a card may have. Real cards nest a handful of levels (data.extensions.<app>...);
 * SQLite's JSON functions refuse more than 1000, and a card must survive being stored with the
 * few levels the server wraps around it, so the bound sits well below that. */
export const MAX_CARD_DEPTH = 100;

/** Nesting depth of a JSON text, by counting brackets outside strings (no recursion). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

export function parseCardText(text: string, loc: DataLocation): Card {
  const depth = jsonDepth(text);
  if (depth > MAX_CARD_DEPTH) throw new DataError(loc, `card JSON nests ${depth} levels deep, over the limit of ${MAX_CARD_DEPTH}`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataError(loc, `card is not valid JSON (${(e as Error).message})`);
  }
  return normaliseCard(v, loc);
}

/** Accepts V2/V3, and V1 (flat fields, no spec) upgraded to V2; rejects unknown specs and
 * cards without a name. */
export function normaliseCard(v: unknown, loc: DataLocation): Card {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataError(loc, 'card must be a JSON object');
  const o = v as Record<string, unknown>;
  if (o.spec === undefined) {
    if (typeof o.name !== 'string' || o.name === '') throw new DataError({ ...loc, field: 'name' }, 'V1 card has no name');
    const data = { ...o } as CardData;
    return { spec: SPEC_V2, spec_version: '2.0', data };
  }
  if (o.spec !== SPEC_V2 && o.spec !== SPEC_V3) throw new DataError({ ...loc, field: 'spec' }, `unknown card spec ${JSON.stringify(o.spec)}`);
  if (typeof o.data !== 'object' || o.data === null || Array.isArray(o.data)) throw new DataError({ ...loc, field: 'data' }, 'card has no data object');
  const data = o.data as Record<string, unknown>;
  if (typeof data.name !== 'string' || data.name.trim() === '') throw new DataError({ ...loc, field: 'data.name' }, 'card has no name');
  if (data.extensions !== undefined && (typeof data.extensions !== 'object' || data.extensions === null || Array.isArray(data.extensions))) {
    throw new DataError({ ...loc, field: 'data.extensions' }, 'extensions must be an object');
  }
  if (data.assets !== undefined) {
    if (!Array.isArray(data.assets)) throw new DataError({ ...loc, field: 'data.assets' }, 'assets must be a list');
    data.assets.forEach((a, i) => {
      const x = a as Record<string, unknown>;
      for (const k of ['type', 'uri', 'name', 'ext']) if (typeof x?.[k] !== 'string') throw new DataError({ ...loc, record: `data.assets[${i}]`, field: k }, 'must be a string');
    });
  }
  return { ...o, spec: o.spec, spec_version: typeof o.spec_version === 'string' ? o.spec_version : String(o.spec_version ?? ''), data: data as CardData };
}
