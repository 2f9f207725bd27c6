// Cards under hostile input (docs/ecosystem.md 1.1): every import error is a DataError naming the file;
// nesting and inflated size are bounded; a PNG export whose image is no real PNG re-encodes it
// when it can be decoded and otherwise names the image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { zipSync } from 'fflate';
import sharp from 'sharp';
import { importCard, exportCard, readPngChunks, encodePngChunks, readPngCard, MAX_CARD_DEPTH, jsonDepth, DEFAULT_CHARX_LIMITS } from '../../../src/data/cards/index.js';
import { DataError } from '../../../src/data/diagnostics.js';
import { emptyCharacter } from '../../../src/data/character.js';

const enc = (s: string) => new TextEncoder().encode(s);
const png = new Uint8Array(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#336699' } }).png().toBuffer());
const jpeg = new Uint8Array(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#336699' } }).jpeg().toBuffer());

/** The error is a DataError whose message starts with `file` (then record and field) and matches `re`. */
function refusedNaming(file: string, re: RegExp) {
  return (e: unknown) => e instanceof DataError && e.file === file && (e.message.startsWith(`${file}:`) || e.message.startsWith(`${file} `)) && re.test(e.message);
}

/** `depth` nested arrays, as JSON text. */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

test('jsonDepth counts brackets outside strings', () => {
  assert.equal(jsonDepth('{}'), 1);
  assert.equal(jsonDepth('{"a":[{"b":"[[[["}]}'), 3);
  assert.equal(jsonDepth('"\\"[["'), 0);
  assert.equal(jsonDepth(nested(1000)), 1000);
});

test('a card nested past the limit is refused naming the file; one at the limit reads', () => {
  const card = (inner: string) => enc(`{"spec":"chara_card_v2","data":{"name":"Deep","extensions":{"x":${inner}}}}`);
  // The card itself adds 3 levels (root, data, extensions).
  assert.throws(() => importCard(card(nested(1000)), { file: 'deep.json' }), refusedNaming('deep.json', /nests 1003 levels deep, over the limit of 100/));
  assert.equal(importCard(card(nested(MAX_CARD_DEPTH - 3)), { file: 'ok.json' }).character.names.display, 'Deep');
  assert.throws(() => importCard(card(nested(MAX_CARD_DEPTH - 2)), { file: 'ok.json' }), refusedNaming('ok.json', /nests 101 levels/));
});

test("a card with this project's extension in the wrong shape names the field, not a JavaScript error", () => {
  const ours = (u: unknown) => enc(JSON.stringify({ spec: 'chara_card_v3', spec_version: '3.0', data: { name: 'X', extensions: { unicharacter: u } } }));
  const cases: [unknown, RegExp][] = [
    [{ images: 5 }, /field data\.extensions\.unicharacter\.images: must be a list/],
    [{ images: ['a'] }, /field data\.extensions\.unicharacter\.images\[0\]: must be an object with a string id/],
    [{ images: [{ id: 'a' }] }, /field data\.extensions\.unicharacter\.images: image a has no x_reference asset/],
    [{ tests: { heldOutImages: 'x' } }, /field data\.extensions\.unicharacter\.tests\.heldOutImages: must be a list/],
    [{ tests: 7 }, /field data\.extensions\.unicharacter\.tests: must be an object/],
    [{ names: 'x' }, /field data\.extensions\.unicharacter\.names: must be an object/],
    ['text', /field data\.extensions\.unicharacter: must be an object/],
    [[1, 2], /field data\.extensions\.unicharacter: must be an object/],
  ];
  for (const [u, re] of cases) {
    assert.throws(() => importCard(ours(u), { file: 'cards/x.json' }), (e: unknown) => refusedNaming('cards/x.json', re)(e) && !/is not a function|Cannot read|undefined/.test((e as Error).message), JSON.stringify(u));
  }
});

test('a tEXt chunk without its NUL separator names the file', () => {
  const chunks = readPngChunks(png);
  chunks.splice(chunks.length - 1, 0, { type: 'tEXt', data: enc('charaNOSEPARATOR') });
  assert.throws(() => importCard(encodePngChunks(chunks), { file: 'a.png' }), refusedNaming('a.png', /tEXt chunk without a NUL separator/));
  assert.throws(() => readPngCard(encodePngChunks(chunks), 'b.png'), refusedNaming('b.png', /NUL separator/));
});

test('a CHARX whose directory declares more than the inflated limit is refused before inflating', () => {
  const zip = zipSync({ 'card.json': enc('{"name":"Z"}'), 'assets/x.bin': new Uint8Array(64) });
  assert.equal(importCard(zip, { file: 'z.charx' }).character.names.display, 'Z');
  // Declare 300 MB for the asset in the local header and the central directory.
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let i = 0; i + 4 <= zip.length; i++) {
    const sig = dv.getUint32(i, true);
    if (sig === 0x04034b50 && dv.getUint32(i + 22, true) === 64) dv.setUint32(i + 22, 300 << 20, true);
    if (sig === 0x02014b50 && dv.getUint32(i + 24, true) === 64) dv.setUint32(i + 24, 300 << 20, true);
  }
  assert.ok(DEFAULT_CHARX_LIMITS.maxTotalBytes < 300 << 20);
  assert.throws(() => importCard(zip, { file: 'z.charx' }), refusedNaming('z.charx', /record assets\/x\.bin: archive expands to more than 268435456 bytes/));
});

test('PNG export: a JPEG or a PNG with broken chunks is re-encoded; undecodable bytes name the image', async () => {
  const c = emptyCharacter('Pix');
  const readBack = (bytes: Uint8Array) => importCard(bytes, { file: 'out.png' }).character.names.display;
  assert.equal(readBack(await exportCard(c, 'png', { avatar: jpeg })), 'Pix');
  const badCrc = new Uint8Array(png);
  badCrc[badCrc.length - 5] = badCrc[badCrc.length - 5]! ^ 0xff; // the IEND CRC
  assert.throws(() => readPngChunks(badCrc), /bad CRC/);
  assert.equal(readBack(await exportCard(c, 'png', { avatar: badCrc })), 'Pix');
  const fakeJpeg = new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3, 4, 5]);
  await assert.rejects(exportCard(c, 'png', { avatar: fakeJpeg }), (e: unknown) => e instanceof DataError && e.record === 'avatar' && /^character Pix record avatar: is not a readable image \(.+\); replace it/.test(e.message));
  const withRef = { ...c, referenceImages: [{ id: 'ref0', data: enc('<html>not an image</html>') }] };
  await assert.rejects(exportCard(withRef, 'png'), (e: unknown) => e instanceof DataError && e.record === 'reference image ref0' && /is not a readable image/.test(e.message));
});
