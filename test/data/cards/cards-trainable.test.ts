// Cards a user already has become trainable (docs/ecosystem.md 1.2): the avatar is a reference
// image with a warning, held-out images are exported only when asked, mes_example survives export
// (LF and CRLF), and every format has a picture: a placeholder for PNG, the icon for CHARX.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unzipSync, zipSync } from 'fflate';
import sharp from 'sharp';
import {
  importCard, exportCard, readPngChunks, encodePngChunks, textChunk, readPngCard, parseMesExample, placeholderAvatar,
  HeldOutExportError, AVATAR_IMAGE_ID, EXPECTED_REFERENCE_IMAGES, HELDOUT_ASSET, REFERENCE_ASSET,
} from '../../../src/data/cards/index.js';
import { loadSampleCharacter } from '../../../src/data/sample-character/load.js';
import { emptyCharacter, type Character } from '../../../src/data/character.js';

const { character: tessel } = loadSampleCharacter();
const solid = async (hex: string, w = 6, h = 6) => new Uint8Array(await sharp({ create: { width: w, height: h, channels: 3, background: hex } }).png().toBuffer());
const avatar = await solid('#c04020');
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64');
const pixel = async (png: Uint8Array) => [...(await sharp(png).raw().toBuffer()).subarray(0, 3)];

/** A SillyTavern V2 card (no assets) written into `png` as its `chara` chunk. */
function stPng(data: Record<string, unknown>, png = avatar): Uint8Array {
  const chunks = readPngChunks(png);
  chunks.splice(chunks.length - 1, 0, textChunk('chara', b64({ spec: 'chara_card_v2', spec_version: '2.0', data })));
  return encodePngChunks(chunks);
}

test("a card without reference images gets its avatar as the one reference image, and a warning", async () => {
  const card = stPng({ name: 'Mira', description: 'A lighthouse cat.', first_mes: 'Hello.' });
  const read = importCard(card, { file: 'mira.png' });
  assert.equal(read.character.referenceImages.length, 1);
  const ref = read.character.referenceImages[0]!;
  assert.equal(ref.id, AVATAR_IMAGE_ID);
  // The picture, not the card again: same pixels, no card chunk.
  assert.deepEqual(await pixel(ref.data!), [0xc0, 0x40, 0x20]);
  assert.throws(() => readPngCard(ref.data!), /no character card/);
  assert.deepEqual(read.avatar, ref.data);
  assert.equal(read.warnings.length, 1);
  assert.match(read.warnings[0]!, new RegExp(`^mira\\.png: the character has one reference image, its avatar; the method expects about ${EXPECTED_REFERENCE_IMAGES}`));
});

test('a CHARX icon is the avatar and reference image; cards that bring enough references keep theirs without a warning', async () => {
  const icon = await solid('#108050');
  const v3 = (assets: unknown[]) => ({ spec: 'chara_card_v3', spec_version: '3.0', data: { name: 'Oak', assets } });
  const zip = zipSync({ 'card.json': new TextEncoder().encode(JSON.stringify(v3([{ type: 'icon', uri: 'embeded://assets/icon/images/main.png', name: 'main', ext: 'png' }]))), 'assets/icon/images/main.png': icon });
  const read = importCard(zip, { file: 'oak.charx' });
  assert.deepEqual(read.character.referenceImages.map((r) => [r.id, Buffer.from(r.data!).equals(icon)]), [[AVATAR_IMAGE_ID, true]]);
  assert.ok(read.avatar && Buffer.from(read.avatar).equals(icon));

  const refs = await Promise.all(Array.from({ length: EXPECTED_REFERENCE_IMAGES }, (_, i) => solid(`#0000${(i * 20 + 10).toString(16).padStart(2, '0')}`)));
  const uri = (b: Uint8Array) => `data:image/png;base64,${Buffer.from(b).toString('base64')}`;
  const many = importCard(new TextEncoder().encode(JSON.stringify(v3(refs.map((b, i) => ({ type: REFERENCE_ASSET, uri: uri(b), name: `r${i}`, ext: 'png' }))))), { file: 'oak.json' });
  assert.equal(many.character.referenceImages.length, EXPECTED_REFERENCE_IMAGES);
  assert.deepEqual(many.warnings, []);
  const few = importCard(new TextEncoder().encode(JSON.stringify(v3(refs.slice(0, 3).map((b, i) => ({ type: REFERENCE_ASSET, uri: uri(b), name: `r${i}`, ext: 'png' }))))), { file: 'oak.json' });
  assert.match(few.warnings[0]!, /^oak\.json: the character has 3 reference images; the method expects about 10/);
  // No picture at all: said so.
  const bare = importCard(new TextEncoder().encode(JSON.stringify({ name: 'Bare' })), { file: 'bare.json' });
  assert.deepEqual(bare.character.referenceImages, []);
  assert.match(bare.warnings[0]!, /no reference image \(and no avatar to use as one\)/);
});

