// The prompt budget end to end (docs/serving.md 2) on the `tiny` model (4,096 positions): a
// 100 KB message is refused with context_length_exceeded before any model work, without the
// server's memory growing, and the server keeps answering; a long history is cut from the oldest
// turns and the cut reported in usage; an over-long image prompt is refused the same way; a
// refused request stores nothing. The time of the refusal is printed as a diagnostic (speed goals
// live in bench/, not in assertions).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCard, loadSampleCharacter } from '../../src/data/index.js';
import { TINY } from '../../src/model/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { ModelChatEngine, startServer, type RunningServer } from '../../src/serve/index.js';

let dir: string;
let server: RunningServer;
let id: string;
const { character } = loadSampleCharacter();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'serve-budget-'));
  server = await startServer({ dataDir: dir, engine: new ModelChatEngine(join(dir, 'models')), port: 0 });
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
  id = ((await res.json()) as { id: string }).id;
  const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
  const m = CharacterModel.untrained(character, { config: TINY, imageSize: 32, vocabSize: 400, seed: 5, texts });
  m.save(join(dir, 'models', id));
  m.dispose();
});

after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = async (path: string, body: unknown) => {
  const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};
const chats = async (): Promise<number> => ((await (await fetch(`${server.url}/v1/chats`)).json()) as { data: unknown[] }).data.length;
const sentence = 'The courier ran through the night market with a parcel under her arm. ';

test('a 100 KB message is refused with context_length_exceeded, memory stays flat, the server keeps serving', async (t) => {
  // Load the model first so the measurement sees only the request.
  assert.equal((await post('/v1/chat/completions', { model: id, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 })).status, 200);
  const rss0 = process.memoryUsage().rss;
  const big = sentence.repeat(Math.ceil(100_000 / sentence.length));
  const t0 = performance.now();
  const r = await post('/v1/chat/completions', { model: id, messages: [{ role: 'user', content: big }], store: true });
  const ms = performance.now() - t0;
  const grew = process.memoryUsage().rss - rss0;
  t.diagnostic(`100 KB message: ${r.status} in ${ms.toFixed(0)} ms, RSS growth ${(grew / 2 ** 20).toFixed(1)} MiB`);
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'context_length_exceeded');
  assert.equal(r.body.error.param, 'messages');
  assert.match(r.body.error.message, /context is 4096 tokens/);
  assert.ok(grew < 200 * 2 ** 20, `RSS grew by ${grew} bytes`);
  assert.equal(await chats(), 0, 'nothing of the refused request is stored');
  // Streamed, the refusal is still a plain 400 (no stream was opened).
  const s = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: id, stream: true, messages: [{ role: 'user', content: big }] }) });
  assert.equal(s.status, 400);
  assert.equal(((await s.json()) as { error: { code: string } }).error.code, 'context_length_exceeded');
  const ok = await post('/v1/chat/completions', { model: id, messages: [{ role: 'user', content: 'Still there?' }], max_tokens: 2 });
  assert.equal(ok.status, 200);
});

test('a long history is cut from the oldest turns and the cut reported in usage', async () => {
  const messages: { role: string; content: string }[] = [];
  for (let i = 0; i < 40; i++) messages.push({ role: i % 2 ? 'assistant' : 'user', content: `${i}: ${sentence.repeat(12)}` });
  messages.push({ role: 'user', content: 'And then?' });
  const r = await post('/v1/chat/completions', { model: id, messages, max_tokens: 4, temperature: 0 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const u = r.body.usage as { prompt_tokens: number; completion_tokens: number; truncated_messages: number };
  assert.ok(u.truncated_messages > 0 && u.truncated_messages < 40, `truncated ${u.truncated_messages}`);
  assert.ok(u.prompt_tokens + 4 + 1 <= 4096, `prompt ${u.prompt_tokens}`);
  // One more turn kept would not have fit: the cut is the smallest.
  const m = await CharacterModel.load(join(dir, 'models', id));
  try {
    const turns = messages.slice(u.truncated_messages - 1).map((x) => ({ role: x.role as 'user' | 'assistant', content: [{ text: x.content }] }));
    const plan = await m.planChat(turns, { maxTokens: 4 });
    assert.equal(plan.droppedTurns, 1);
  } finally {
    m.dispose();
  }
  // max_tokens beyond the context is refused.
  const over = await post('/v1/chat/completions', { model: id, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5000 });
  assert.equal(over.status, 400);
  assert.equal(over.body.error.code, 'context_length_exceeded');
});

test('a user image that cannot be decoded is a 400 before any model work, and nothing is stored', async () => {
  // A PNG signature and nothing else: it passes the type check at the edge but cannot be decoded.
  const broken = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]).toString('base64');
  const r = await post('/v1/chat/completions', {
    model: id, store: true, max_tokens: 2,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${broken}` } }] }],
  });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'invalid_image');
  assert.match(r.body.error.message, /image 1 of the conversation could not be decoded/);
  assert.equal(await chats(), 0);
});

test('a request whose context would not fit the per-request memory is refused before any model work', async () => {
  const { CharacterModel: CM } = await import('../../src/character/index.js');
  const m = await CM.load(join(dir, 'models', id));
  try {
    // tiny: 4 layers x 2 (K, V) x 4 KV heads x 32 x 4 bytes = 4 KiB a token, twice; 8 heads x 10 x 10 scores
    assert.equal(m.requestMemoryBytes(10, 5, false), 2 * 4096 * 16 + 8 * 10 * 10 * 4);
    // an image adds a full context's cache and its latent tokens: 32 px / 8 (VAE x4, patch 2) = 4 x 4, and 2 markers
    assert.equal(m.requestMemoryBytes(10, 5, true) - m.requestMemoryBytes(10, 5, false), 4096 * (4096 + 18));
  } finally {
    m.dispose();
  }
  const small = new ModelChatEngine(join(dir, 'models'), { requestMemoryBytes: 1 << 20 });
  try {
    const character = (await (await import('../../src/data/index.js')).loadSampleCharacter()).character;
    await assert.rejects(
      small.chat({ character: { ...character, id }, messages: [{ role: 'user', content: [{ type: 'text', text: sentence.repeat(40) }] }], modalities: ['text'], maxTokens: 200 }, { signal: new AbortController().signal }),
      (e: unknown) => (e as { status?: number; code?: string }).status === 400 && (e as { code?: string }).code === 'request_too_large',
    );
  } finally {
    await small.close();
  }
});

test('an image prompt longer than the context is refused the same way', async () => {
  const r = await post('/v1/images/generations', { model: id, prompt: sentence.repeat(Math.floor(32_000 / sentence.length)) });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'context_length_exceeded');
  assert.equal(r.body.error.param, 'prompt');
});
