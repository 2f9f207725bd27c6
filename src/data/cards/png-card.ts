// PNG character cards, read and written the way SillyTavern does (docs/ecosystem.md 1.1,
// SillyTavern src/character-card-parser.js): tEXt `chara` = base64(V2 JSON) and tEXt `ccv3` =
// the same JSON with spec rewritten to V3, both just before IEND; readers prefer `ccv3`.
import { DataError } from '../diagnostics.js';
import { SPEC_V2, SPEC_V3, decodeBase64Strict, decodeUtf8Strict, parseCardText, type Card } from './card-format.js';
import { PngError, chunkKeyword, decodeTextChunk, encodePngChunks, readPngChunks, textChunk, DEFAULT_MAX_CHUNK_BYTES, type PngChunk } from './png-chunks.js';

const CARD_KEYWORDS = ['ccv3', 'chara'];

export function readPngCard(bytes: Uint8Array, file = 'card.png', maxChunkBytes = DEFAULT_MAX_CHUNK_BYTES): Card {
  let chunks;
  try {
    chunks = readPngChunks(bytes, maxChunkBytes);
  } catch (e) {
    if (e instanceof PngError) throw new DataError({ file }, e.message);
    throw e;
  }
  const texts = new Map<string, string>();
  const compressed: string[] = [];
  for (const c of chunks) {
    if (c.type === 'tEXt') {
      const t = textOf(c, file);
      const k = t.keyword.toLowerCase();
      if (CARD_KEYWORDS.includes(k) && !texts.has(k)) texts.set(k, t.text);
    } else if (c.type === 'zTXt' || c.type === 'iTXt') {
      const k = chunkKeyword(c).toLowerCase();
      if (CARD_KEYWORDS.includes(k)) compressed.push(`${c.type} ${k}`);
    }
  }
  for (const k of CARD_KEYWORDS) {
    const text = texts.get(k);
    if (text === undefined) continue;
    const loc = { file, record: `tEXt ${k}` };
    return parseCardText(decodeUtf8Strict(decodeBase64Strict(text, loc), loc), loc);
  }
  if (compressed.length) {
    throw new DataError({ file, record: compressed[0]! }, 'card data is in a compressed text chunk; character cards must use tEXt (some image tools switch to zTXt/iTXt for long text)');
  }
  throw new DataError({ file }, 'PNG has no character card (no tEXt chara or ccv3 chunk)');
}

function textOf(c: PngChunk, file: string): { keyword: string; text: string } {
  try {
    return decodeTextChunk(c);
  } catch (e) {
    if (e instanceof PngError) throw new DataError({ file }, e.message);
    throw e;
  }
}

/** The picture of a PNG card without its card chunks: the avatar, not the card again. */
export function stripCardChunks(png: Uint8Array): Uint8Array {
  return encodePngChunks(readPngChunks(png).filter((c) => !(c.type === 'tEXt' && CARD_KEYWORDS.includes(chunkKeyword(c).toLowerCase()))));
}

/** Writes `card` into `png` like SillyTavern: old card chunks removed, then `chara` (V2) and
 * `ccv3` (V3) inserted before IEND. */
export function writePngCard(png: Uint8Array, card: Card): Uint8Array {
  const chunks = readPngChunks(png).filter((c) => !(c.type === 'tEXt' && CARD_KEYWORDS.includes(chunkKeyword(c).toLowerCase())));
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64');
  const v2 = { ...card, spec: SPEC_V2, spec_version: '2.0' };
  const v3 = { ...card, spec: SPEC_V3, spec_version: '3.0' };
  const iend = chunks.findIndex((c) => c.type === 'IEND');
  chunks.splice(iend, 0, textChunk('chara', b64(v2)), textChunk('ccv3', b64(v3)));
  return encodePngChunks(chunks);
}
