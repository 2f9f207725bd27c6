// Character cards: import any supported card (PNG, JSON, CHARX, detected by content) into a
// Character, and export a Character in each format (docs/ecosystem.md 1.1).
import { DataError, type DataLocation } from '../diagnostics.js';
import { sniffImageFormat } from '../image.js';
import { dataUriPayload, toDataUri } from '../data-uri.js';
import { imageBytes, type Character } from '../character.js';
import { decodeBase64Strict, decodeUtf8Strict, parseCardText, type Card } from './card-format.js';
import { AVATAR_IMAGE_ID, EXPECTED_REFERENCE_IMAGES, cardIcon, cardToCharacter, characterToCard, type ExportImage } from './convert.js';
import { readPngCard, stripCardChunks, writePngCard } from './png-card.js';
import { placeholderAvatar } from './placeholder.js';
import { isZip, readCharx, writeCharx, type CharxLimits } from './charx.js';
import { PngError, isPng, readPngChunks } from './png-chunks.js';

export type CardFormat = 'png' | 'json' | 'charx';

function dataUri(img: { bytes: Uint8Array }): string {
  return toDataUri(img.bytes, sniffImageFormat(img.bytes) === 'jpeg' ? 'image/jpeg' : 'image/png');
}

function resolveDataUri(uri: string, loc: DataLocation): Uint8Array | undefined {
  const payload = dataUriPayload(uri);
  return payload === undefined ? undefined : decodeBase64Strict(payload, loc);
}

export interface ImportOptions {
  file?: string;
  charxLimits?: CharxLimits;
  maxChunkBytes?: number;
}

export interface ImportedCard {
  character: Character;
  card: Card;
  format: CardFormat;
  /** The card's avatar (its icon, or the picture a PNG card is in, without the card chunks). */
  avatar?: Uint8Array;
  /** What the user should know before training on it, each starting with the file (docs/ecosystem.md 1.2). */
  warnings: string[];
}

/** Reads a card. Every error is a DataError whose message starts with the file (docs/architecture.md
 * "Data"), whatever part of the card was wrong. */
export function importCard(bytes: Uint8Array, opts: ImportOptions = {}): ImportedCard {
  try {
    return readCard(bytes, opts);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const file = opts.file ?? (isPng(bytes) ? 'card.png' : isZip(bytes) ? 'card.charx' : 'card.json');
    throw new DataError({ file }, e instanceof PngError ? e.message : `unreadable card (${(e as Error).message})`);
  }
}

function readCard(bytes: Uint8Array, opts: ImportOptions): ImportedCard {
  const read = (format: CardFormat, file: string, card: Card, resolve: Resolver): ImportedCard => {
    const character = cardToCharacter(card, resolve, { file });
    const avatar = cardIcon(card, resolve, { file });
    return { character, card, format, ...(avatar ? { avatar } : {}), warnings: referenceWarnings(character, file) };
  };
  if (isPng(bytes)) {
    const file = opts.file ?? 'card.png';
    const card = readPngCard(bytes, file, opts.maxChunkBytes);
    // `ccdefault:` icon is the PNG itself, without the card.
    const picture = stripCardChunks(bytes);
    return read('png', file, card, (uri, loc) => (uri === 'ccdefault:' ? picture : resolveDataUri(uri, loc)));
  }
  if (isZip(bytes)) {
    const file = opts.file ?? 'card.charx';
    const { card, files } = readCharx(bytes, file, opts.charxLimits);
    return read('charx', file, card, (uri, loc) => {
      if (uri.startsWith('embeded://')) {
        const b = files.get(uri.slice('embeded://'.length));
        if (!b) throw new DataError(loc, `asset ${uri} is not in the archive`);
        return b;
      }
      return resolveDataUri(uri, loc);
    });
  }
  const file = opts.file ?? 'card.json';
  return read('json', file, parseCardText(decodeUtf8Strict(bytes, { file }), { file }), resolveDataUri);
}

type Resolver = (uri: string, loc: DataLocation) => Uint8Array | undefined;