test('held-out test images are exported only when asked: refused, included or omitted', async () => {
  const n = tessel.tests.heldOutImages.length;
  assert.ok(n > 0, 'the sample character has a held-out split');
  for (const format of ['png', 'json', 'charx'] as const) {
    await assert.rejects(exportCard(tessel, format, { avatar }), (e: unknown) => e instanceof HeldOutExportError && e.images === n && new RegExp(`character ${tessel.id} has ${n} held-out test images.*'include'.*'omit'`).test(e.message));
    const kinds = (bytes: Uint8Array) => (importCard(bytes).card.data.assets as { type: string }[]).map((a) => a.type);
    const included = await exportCard(tessel, format, { avatar, heldOut: 'include' });
    assert.equal(kinds(included).filter((t) => t === HELDOUT_ASSET).length, n, format);
    assert.equal(importCard(included).character.tests.heldOutImages.length, n);
    const omitted = await exportCard(tessel, format, { avatar, heldOut: 'omit' });
    assert.equal(kinds(omitted).filter((t) => t === HELDOUT_ASSET).length, 0, format);
    const back = importCard(omitted).character;
    assert.deepEqual([back.tests.heldOutImages.length, back.tests.heldOutScenes.length], [0, 0]);
    assert.equal(back.referenceImages.length, tessel.referenceImages.length, 'the training images stay');
    assert.deepEqual(back.tests.knowledgeMcq, tessel.tests.knowledgeMcq, 'the text tests stay');
  }
  // A character without a held-out split needs no answer.
  await exportCard({ ...emptyCharacter('Plain'), referenceImages: [{ id: 'r', data: avatar }] }, 'json');
});

// Four blocks: one with two exchanges, a multi-line reply, a block that opens with the character,
// and the `<USER>`/`<BOT>` spelling.
const EXAMPLE_LF = [
  '<START>',
  '{{user}}: Who are you?',
  '{{char}}: The keeper of the light.',
  '{{user}}: And the cat?',
  '{{char}}: *purrs* Also me.',
  '<START>',
  '{{char}}: *looks up* Storm tonight.',
  '{{user}}: How do you know?',
  '{{char}}: The gulls went quiet.',
  'They always do, before.',
  '',
  '<START>',
  '<USER>: Tea?',
  '<BOT>: Always.',
  '<START>',
  '{{user}}: Last one.',
  '{{char}}: Goodnight.',
  '',
].join('\n');
const EXAMPLE_CRLF = EXAMPLE_LF.replace(/\n/g, '\r\n');
const EXPECTED_SCENES = [
  ['Who are you?', 'The keeper of the light.'],
  ['And the cat?', '*purrs* Also me.'],
  ['How do you know?', 'The gulls went quiet.\nThey always do, before.'],
  ['Tea?', 'Always.'],
  ['Last one.', 'Goodnight.'],
];

