// Seeded fuzz of request bodies over real HTTP (test/fuzz/fuzz.ts for the knobs): chat and image
// requests with values of the wrong kind or flipped bytes, and card uploads with flipped bytes.
// Every answer is below 500, an error is exactly the OpenAI error object without JavaScript
// internals, and the server keeps serving.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { exportCard, emptyCharacter } from '../../src/data/index.js';
import { startServer, type RunningServer } from '../../src/serve/index.js';
import { JS_INTERNALS, fuzz, mutateBytes, swapValue } from '../fuzz/fuzz.js';
import { FixedReplyEngine } from './hostile-fixtures.js';

const png = new Uint8Array(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#225588' } }).png().toBuffer());
const pngUri = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;

describe('fuzzed request bodies', () => {
  let server: RunningServer;
  let dir: string;
  let model: string;
  const statuses = new Map<number, number>();

  /** Sends one request; checks the answer's status and shape. */
  async function send(path: string, body: string | Uint8Array, contentType: string, label: string): Promise<void> {
    const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': contentType }, body });
    const text = await res.text();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.ok(res.status < 500, `${label}: ${res.status} ${text.slice(0, 300)}`);
    if (res.status >= 400) {
      const e = (JSON.parse(text) as { error: Record<string, unknown> }).error;
      assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type'], label);
      assert.doesNotMatch(String(e.message), JS_INTERNALS, label);
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'unichar-fuzz-'));
    server = await startServer({ dataDir: dir, engine: new FixedReplyEngine(), port: 0, queueCapacity: 64, limits: { jsonBodyBytes: 1 << 20, imageBytes: 64 << 10 } });
    const res = await fetch(`${server.url}/v1/characters`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Fuzz' }) });
    model = ((await res.json()) as { id: string }).id;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('chat completion bodies', async () => {
    const valid = {
      model,
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: pngUri, detail: 'low' } }] },
      ],
      max_tokens: 8,
      temperature: 0.5,
      stop: ['\n'],
      stream: false,
      modalities: ['text'],
    };
    await fuzz(150, async ({ rng, label }) => {
      if (rng.next() < 0.7) {
        let body: unknown = { ...valid, stream: rng.next() < 0.3 };
        for (let k = 1 + rng.int(3); k > 0; k--) body = swapValue(rng, body);
        await send('/v1/chat/completions', JSON.stringify(body), 'application/json', label);
      } else {
        await send('/v1/chat/completions', mutateBytes(rng, new TextEncoder().encode(JSON.stringify(valid))), 'application/json', label);
      }
    });
  });

  test('image generation bodies', async () => {
    const valid = { model, prompt: 'a teal square', n: 1, size: '64x64', response_format: 'b64_json', seed: 3 };
    await fuzz(100, async ({ rng, label }) => {
      const body = rng.next() < 0.7 ? JSON.stringify(swapValue(rng, valid)) : mutateBytes(rng, new TextEncoder().encode(JSON.stringify(valid)));
      await send('/v1/images/generations', body, 'application/json', label);
    });
  });

  test('card uploads', async () => {
    const c = { ...emptyCharacter('Upload'), referenceImages: [{ id: 'r0', data: png }] };
    const cards = [await exportCard(c, 'png', { heldOut: 'include' }), await exportCard(c, 'json', { heldOut: 'include' }), await exportCard(c, 'charx', { heldOut: 'include' })];
    await fuzz(60, async ({ rng, label }) => {
      const bytes = mutateBytes(rng, cards[rng.int(cards.length)]!, 3);
      await send('/v1/characters/import', bytes, ['application/octet-stream', 'image/png', 'application/json', 'application/zip'][rng.int(4)]!, label);
    });
    // The server still answers, and every imported character still reads back and exports.
    const list = (await (await fetch(`${server.url}/v1/characters`)).json()) as { data: { id: string }[] };
    for (const { id } of list.data) {
      assert.equal((await fetch(`${server.url}/v1/characters/${id}`)).status, 200, id);
      assert.equal((await fetch(`${server.url}/v1/characters/${id}/export?format=json`)).status, 200, id);
    }
  });

  after(() => {
    // Shown with the results: how the fuzzed requests were answered.
    console.log(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
  });
});
