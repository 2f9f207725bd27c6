// Character ↔ card. Card fields carry what other front ends understand (name, description,
// personality, first_mes, mes_example); everything CMRP-specific lives under
// `extensions.unicharacter`; reference images are V3 assets of type `x_reference`, held-out test
// images `x_heldout` (docs/ecosystem.md 1.1: app-specific types start with `x_`). Unknown card fields
// are kept in `character.extensions.card` and written back on export.
import { CharacterSchema, emptyCharacter, imageBytes, type Character, type CharacterImage, type Scene } from '../character.js';
import { DataError, type DataLocation } from '../diagnostics.js';
import { sniffImageFormat } from '../image.js';
import { toDataUri } from '../data-uri.js';
import { SPEC_V2, SPEC_V3, type Card, type CardAsset, type CardData } from './card-format.js';

/** Namespaced extension key (docs/ecosystem.md 1.1: editors namespace their own keys). */
export const EXTENSION_KEY = 'unicharacter';
export const REFERENCE_ASSET = 'x_reference';
export const HELDOUT_ASSET = 'x_heldout';

/** Card data keys this project writes itself; everything else is carried over untouched
 * (`mes_example` too: a card's own example text is written back as it came, docs/ecosystem.md 1.2). */
const OWNED = new Set(['name', 'description', 'personality', 'first_mes', 'nickname']);

/** Reference images the method is built around (docs/dataset.md 2: 6 to 12 per character). */
export const EXPECTED_REFERENCE_IMAGES = 10;

export interface KeptCard {
  top: Record<string, unknown>;
  data: Record<string, unknown>;
}

/** Every scene as a `<START>` block; the card's own `mes_example`, when it had one, is kept instead. */
function mesExample(scenes: Scene[]): string {
  return scenes.map((s) => `<START>\n{{user}}: ${s.user}\n{{char}}: ${s.reply}\n`).join('');
}

const SPEAKER = /^\s*(\{\{user\}\}|<USER>|\{\{char\}\}|<BOT>):[ \t]?(.*)$/i;

/** `<START>` blocks of `{{user}}:` / `{{char}}:` lines → two-turn scenes (docs/ecosystem.md 1.1 V1).
 * LF or CRLF; a line without a speaker continues the turn above it (multi-line replies); a reply
 * without a user line before it in its block has no scene. */
export function parseMesExample(text: string): Scene[] {
  const out: Scene[] = [];
  for (const block of text.replace(/\r\n?/g, '\n').split(/<START>/i)) {
    const turns: { user: boolean; lines: string[] }[] = [];
    for (const line of block.split('\n')) {
      const m = SPEAKER.exec(line);
      if (m) turns.push({ user: /user/i.test(m[1]!), lines: [m[2]!] });
      else if (turns.length) turns[turns.length - 1]!.lines.push(line);
    }
    const text = (t: { lines: string[] }) => t.lines.join('\n').trim();
    for (let i = 0; i + 1 < turns.length; i++) {
      if (!turns[i]!.user || turns[i + 1]!.user) continue;
      out.push({ id: String(out.length), user: text(turns[i]!), reply: text(turns[i + 1]!) });
      i++;
    }
  }
  return out;
}

/** Id of the reference image a card's avatar becomes (docs/ecosystem.md 1.2). */
export const AVATAR_IMAGE_ID = 'avatar';

function assetMime(bytes: Uint8Array): string {
  const f = sniffImageFormat(bytes);
  return f === 'unknown' ? 'application/octet-stream' : `image/${f}`;
}

/** The card's avatar: its `icon` asset (the one named `main` first), else the image the card is
 * in (`ccdefault:`, resolved by the PNG reader); undefined when there is none or it is no image. */
export function cardIcon(card: Card, resolve: (uri: string, loc: DataLocation) => Uint8Array | undefined, loc: DataLocation): Uint8Array | undefined {
  const assets = (card.data.assets ?? []) as CardAsset[];
  const icons = assets.map((a, i) => [a, i] as const).filter(([a]) => a.type === 'icon');
  const [a, i] = icons.find(([x]) => x.name === 'main') ?? icons[0] ?? [{ uri: 'ccdefault:' } as CardAsset, -1];
  const bytes = resolve(a.uri, i < 0 ? loc : { ...loc, record: `data.assets[${i}]`, field: 'uri' });
  return bytes && sniffImageFormat(bytes) !== 'unknown' ? bytes : undefined;
}

export interface ExportImage {
  kind: typeof REFERENCE_ASSET | typeof HELDOUT_ASSET;
  image: CharacterImage;
  bytes: Uint8Array;
}

export interface CardBuild {
  /** Whether the held-out test split (images and their scenes) goes into the card (docs/ecosystem.md 1.2). */
  heldOut: 'include' | 'omit';
  /** The `icon` asset's URI: `ccdefault:` (the PNG the card is in), an `embeded://` path or a `data:` URI. */
  iconUri: string;
}

/** Builds the card. `uriOf` decides where image bytes go: a `data:` URI (PNG/JSON cards) or an
 * `embeded://` path inside a CHARX. */