for (const [label, example] of [['LF', EXAMPLE_LF], ['CRLF', EXAMPLE_CRLF]] as const) {
  test(`mes_example of a ${label} card survives export in every format, every block and line`, async () => {
    const read = importCard(stPng({ name: 'Mira', description: 'A lighthouse cat.', personality: 'calm', first_mes: 'Hello.', mes_example: example }));
    assert.deepEqual(read.character.dialogue.map((s) => [s.user, s.reply]), EXPECTED_SCENES);
    for (const format of ['png', 'json', 'charx'] as const) {
      for (const spec of ['v2', 'v3'] as const) {
        const again = importCard(await exportCard(read.character, format, { spec }));
        assert.equal(again.card.data.mes_example, example, `${format} ${spec}`);
        assert.deepEqual(again.character.dialogue.map((s) => [s.user, s.reply]), EXPECTED_SCENES);
        // And once more: a second trip changes nothing.
        assert.equal(importCard(await exportCard(again.character, format, { spec })).card.data.mes_example, example);
      }
    }
  });
}

test("a character without a card's mes_example gets one block per scene, which reads back as those scenes", async () => {
  const text = (importCard(await exportCard(tessel, 'json', { heldOut: 'omit' })).card.data.mes_example as string);
  assert.equal(text.split('<START>').length - 1, tessel.scenes.length);
  assert.deepEqual(parseMesExample(text).map((s) => [s.user, s.reply]), tessel.scenes.map((s) => [s.user.trim(), s.reply.trim()]));
});

test('a PNG card of a character without any picture is written into a generated placeholder', async () => {
  const c = { ...emptyCharacter('Nobody'), description: 'no pictures' };
  const png = await exportCard(c, 'png');
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height, meta.format], [400, 600, 'png']);
  const back = importCard(png);
  assert.equal(back.character.names.display, 'Nobody');
  assert.equal(back.character.description, 'no pictures');
  // The same name gives the same picture; another name another colour (top-left corner pixel).
  assert.ok(Buffer.from(await placeholderAvatar('Nobody')).equals(Buffer.from(await placeholderAvatar('Nobody'))));
  assert.notDeepEqual(await pixel(await placeholderAvatar('Nobody')), await pixel(await placeholderAvatar('Somebody')));
  assert.deepEqual(await pixel(png), await pixel(await placeholderAvatar('Nobody')));
});

test('a CHARX export carries its icon: the avatar, else the first reference image, else the placeholder', async () => {
  const iconOf = (zip: Uint8Array) => {
    const files = unzipSync(zip);
    const card = JSON.parse(new TextDecoder().decode(files['card.json']!)) as { data: { assets: { type: string; uri: string; name: string }[] } };
    const icons = card.data.assets.filter((a) => a.type === 'icon');
    assert.deepEqual(icons.map((a) => [a.uri, a.name]), [['embeded://assets/icon/images/main.png', 'main']]);
    return files['assets/icon/images/main.png']!;
  };
  const withAvatar = await exportCard(tessel, 'charx', { avatar, heldOut: 'omit' });
  assert.ok(Buffer.from(iconOf(withAvatar)).equals(avatar));
  assert.ok(Buffer.from(importCard(withAvatar).avatar!).equals(avatar), 'read back as the avatar');
  const first = tessel.referenceImages[0]!;
  const fromRef = iconOf(await exportCard(tessel, 'charx', { heldOut: 'omit' }));
  assert.deepEqual(await pixel(fromRef), await pixel(new Uint8Array((await import('node:fs')).readFileSync(first.path!))));
  const none = iconOf(await exportCard(emptyCharacter('Nobody'), 'charx'));
  assert.ok(Buffer.from(none).equals(Buffer.from(await placeholderAvatar('Nobody'))));
  // A JSON card with an avatar carries it as a data: icon.
  const json = importCard(await exportCard(tessel, 'json', { avatar, heldOut: 'omit' }));
  assert.ok(Buffer.from(json.avatar!).equals(avatar));
});
