// Character cards: import any supported card (PNG, JSON, CHARX, detected by content) into a
// Character, and export a Character in each format (docs/ecosystem.md 1.1).
import { DataError, type DataLocation } from '../diagnostics.js';
import { sniffImageFormat } from '../image.js';
import { imageBytes, type Character } from '../character.js';
import { decodeBase64Strict, decodeUtf8Strict, parseCardText, type Card } from './card-format.js';
import { cardToCharacter, characterToCard, type ExportImage } from './convert.js';
import { readPngCard, writePngCard } from './png-card.js';
import { isZip, readCharx, writeCharx, type CharxLimits } from './charx.js';
import { PngError, isPng, readPngChunks } from './png-chunks.js';

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

/** Reads a card. Every error is a DataError whose message starts with the file (docs/architecture.md
 * "Data"), whatever part of the card was wrong. */
export function importCard(bytes: Uint8Array, opts: ImportOptions = {}): { character: Character; card: Card; format: CardFormat } {
  try {
    return readCard(bytes, opts);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const file = opts.file ?? (isPng(bytes) ? 'card.png' : isZip(bytes) ? 'card.charx' : 'card.json');
    throw new DataError({ file }, e instanceof PngError ? e.message : `unreadable card (${(e as Error).message})`);
  }
}

function readCard(bytes: Uint8Array, opts: ImportOptions): { character: Character; card: Card; format: CardFormat } {
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
  const first = c.referenceImages[0];
  if (!opts.avatar && !first) throw new Error(`${c.id}: a PNG card needs an avatar image and the character has no reference image`);
  const what = opts.avatar ? 'avatar' : `reference image ${first!.id}`;
  return writePngCard(await asPng(opts.avatar ?? imageBytes(first!), { file: `character ${c.id}`, record: what }), card);
}

/** The image a PNG card is written into, as a PNG whose chunks can be rewritten: a real PNG as it
 * is; anything sharp can decode (JPEG-in-.png references, docs/dataset.md 2; a PNG with broken
 * chunks) re-encoded; anything else is a DataError naming the image. */
async function asPng(bytes: Uint8Array, loc: DataLocation): Promise<Uint8Array> {
  if (isPng(bytes)) {
    try {
      readPngChunks(bytes);
      return bytes;
    } catch {
      // broken chunks: let the decoder try below
    }
  }
  const sharp = (await import('sharp')).default;
  try {
    return new Uint8Array(await sharp(bytes).png().toBuffer());
  } catch (e) {
    // libvips repeats itself over several lines: the first says what is wrong.
    throw new DataError(loc, `is not a readable image (${(e as Error).message.split('\n')[0]}); replace it to export a PNG card, or export json or charx`);
  }
}

export { readPngCard, writePngCard } from './png-card.js';
export { readCharx, writeCharx, DEFAULT_CHARX_LIMITS, type CharxLimits } from './charx.js';
export { parseCardText, normaliseCard, jsonDepth, MAX_CARD_DEPTH, SPEC_V2, SPEC_V3, type Card, type CardAsset } from './card-format.js';
export { cardToCharacter, characterToCard, parseMesExample, EXTENSION_KEY, REFERENCE_ASSET, HELDOUT_ASSET } from './convert.js';
export { readPngChunks, encodePngChunks, textChunk, crc32 } from './png-chunks.js';