export function characterToCard(c: Character, spec: 'v2' | 'v3', uriOf: (img: ExportImage) => string, build: CardBuild = { heldOut: 'include', iconUri: 'ccdefault:' }): Card {
  const heldOutImages = build.heldOut === 'include' ? c.tests.heldOutImages : [];
  const tests = build.heldOut === 'include' ? c.tests : { ...c.tests, heldOutImages, heldOutScenes: [] };
  const kept = (c.extensions.card ?? { top: {}, data: {} }) as KeptCard;
  const { card: _card, ...otherExt } = c.extensions;
  const keptExt = (kept.data.extensions ?? {}) as Record<string, unknown>;
  const strip = (img: CharacterImage) => (img.t2iInstruction === undefined ? { id: img.id } : { id: img.id, t2iInstruction: img.t2iInstruction });
  const ours = {
    version: 1,
    id: c.id,
    names: c.names,
    category: c.category,
    profile: c.profile,
    style: c.style,
    visualDescription: c.visualDescription,
    opening: c.opening,
    images: c.referenceImages.map(strip),
    scenes: c.scenes,
    dialogue: c.dialogue,
    knowledgeQa: c.knowledgeQa,
    vqa: c.vqa,
    vqaMcq: c.vqaMcq,
    t2iPrompts: c.t2iPrompts,
    tests: { ...tests, heldOutImages: heldOutImages.map(strip) },
    extensions: otherExt,
  };
  const images: ExportImage[] = [
    ...c.referenceImages.map((image) => ({ kind: REFERENCE_ASSET, image, bytes: imageBytes(image) }) as ExportImage),
    ...heldOutImages.map((image) => ({ kind: HELDOUT_ASSET, image, bytes: imageBytes(image) }) as ExportImage),
  ];
  // The card's own icon was read as its avatar on import; the one written is the export's.
  const keptAssets = ((kept.data.assets ?? []) as CardAsset[]).filter((a) => a.type !== REFERENCE_ASSET && a.type !== HELDOUT_ASSET && a.type !== 'icon');
  keptAssets.unshift({ type: 'icon', uri: build.iconUri, name: 'main', ext: 'png' });
  const assets: CardAsset[] = [...keptAssets, ...images.map((img) => ({ type: img.kind, uri: uriOf(img), name: img.image.id, ext: 'png' }))];
  const data: CardData = {
    // V2 fields with their defaults, then whatever the imported card had, then ours on top.
    scenario: '',
    creator_notes: '',
    system_prompt: '',
    post_history_instructions: '',
    alternate_greetings: [],
    tags: [],
    creator: '',
    character_version: '',
    ...(spec === 'v3' ? { group_only_greetings: [] } : {}),
    ...kept.data,
    name: c.names.display,
    description: c.description,
    personality: c.style,
    first_mes: c.opening,
    mes_example: typeof kept.data.mes_example === 'string' ? kept.data.mes_example : mesExample(c.scenes.length ? c.scenes : c.dialogue),
    ...(c.names.nickname !== undefined ? { nickname: c.names.nickname } : {}),
    assets,
    extensions: { ...keptExt, [EXTENSION_KEY]: ours },
  };
  return { ...kept.top, spec: spec === 'v3' ? SPEC_V3 : SPEC_V2, spec_version: spec === 'v3' ? '3.0' : '2.0', data };
}

type Resolve = (uri: string, loc: DataLocation) => Uint8Array | undefined;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const ourField = (loc: DataLocation, f: string): DataLocation => ({ ...loc, field: `data.extensions.${EXTENSION_KEY}${f}` });

/** Reads a card into a Character. `resolve` turns an asset URI into bytes (or undefined when it
 * cannot, e.g. an https URI, which is then kept as an unknown asset). */
export function cardToCharacter(card: Card, resolve: Resolve, loc: DataLocation): Character {
  const d = card.data;
  const ext = (d.extensions ?? {}) as Record<string, unknown>;
  const ours = ext[EXTENSION_KEY] as Record<string, unknown> | undefined;
  if (ours !== undefined && ours !== null) {
    if (!isObject(ours)) throw new DataError(ourField(loc, ''), 'must be an object');
    for (const k of ['names', 'tests', 'extensions']) if (ours[k] !== undefined && !isObject(ours[k])) throw new DataError(ourField(loc, `.${k}`), 'must be an object');
  }
  const assets = (d.assets ?? []) as CardAsset[];
  const refs = imageAssets(assets, REFERENCE_ASSET, resolve, loc);
  const heldOut = imageAssets(assets, HELDOUT_ASSET, resolve, loc);
  const kept = keptCard(card, assets, ext, resolve, loc);
  // A card this project wrote: restore the whole character, images from the assets.
  if (isObject(ours)) return restoreCharacter(card, ours, { refs, heldOut }, kept, loc);
  return foreignCharacter(card, { refs, heldOut }, kept, resolve, loc);
}

/** The assets of one image type with the bytes `resolve` finds; those it cannot resolve are left out. */
function imageAssets(assets: CardAsset[], type: string, resolve: Resolve, loc: DataLocation): CharacterImage[] {
  return assets.flatMap((a, i) => {
    if (a.type !== type) return [];
    const bytes = resolve(a.uri, { ...loc, record: `data.assets[${i}]`, field: 'uri' });
    return bytes ? [{ id: a.name, data: bytes } as CharacterImage] : [];
  });
}

