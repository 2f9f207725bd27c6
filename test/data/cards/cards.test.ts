// Card round trips (V2 PNG, V3 PNG, JSON, CHARX), a card laid out the way SillyTavern writes it,
// and malformed cards (docs/ecosystem.md 1.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { zipSync } from 'fflate';
import sharp from 'sharp';
import { importCard, exportCard, readPngChunks, encodePngChunks, textChunk, EXTENSION_KEY } from '../../../src/data/cards/index.js';
import { loadSampleCharacter } from '../../../src/data/sample-character/load.js';
import { DataError } from '../../../src/data/diagnostics.js';
import type { Character } from '../../../src/data/character.js';

const { character: tessel } = loadSampleCharacter();
const avatar = new Uint8Array(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#2aa7a1' } }).png().toBuffer());
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64');

/** Compares characters with image bytes instead of paths. */
function comparable(c: Character) {
  const { card: _c, ...ext } = c.extensions;
  const img = (i: Character['referenceImages'][number]) => ({ id: i.id, t2iInstruction: i.t2iInstruction, bytes: Buffer.from(i.data ?? new Uint8Array()).toString('hex').slice(0, 64) });
  return { ...c, extensions: ext, referenceImages: c.referenceImages.map(img), tests: { ...c.tests, heldOutImages: c.tests.heldOutImages.map(img) } };
}
async function withBytes(c: Character): Promise<Character> {
  const { readFileSync } = await import('node:fs');
  const load = (i: Character['referenceImages'][number]) => ({ id: i.id, t2iInstruction: i.t2iInstruction, data: new Uint8Array(readFileSync(i.path!)) });
  return { ...c, referenceImages: c.referenceImages.map(load), tests: { ...c.tests, heldOutImages: c.tests.heldOutImages.map(load) } };
}

for (const [format, spec] of [['png', 'v2'], ['png', 'v3'], ['json', 'v3'], ['json', 'v2'], ['charx', 'v3']] as const) {
  test(`round trip: ${spec} ${format} card keeps the whole character and its reference images`, async () => {
    const bytes = await exportCard(tessel, format, { heldOut: 'include', spec, avatar });
    const back = importCard(bytes);
    assert.equal(back.format, format);
    // A PNG carries both chunks and the reader prefers ccv3.
    assert.equal(back.card.spec, spec === 'v3' || format === 'png' ? 'chara_card_v3' : 'chara_card_v2');
    assert.deepEqual(comparable(back.character), comparable(await withBytes(tessel)));
    const refs = (back.card.data.assets as { type: string }[]).filter((a) => a.type === 'x_reference');
    assert.equal(refs.length, tessel.referenceImages.length);
  });
}

test('PNG export writes tEXt chara then ccv3 just before IEND, base64 JSON, V2 and V3 specs', async () => {
  const bytes = await exportCard(tessel, 'png', { heldOut: 'include', avatar });
  const chunks = readPngChunks(bytes);
  const types = chunks.map((c) => c.type);
  assert.deepEqual(types.slice(-3), ['tEXt', 'tEXt', 'IEND']);
  const text = (i: number) => Buffer.from(chunks[i]!.data).toString('latin1').split('\0');
  const [k1, v1] = text(chunks.length - 3);
  const [k2, v2] = text(chunks.length - 2);
  assert.deepEqual([k1, k2], ['chara', 'ccv3']);
  assert.equal(JSON.parse(Buffer.from(v1!, 'base64').toString('utf8')).spec, 'chara_card_v2');
  assert.equal(JSON.parse(Buffer.from(v2!, 'base64').toString('utf8')).spec, 'chara_card_v3');
  // Writing again replaces, never duplicates, the card chunks.
  const again = readPngChunks(await exportCard(tessel, 'png', { heldOut: 'include', avatar: bytes }));
  assert.equal(again.filter((c) => c.type === 'tEXt').length, 2);
});

// A card as SillyTavern writes it: V1 fields at the top level too, ST's own extension keys,
// a character book, fields this project does not know.
const ST_CARD = {
  name: 'Mira', description: 'A lighthouse cat.', personality: 'calm', scenario: 'a stormy night', first_mes: 'Hello, {{user}}.', mes_example: '<START>\n{{user}}: Who are you?\n{{char}}: The keeper of the light.\n',
  creatorcomment: 'made in ST', avatar: 'none', chat: 'Mira - 2024-5-1', talkativeness: '0.5', fav: false, tags: ['cat'], create_date: '2024-5-1',
  spec: 'chara_card_v2', spec_version: '2.0',
  data: {
    name: 'Mira', description: 'A lighthouse cat.', personality: 'calm', scenario: 'a stormy night', first_mes: 'Hello, {{user}}.', mes_example: '<START>\n{{user}}: Who are you?\n{{char}}: The keeper of the light.\n',
    creator_notes: 'made in ST', system_prompt: '', post_history_instructions: '', tags: ['cat'], creator: 'someone', character_version: '1.2', alternate_greetings: ['Hi again.'],
    extensions: { talkativeness: '0.5', fav: false, world: 'Harbour', depth_prompt: { prompt: '', depth: 4, role: 'system' } },
    character_book: { name: 'Harbour', entries: [{ keys: ['light'], content: 'The light never goes out.', extensions: {}, enabled: true, insertion_order: 100 }] },
    some_future_field: { x: 1 },
  },
};
async function stPng(card: unknown, keyword = 'chara'): Promise<Uint8Array> {
  const chunks = readPngChunks(avatar);
  chunks.splice(chunks.length - 1, 0, textChunk(keyword, b64(card)));
  return encodePngChunks(chunks);
}

test('imports a SillyTavern PNG card and keeps its unknown fields on re-export', async () => {
  const { character } = importCard(await stPng(ST_CARD));
  assert.equal(character.names.display, 'Mira');
  assert.equal(character.opening, 'Hello, {{user}}.');
  assert.equal(character.style, 'calm');
  assert.deepEqual(character.dialogue.map((s) => [s.user, s.reply]), [['Who are you?', 'The keeper of the light.']]);
  for (const fmt of ['json', 'png', 'charx'] as const) {
    const again = importCard(await exportCard(character, fmt, { heldOut: 'include', avatar }));
    const d = again.card.data;
    assert.deepEqual(d.character_book, ST_CARD.data.character_book, fmt);
    assert.deepEqual(d.some_future_field, { x: 1 });
    assert.equal(d.creator, 'someone');
    assert.deepEqual(d.alternate_greetings, ['Hi again.']);
    assert.equal(d.scenario, 'a stormy night');
    assert.deepEqual((d.extensions as Record<string, unknown>).depth_prompt, ST_CARD.data.extensions.depth_prompt);
    assert.ok((d.extensions as Record<string, unknown>)[EXTENSION_KEY]);
    assert.equal(again.card.create_date, '2024-5-1');
  }
});

test('prefers ccv3 over chara when both exist', async () => {
  const chunks = readPngChunks(avatar);
  chunks.splice(chunks.length - 1, 0, textChunk('chara', b64({ ...ST_CARD, data: { ...ST_CARD.data, name: 'Old' } })), textChunk('ccv3', b64({ ...ST_CARD, spec: 'chara_card_v3', spec_version: '3.0' })));
  assert.equal(importCard(encodePngChunks(chunks)).character.names.display, 'Mira');
});

test('malformed cards give clear errors', async () => {
  const check = (bytes: Uint8Array, re: RegExp) => assert.throws(() => importCard(bytes), (e: unknown) => e instanceof DataError && re.test(e.message));
  // bad base64
  const chunks = readPngChunks(avatar);
  chunks.splice(chunks.length - 1, 0, textChunk('chara', 'not*base64!'));
  check(encodePngChunks(chunks), /tEXt chara.*not valid base64/);
  // bad JSON
  const c2 = readPngChunks(avatar);
  c2.splice(c2.length - 1, 0, textChunk('chara', Buffer.from('{"spec": ').toString('base64')));
  check(encodePngChunks(c2), /not valid JSON/);
  check(new TextEncoder().encode('{"spec": "chara_card_v9", "data": {"name": "x"}}'), /field spec: unknown card spec "chara_card_v9"/);
  check(new TextEncoder().encode('{"spec": "chara_card_v2", "data": {"name": ""}}'), /field data\.name: card has no name/);
  check(new TextEncoder().encode('{"description": "no name"}'), /field name: V1 card has no name/);
  // zTXt instead of tEXt
  const z = readPngChunks(avatar);
  const payload = Buffer.concat([Buffer.from('chara\0\0', 'latin1'), deflateSync(Buffer.from(b64(ST_CARD)))]);
  z.splice(z.length - 1, 0, { type: 'zTXt', data: new Uint8Array(payload) });
  check(encodePngChunks(z), /zTXt chara.*must use tEXt/);
  // oversized chunk: a length field far larger than the limit
  const big = new Uint8Array(avatar);
  const view = new DataView(big.buffer);
  view.setUint32(8, 0x7fffffff);
  check(big, /over the \d+-byte limit/);
  // bad CRC
  const crc = new Uint8Array(avatar);
  crc[29] = crc[29]! ^ 0xff;
  check(crc, /bad CRC/);
  // PNG without a card
  check(avatar, /no character card/);
});

test('CHARX limits: oversized archives and missing card.json are rejected', async () => {
  const zip = zipSync({ 'card.json': new TextEncoder().encode(JSON.stringify(ST_CARD)), 'assets/other/x.bin': new Uint8Array(4096) });
  assert.throws(() => importCard(zip, { charxLimits: { maxEntries: 10, maxTotalBytes: 1000, maxCardJsonBytes: 1e6 } }), /expands to more than 1000 bytes/);
  assert.throws(() => importCard(zip, { charxLimits: { maxEntries: 1, maxTotalBytes: 1e9, maxCardJsonBytes: 1e6 } }), /more than 1 entries/);
  assert.equal(importCard(zip).character.names.display, 'Mira');
  assert.throws(() => importCard(zipSync({ 'x.json': new Uint8Array(2) })), /no card\.json/);
  const dangling = zipSync({ 'card.json': new TextEncoder().encode(JSON.stringify({ ...ST_CARD, spec: 'chara_card_v3', data: { ...ST_CARD.data, assets: [{ type: 'x_reference', uri: 'embeded://assets/x_reference/images/0.png', name: '0', ext: 'png' }] } })) });
  assert.throws(() => importCard(dangling), /record data\.assets\[0\] field uri: asset embeded:\/\/.* is not in the archive/);
});
