// Characters as the server keeps them: the row holds the character as a V3 card JSON (the same
// interchange format users import and export, docs/ecosystem.md 1.1), with every embedded image moved
// to the image store and its asset URI replaced by `unichar-image:<sha256>`. Loading reverses
// that and reads the card with the data layer's own `importCard`, so a stored character and an
// exported card can never drift apart.
import { DEFAULT_CHARX_LIMITS, DataError, dataUriPayload, emptyCharacter, toDataUri, exportCard, importCard, type CardFormat, type Character } from '../data/index.js';
import type { CharacterRow, Store } from './db.js';
import { ApiError } from './errors.js';
import { imageMime, sha256Hex, type ImageStore } from './images.js';

export const IMAGE_URI_PREFIX = 'unichar-image:';

const ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A URL- and file-safe id from a character's own id or name: `Tessel` → `tessel`. */
export function slugify(s: string): string {
  const slug = s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-._]+|[-._]+$/g, '')
    .slice(0, 56);
  return slug || 'character';
}

export function isCharacterId(s: string): boolean {
  return ID_PATTERN.test(s);
}

type CardJson = { data: { assets?: { uri?: unknown }[]; name?: unknown } };

export interface CharacterFields {
  name?: string;
  description?: string;
  opening?: string;
  profile?: string;
  style?: string;
  visualDescription?: string;
  category?: Character['category'];
  /** Replies of this character include an image unless the request says otherwise (docs/serving.md 4). */
  replyImages?: boolean;
  /** This character's reply images are planned first (thinking mode) unless the request says otherwise (docs/serving.md 4). */
  thinking?: boolean;
}

export const CARD_MIME: Record<CardFormat, string> = { png: 'image/png', json: 'application/json', charx: 'application/zip' };

export class CharacterLibrary {
  constructor(
    readonly store: Store,
    readonly images: ImageStore,
    /** What an uploaded CHARX may inflate to (ServeLimits.cardInflatedBytes). */
    readonly maxInflatedCardBytes: number = DEFAULT_CHARX_LIMITS.maxTotalBytes,
  ) {}

  private uniqueId(base: string): string {
    const slug = slugify(base);
    if (!this.store.hasCharacter(slug)) return slug;
    for (let i = 2; ; i++) if (!this.store.hasCharacter(`${slug}-${i}`)) return `${slug}-${i}`;
  }

  /** Character → card JSON with images in the store. Returns the hash of the first reference image. */
  private async dehydrate(c: Character): Promise<{ cardJson: string; firstImage: string | null }> {
    const card = JSON.parse(new TextDecoder().decode(await exportCard(c, 'json', { heldOut: 'include', spec: 'v3' }))) as CardJson;
    let firstImage: string | null = null;
    for (const a of card.data.assets ?? []) {
      if (typeof a.uri !== 'string') continue;
      const payload = dataUriPayload(a.uri);
      if (payload === undefined) continue;
      const { hash } = await this.images.put(new Uint8Array(Buffer.from(payload, 'base64')));
      if ((a as { type?: unknown }).type === 'x_reference' && firstImage === null) firstImage = hash;
      a.uri = IMAGE_URI_PREFIX + hash;
    }
    return { cardJson: JSON.stringify(card), firstImage };
  }

  private async hydrate(row: CharacterRow): Promise<Character> {
    const card = JSON.parse(row.cardJson) as CardJson;
    for (const a of card.data.assets ?? []) {
      if (typeof a.uri !== 'string' || !a.uri.startsWith(IMAGE_URI_PREFIX)) continue;
      const hash = a.uri.slice(IMAGE_URI_PREFIX.length);
      const bytes = await this.images.get(hash);
      if (!bytes) throw new Error(`character ${row.id}: image ${hash} is missing from the image store`);
      a.uri = toDataUri(bytes, imageMime(bytes) ?? 'application/octet-stream');
    }
    const { character } = importCard(new TextEncoder().encode(JSON.stringify(card)), { file: `character ${row.id}` });
    character.id = row.id;
    return character;
  }

  /** Stores a new character under a fresh id derived from its own; returns the row. */
  async add(c: Character, avatar?: Uint8Array): Promise<CharacterRow> {
    const id = this.uniqueId(c.id || c.names.display);
    const stored: Character = { ...c, id };
    const { cardJson, firstImage } = await this.dehydrate(stored);
    const avatarHash = avatar ? (await this.images.put(avatar)).hash : firstImage;
    return this.store.insertCharacter({ id, name: c.names.display, cardJson, avatarHash });
  }

  async get(id: string): Promise<{ row: CharacterRow; character: Character } | undefined> {
    if (!isCharacterId(id)) return undefined;
    const row = this.store.getCharacter(id);
    return row && { row, character: await this.hydrate(row) };
  }

  async require(id: string, param = 'id'): Promise<{ row: CharacterRow; character: Character }> {
    const found = await this.get(id);
    if (!found) throw new ApiError(404, `no character (model) with id ${JSON.stringify(id)}`, 'not_found_error', param, param === 'model' ? 'model_not_found' : 'character_not_found');
    return found;
  }

  async create(fields: CharacterFields & { name: string }, avatar?: Uint8Array): Promise<CharacterRow> {
    const c = emptyCharacter(fields.name);
    applyFields(c, fields);
    return this.add(c, avatar);
  }

