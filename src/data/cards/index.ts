// Character cards: import any supported card (PNG, JSON, CHARX, detected by content) into a
// Character, and export a Character in each format (ecosystem.md 1.1).
import { DataError, type DataLocation } from '../diagnostics.js';
import { sniffImageFormat } from '../image.js';
import type { Character } from '../character.js';
import { decodeBase64Strict, decodeUtf8Strict, parseCardText, type Card } from './card-format.js';
import { cardToCharacter, characterToCard, imageBytes, type ExportImage } from './convert.js';
import { readPngCard, writePngCard } from './png-card.js';
import { isZip, readCharx, writeCharx, type CharxLimits } from './charx.js';
import { isPng } from './png-chunks.js';

export type CardFormat = 'png' | 'json' | 'charx';

function dataUri(img: ExportImage): string {
  const mime = sniffImageFormat(img.bytes) === 'jpeg' ? 'image/jpeg' : 'image/png';
  return `data:${mime};base64,${Buffer.from(img.bytes).toString('base64')}`;
}

function resolveDataUri(uri: string, loc: DataLocation): Uint8Array | undefined {
  const m = /^data:[^;,]*;base64,(.*)$/s.exec(uri);
  if (!m) return undefined;
  return decodeBase64Strict(m[1]!, loc);
}

export interface ImportOptions {
  file?: string;
  charxLimits?: CharxLimits;
  maxChunkBytes?: number;
}

export function importCard(bytes: Uint8Array, opts: ImportOptions = {}): { character: Character; card: Card; format: CardFormat } {
  if (isPng(bytes)) {
    const file = opts.file ?? 'card.png';
    const card = readPngCard(bytes, file, opts.maxChunkBytes);
    // `ccdefault:` icon is the PNG itself.
    const character = cardToCharacter(card, (uri, loc) => (uri === 'ccdefault:' ? bytes : resolveDataUri(uri, loc)), { file });
    return { character, card, format: 'png' };
  }
  if (isZip(bytes)) {
    const file = opts.file ?? 'card.charx';
    const { card, files } = readCharx(bytes, file, opts.charxLimits);
    const character = cardToCharacter(
      card,
      (uri, loc) => {
        if (uri.startsWith('embeded://')) {
          const b = files.get(uri.slice('embeded://'.length));
          if (!b) throw new DataError(loc, `asset ${uri} is not in the archive`);
          return b;
        }
        return resolveDataUri(uri, loc);
      },
      { file },
    );
    return { character, card, format: 'charx' };
  }
  const file = opts.file ?? 'card.json';
  const card = parseCardText(decodeUtf8Strict(bytes, { file }), { file });
  return { character: cardToCharacter(card, resolveDataUri, { file }), card, format: 'json' };
}

export interface ExportOptions {
  spec?: 'v2' | 'v3';
  /** The PNG the card is written into; default: the first reference image. */
  avatar?: Uint8Array;
}

export async function exportCard(c: Character, format: CardFormat, opts: ExportOptions = {}): Promise<Uint8Array> {
  const spec = opts.spec ?? 'v3';
  if (format === 'charx') {
    const files = new Map<string, Uint8Array>();
    const card = characterToCard(c, spec, (img) => {
      const path = `assets/${img.kind}/images/${img.image.id}.png`;
      files.set(path, img.bytes);
      return `embeded://${path}`;
    });
    return writeCharx(card, files);
  }
  const card = characterToCard(c, spec, dataUri);
  if (format === 'json') return new TextEncoder().encode(JSON.stringify(card, null, 2));
  let avatar = opts.avatar;
  if (!avatar) {
    const first = c.referenceImages[0];
    if (!first) throw new Error(`${c.id}: a PNG card needs an avatar image and the character has no reference image`);
    avatar = imageBytes(first);
  }
  if (!isPng(avatar)) {
    // JPEG-in-.png references (dataset.md §2) are re-encoded: a card must be a real PNG.
    const sharp = (await import('sharp')).default;
    avatar = new Uint8Array(await sharp(avatar).png().toBuffer());
  }
  return writePngCard(avatar, card);
}

export { readPngCard, writePngCard } from './png-card.js';
export { readCharx, writeCharx, DEFAULT_CHARX_LIMITS, type CharxLimits } from './charx.js';
export { parseCardText, normaliseCard, SPEC_V2, SPEC_V3, type Card, type CardAsset } from './card-format.js';
export { cardToCharacter, characterToCard, parseMesExample, EXTENSION_KEY, REFERENCE_ASSET, HELDOUT_ASSET } from './convert.js';
export { readPngChunks, encodePngChunks, textChunk, crc32 } from './png-chunks.js';
