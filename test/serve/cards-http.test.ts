// Cards through the HTTP API (docs/ecosystem.md 1.2): an imported card's avatar becomes its
// reference image and the answer carries the warning; a held-out split is exported only with
// held_out=include|omit; a character without any picture still exports as a PNG card.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { exportCard, importCard, loadSampleCharacter } from '../../src/data/index.js';
import { encodePngChunks, readPngChunks, textChunk } from '../../src/data/cards/index.js';
import { startServer, type RunningServer } from '../../src/serve/index.js';
import { FixedReplyEngine, expectErrorShape } from './hostile-fixtures.js';

const AVATAR = new Uint8Array(await sharp({ create: { width: 10, height: 14, channels: 3, background: '#4060a0' } }).png().toBuffer());

function stPng(): Uint8Array {
  const chunks = readPngChunks(AVATAR);
  const card = { spec: 'chara_card_v2', spec_version: '2.0', data: { name: 'Mira', description: 'A lighthouse cat.', first_mes: 'Hello.', mes_example: '<START>\r\n{{user}}: Hi\r\n{{char}}: Hello\r\nthere.\r\n' } };
  chunks.splice(chunks.length - 1, 0, textChunk('chara', Buffer.from(JSON.stringify(card)).toString('base64')));
  return encodePngChunks(chunks);
}

describe('cards over HTTP', () => {
  let dir: string;
  let server: RunningServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cards-http-'));
    server = await startServer({ dataDir: dir, engine: new FixedReplyEngine(), port: 0 });
  });
  after(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("a SillyTavern PNG card: its picture is the avatar and the one reference image, with the warning", async () => {
    const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: stPng() });
    const body = (await res.json()) as { id: string; avatar_url: string; reference_images: { id: string; url: string }[]; warnings: string[] };
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.deepEqual(body.reference_images.map((r) => r.id), ['avatar']);
    assert.equal(body.warnings.length, 1);
    assert.match(body.warnings[0]!, /^upload: the character has one reference image, its avatar; the method expects about 10/);
    for (const url of [body.avatar_url, body.reference_images[0]!.url]) {
      const img = new Uint8Array(await (await fetch(server.url + url)).arrayBuffer());
      const meta = await sharp(img).metadata();
      assert.deepEqual([meta.width, meta.height], [10, 14], url);
    }
    // The CRLF example chat comes back byte for byte in every format.
    for (const format of ['png', 'json', 'charx'] as const) {
      const out = await fetch(`${server.url}/v1/characters/${body.id}/export?format=${format}`);
      assert.equal(out.status, 200, format);
      const back = importCard(new Uint8Array(await out.arrayBuffer()));
      assert.equal(back.card.data.mes_example, '<START>\r\n{{user}}: Hi\r\n{{char}}: Hello\r\nthere.\r\n');
      assert.deepEqual(back.character.dialogue.map((s) => [s.user, s.reply]), [['Hi', 'Hello\nthere.']]);
    }
  });

  test('a character with held-out test images exports only with held_out=include or omit', async () => {
    const { character } = loadSampleCharacter();
    const n = character.tests.heldOutImages.length;
    const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: await exportCard(character, 'json', { heldOut: 'include' }) });
    const { id, warnings } = (await res.json()) as { id: string; warnings: string[] };
    assert.equal(res.status, 201);
    assert.deepEqual(warnings, [], 'twelve reference images: nothing to warn about');
    for (const format of ['png', 'json', 'charx'] as const) {
      const e = await expectErrorShape(await fetch(`${server.url}/v1/characters/${id}/export?format=${format}`), 400);
      assert.equal(e.param, 'held_out');
      assert.equal(e.code, 'held_out_images');
      assert.match(e.message, new RegExp(`character ${id} has ${n} held-out test images.*held_out=include.*held_out=omit`));
      const heldOutOf = async (q: string) => {
        const r = await fetch(`${server.url}/v1/characters/${id}/export?format=${format}&held_out=${q}`);
        assert.equal(r.status, 200, `${format} ${q}`);
        return importCard(new Uint8Array(await r.arrayBuffer())).character.tests.heldOutImages.length;
      };
      assert.equal(await heldOutOf('include'), n);
      assert.equal(await heldOutOf('omit'), 0);
    }
    await expectErrorShape(await fetch(`${server.url}/v1/characters/${id}/export?format=json&held_out=maybe`), 400);
  });

  test('a character without avatar or reference image exports as a PNG card on a placeholder', async () => {
    const created = await fetch(`${server.url}/v1/characters`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Nobody', description: 'no pictures' }) });
    const { id } = (await created.json()) as { id: string };
    const out = await fetch(`${server.url}/v1/characters/${id}/export?format=png`);
    assert.equal(out.status, 200);
    const bytes = new Uint8Array(await out.arrayBuffer());
    const meta = await sharp(bytes).metadata();
    assert.deepEqual([meta.width, meta.height], [400, 600]);
    assert.equal(importCard(bytes).character.description, 'no pictures');
  });
});