  async update(id: string, fields: CharacterFields, avatar?: Uint8Array): Promise<CharacterRow> {
    const { row, character } = await this.require(id);
    applyFields(character, fields);
    const { cardJson } = await this.dehydrate(character);
    const avatarHash = avatar ? (await this.images.put(avatar)).hash : row.avatarHash;
    return this.store.updateCharacter(id, { name: character.names.display, cardJson, avatarHash })!;
  }

  /** Any supported card (PNG, JSON, CHARX; detected from the bytes). The card's picture (a PNG
   * card's image, a CHARX or V3 icon) is the avatar, and the one reference image of a card that
   * brings none (docs/ecosystem.md 1.2); the warnings say what the method still lacks. */
  async importCard(bytes: Uint8Array): Promise<{ row: CharacterRow; warnings: string[] }> {
    let character: Character;
    let avatar: Uint8Array | undefined;
    let warnings: string[];
    try {
      const read = importCard(bytes, { file: 'upload', charxLimits: { ...DEFAULT_CHARX_LIMITS, maxTotalBytes: this.maxInflatedCardBytes } });
      character = read.character;
      warnings = read.warnings;
      // Re-encoded: a picture that decodes, whatever the card's container held.
      if (read.avatar) avatar = new Uint8Array(await (await import('sharp')).default(read.avatar).png().toBuffer());
    } catch (e) {
      // Whatever the reader refuses is the upload's fault, never a server error.
      throw new ApiError(400, `invalid card: ${(e as Error).message}`, 'invalid_request_error', 'file', 'invalid_card');
    }
    return { row: await this.add(character, avatar), warnings };
  }

  /** The character as a card. One with a held-out test split needs `heldOut` said (docs/ecosystem.md 1.2);
   * one without any picture gets a generated placeholder. */
  async exportCard(id: string, format: CardFormat, heldOut?: 'include' | 'omit'): Promise<{ bytes: Uint8Array; mime: string; filename: string }> {
    const { row, character } = await this.require(id);
    const n = character.tests.heldOutImages.length;
    if (n > 0 && heldOut === undefined) {
      throw new ApiError(400, `character ${id} has ${n} held-out test image${n === 1 ? '' : 's'} (its evaluation split): add held_out=include to put them in the card, or held_out=omit to leave them out`, 'invalid_request_error', 'held_out', 'held_out_images');
    }
    const avatar = row.avatarHash ? await this.images.get(row.avatarHash) : undefined;
    let bytes: Uint8Array;
    try {
      bytes = await exportCard(character, format, { ...(avatar ? { avatar } : {}), heldOut: heldOut ?? 'include' });
    } catch (e) {
      // A stored image the PNG cannot be written into (data/cards exportCard names it).
      if (e instanceof DataError) throw new ApiError(422, e.message, 'invalid_request_error', e.record === 'avatar' ? 'avatar' : 'reference_images', 'invalid_image');
      throw e;
    }
    return { bytes, mime: CARD_MIME[format], filename: `${id}.${format}` };
  }

  delete(id: string): boolean {
    return isCharacterId(id) && this.store.deleteCharacter(id);
  }
}

function applyFields(c: Character, f: CharacterFields): void {
  if (f.name !== undefined) c.names = { ...c.names, display: f.name };
  if (f.description !== undefined) c.description = f.description;
  if (f.opening !== undefined) c.opening = f.opening;
  if (f.profile !== undefined) c.profile = f.profile;
  if (f.style !== undefined) c.style = f.style;
  if (f.visualDescription !== undefined) c.visualDescription = f.visualDescription;
  if (f.category !== undefined) c.category = f.category;
  if (f.replyImages !== undefined) c.extensions = { ...c.extensions, replyImages: f.replyImages };
  if (f.thinking !== undefined) c.extensions = { ...c.extensions, thinking: f.thinking };
}

/** Whether the character's replies include an image by default (docs/serving.md 4). */
export function repliesWithImages(c: Character): boolean {
  return c.extensions.replyImages === true;
}

/** Whether the character's reply images are planned first by default (docs/serving.md 4). */
export function thinksBeforeImages(c: Character): boolean {
  return c.extensions.thinking === true;
}

/** The API's view of a character (snake_case like the rest of the OpenAI-style API). */
export function characterJson(row: Omit<CharacterRow, 'cardJson'>, c?: Character): Record<string, unknown> {
  const base: Record<string, unknown> = {
    id: row.id,
    object: 'character',
    name: row.name,
    avatar_url: row.avatarHash ? `/v1/images/${row.avatarHash}` : null,
    created_at: Math.floor(row.createdAt / 1000),
    updated_at: Math.floor(row.updatedAt / 1000),
  };
  if (!c) return base;
  return {
    ...base,
    nickname: c.names.nickname ?? null,
    category: c.category,
    description: c.description,
    opening: c.opening,
    profile: c.profile,
    style: c.style,
    visual_description: c.visualDescription,
    reply_images: repliesWithImages(c),
    thinking: thinksBeforeImages(c),
    reference_images: c.referenceImages.map((img) => ({ id: img.id, url: img.data ? `/v1/images/${sha256Hex(img.data)}` : null })),
    counts: { scenes: c.scenes.length, dialogue: c.dialogue.length, knowledge_qa: c.knowledgeQa.length, t2i_prompts: c.t2iPrompts.length },
  };
}