/** The method customizes on about ten reference images; a card usually brings one, its avatar. */
function referenceWarnings(c: Character, file: string): string[] {
  const n = c.referenceImages.length;
  if (n >= EXPECTED_REFERENCE_IMAGES) return [];
  const what = n === 0 ? 'no reference image (and no avatar to use as one)' : n === 1 && c.referenceImages[0]!.id === AVATAR_IMAGE_ID ? 'one reference image, its avatar' : `${n} reference image${n === 1 ? '' : 's'}`;
  return [`${file}: the character has ${what}; the method expects about ${EXPECTED_REFERENCE_IMAGES} (docs/ecosystem.md 1.2), so its pictures will follow ${n === 0 ? 'nothing of it' : 'these few closely'} until more are added`];
}

export interface ExportOptions {
  spec?: 'v2' | 'v3';
  /** The card's picture (the PNG it is written into, the icon of a CHARX or JSON card); default:
   * the first reference image, else a generated placeholder. */
  avatar?: Uint8Array;
  /** Whether a character's held-out test split goes into the card: required when it has one
   * (docs/ecosystem.md 1.2). */
  heldOut?: 'include' | 'omit';
}

/** A character with a held-out test split exported without saying whether to include it. */
export class HeldOutExportError extends Error {
  constructor(readonly characterId: string, readonly images: number) {
    super(`character ${characterId} has ${images} held-out test image${images === 1 ? '' : 's'} (its evaluation split, docs/ecosystem.md 1.2): say heldOut 'include' to put them in the card or 'omit' to leave them out`);
    this.name = 'HeldOutExportError';
  }
}

export async function exportCard(c: Character, format: CardFormat, opts: ExportOptions = {}): Promise<Uint8Array> {
  const spec = opts.spec ?? 'v3';
  if (c.tests.heldOutImages.length > 0 && opts.heldOut === undefined) throw new HeldOutExportError(c.id, c.tests.heldOutImages.length);
  const heldOut = opts.heldOut ?? 'include';
  if (format === 'charx') {
    const files = new Map<string, Uint8Array>();
    const icon = 'assets/icon/images/main.png';
    files.set(icon, await cardPicture(c, opts.avatar));
    const card = characterToCard(
      c,
      spec,
      (img) => {
        const path = `assets/${img.kind}/images/${img.image.id}.png`;
        files.set(path, img.bytes);
        return `embeded://${path}`;
      },
      { heldOut, iconUri: `embeded://${icon}` },
    );
    return writeCharx(card, files);
  }
  if (format === 'json') {
    const iconUri = opts.avatar ? dataUri({ bytes: opts.avatar }) : 'ccdefault:';
    return new TextEncoder().encode(JSON.stringify(characterToCard(c, spec, dataUri, { heldOut, iconUri }), null, 2));
  }
  return writePngCard(await cardPicture(c, opts.avatar), characterToCard(c, spec, dataUri, { heldOut, iconUri: 'ccdefault:' }));
}

/** The card's picture as a PNG: the avatar, else the first reference image, else a placeholder. */
async function cardPicture(c: Character, avatar: Uint8Array | undefined): Promise<Uint8Array> {
  const first = c.referenceImages[0];
  if (avatar) return asPng(avatar, { file: `character ${c.id}`, record: 'avatar' });
  if (first) return asPng(imageBytes(first), { file: `character ${c.id}`, record: `reference image ${first.id}` });
  return placeholderAvatar(c.names.display);
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

export { readPngCard, writePngCard, stripCardChunks } from './png-card.js';
export { placeholderAvatar } from './placeholder.js';
export { readCharx, writeCharx, DEFAULT_CHARX_LIMITS, type CharxLimits } from './charx.js';
export { parseCardText, normaliseCard, jsonDepth, MAX_CARD_DEPTH, SPEC_V2, SPEC_V3, type Card, type CardAsset } from './card-format.js';
export { cardToCharacter, characterToCard, cardIcon, parseMesExample, EXTENSION_KEY, REFERENCE_ASSET, HELDOUT_ASSET, AVATAR_IMAGE_ID, EXPECTED_REFERENCE_IMAGES } from './convert.js';
export { readPngChunks, encodePngChunks, textChunk, crc32 } from './png-chunks.js';