/** What the card holds that this project does not own, kept to be written back on export. */
function keptCard(card: Card, assets: CardAsset[], ext: Record<string, unknown>, resolve: Resolve, loc: DataLocation): KeptCard {
  const embedded = (a: CardAsset, i: number): CardAsset => {
    // An archive's other files travel as data URIs once the archive is gone.
    if (!a.uri.startsWith('embeded://')) return a;
    const bytes = resolve(a.uri, { ...loc, record: `data.assets[${i}]`, field: 'uri' });
    return bytes ? { ...a, uri: toDataUri(bytes, assetMime(bytes)) } : a;
  };
  const kept: KeptCard = { top: {}, data: {} };
  for (const [k, v] of Object.entries(card)) if (k !== 'spec' && k !== 'spec_version' && k !== 'data') kept.top[k] = v;
  for (const [k, v] of Object.entries(card.data)) if (!OWNED.has(k) && k !== 'extensions' && k !== 'assets') kept.data[k] = v;
  kept.data.extensions = Object.fromEntries(Object.entries(ext).filter(([k]) => k !== EXTENSION_KEY));
  kept.data.assets = assets.map(embedded).filter((a) => a.type !== REFERENCE_ASSET && a.type !== HELDOUT_ASSET && a.type !== 'icon');
  return kept;
}

const cardText = (d: CardData, k: string) => (typeof d[k] === 'string' ? (d[k] as string) : '');

/** A card this project wrote: the whole character from our extension, images from the assets. */
function restoreCharacter(card: Card, ours: Record<string, unknown>, images: { refs: CharacterImage[]; heldOut: CharacterImage[] }, kept: KeptCard, loc: DataLocation): Character {
  const d = card.data;
  const tests = (ours.tests ?? {}) as Character['tests'];
  const candidate = {
    id: ours.id,
    names: { ...(ours.names as object), display: d.name, ...(typeof d.nickname === 'string' ? { nickname: d.nickname } : {}) },
    category: ours.category,
    description: cardText(d, 'description'),
    opening: cardText(d, 'first_mes'),
    profile: ours.profile,
    style: cardText(d, 'personality'),
    visualDescription: ours.visualDescription,
    referenceImages: imagesWithBytes(ours.images, images.refs, '.images', REFERENCE_ASSET, loc),
    scenes: ours.scenes,
    dialogue: ours.dialogue,
    knowledgeQa: ours.knowledgeQa,
    vqa: ours.vqa,
    vqaMcq: ours.vqaMcq,
    t2iPrompts: ours.t2iPrompts,
    tests: { ...tests, heldOutImages: imagesWithBytes(tests.heldOutImages, images.heldOut, '.tests.heldOutImages', HELDOUT_ASSET, loc) },
    extensions: { ...((ours.extensions ?? {}) as object), card: kept },
  };
  const r = CharacterSchema.safeParse(candidate);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new DataError({ ...loc, field: `data.extensions.${EXTENSION_KEY}.${i.path.join('.')}` }, i.message);
  }
  return r.data;
}

/** Our image list (ids and captions) joined with the bytes of the asset of the same id. */
function imagesWithBytes(list: unknown, bytes: CharacterImage[], field: string, kind: string, loc: DataLocation): CharacterImage[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new DataError(ourField(loc, field), 'must be a list');
  return list.map((m: unknown, i) => {
    if (!isObject(m) || typeof m.id !== 'string') throw new DataError(ourField(loc, `${field}[${i}]`), 'must be an object with a string id');
    const b = bytes.find((x) => x.id === m.id);
    if (!b) throw new DataError(ourField(loc, field), `image ${m.id} has no ${kind} asset`);
    return { ...(m as unknown as CharacterImage), data: b.data! };
  });
}

/** Any other card: map the common fields; the profile is the card's persona text. */
function foreignCharacter(card: Card, images: { refs: CharacterImage[]; heldOut: CharacterImage[] }, kept: KeptCard, resolve: Resolve, loc: DataLocation): Character {
  const d = card.data;
  const c = emptyCharacter(d.name);
  c.description = cardText(d, 'description');
  c.style = cardText(d, 'personality');
  c.opening = cardText(d, 'first_mes');
  c.profile = [cardText(d, 'description'), cardText(d, 'personality'), cardText(d, 'scenario')].filter((s) => s !== '').join('\n\n');
  c.dialogue = parseMesExample(cardText(d, 'mes_example'));
  // A card without reference images still has its avatar: that is the one reference image.
  const icon = images.refs.length === 0 ? cardIcon(card, resolve, loc) : undefined;
  c.referenceImages = icon ? [{ id: AVATAR_IMAGE_ID, data: new Uint8Array(icon) }] : images.refs;
  c.tests.heldOutImages = images.heldOut;
  if (typeof d.nickname === 'string') c.names.nickname = d.nickname;
  c.extensions = { card: kept };
  return c;
}
