// The server with the real model engine: a character model folder (tiny, untrained) answers a
// chat completion with text and an image through the worker thread, streams, and a character
// without a model gets a clear 409.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCard, loadSampleCharacter, imageSize } from '../../src/data/index.js';
import { MICRO } from '../../src/model/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { ModelChatEngine, startServer, type RunningServer } from '../../src/serve/index.js';

let dir: string;
let server: RunningServer;
let engine: ModelChatEngine;
let id: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'serve-model-'));
  engine = new ModelChatEngine(join(dir, 'models'));
  server = await startServer({ dataDir: dir, engine, port: 0 });
  const { character } = loadSampleCharacter();
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await exportCard(character, 'png') });
  id = ((await res.json()) as { id: string }).id;
  const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
  const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
  m.save(join(dir, 'models', id));
  m.dispose();
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a chat completion with text and image modalities returns a reply and a PNG', async () => {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: 'Where is the next delivery?' }], modalities: ['text', 'image'], max_tokens: 8, temperature: 0 }),
  });
  const body = (await res.json()) as { choices: { message: { content: string; images?: { image_url: { url: string } }[] } }[]; usage: { completion_tokens: number } };
  assert.equal(res.status, 200, JSON.stringify(body));
  const msg = body.choices[0]!.message;
  assert.equal(typeof msg.content, 'string');
  assert.equal(msg.images?.length, 1);
  const url = msg.images![0]!.image_url.url;
  const bytes = url.startsWith('data:') ? Buffer.from(url.slice(url.indexOf(',') + 1), 'base64') : new Uint8Array(await (await fetch(server.url + url)).arrayBuffer());
  assert.deepEqual(await imageSize(new Uint8Array(bytes)).then((s) => [s.width, s.format]), [32, 'png']);
});

test('streaming delivers the same text as the final message', async () => {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: 'Hello!' }], stream: true, max_tokens: 8, temperature: 0 }),
  });
  assert.equal(res.status, 200);
  const text = await res.text();
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  assert.equal(events.at(-1), '[DONE]');
  const streamed = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { delta: { content?: string } }[] }).map((c) => c.choices[0]?.delta.content ?? '').join('');
  const again = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 8, temperature: 0 }),
  });
  const full = ((await again.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
  assert.equal(streamed, full);
});

test('a character without a customized model is a 409 naming what to do', async () => {
  const { character } = loadSampleCharacter();
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: new TextDecoder().decode(await exportCard({ ...character, id: 'other' }, 'json')) });
  const other = ((await res.json()) as { id: string }).id;
  const chat = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: other, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = (await chat.json()) as { error: { message: string; code: string } };
  assert.equal(chat.status, 409);
  assert.equal(body.error.code, 'model_not_ready');
  assert.match(body.error.message, /unicharacter customize/);
});
