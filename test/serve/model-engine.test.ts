// The server with the real model engine: a character model folder (micro, untrained) answers a
// chat completion with text and an image through the worker thread, streams, and a character
// without a model gets a clear 409. Then docs/serving.md end to end: the system prompt reaches
// the model, every sampling field is honoured or refused, image sizes and seeds, text-only and
// stateless by default, Connection: close on a raw socket, and a SillyTavern-style request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { exportCard, loadSampleCharacter, imageSize } from '../../src/data/index.js';

const character = () => loadSampleCharacter().character;
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
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
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
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: new TextDecoder().decode(await exportCard({ ...character, id: 'other' }, 'json', { heldOut: 'include' })) });
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

type Completion = {
  chat_id?: string;
  choices: { message: { content: string; images?: unknown[] }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; truncated_messages?: number };
  error?: { message: string; param: string | null; code: string | null };
};

async function complete(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; body: Completion; res: Response }> {
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model: id, ...body }) });
  return { status: res.status, body: (await res.json()) as Completion, res };
}
const hello = [{ role: 'user', content: 'Hello there, where are we going today?' }];
const replyOf = async (body: Record<string, unknown>): Promise<string> => {
  const r = await complete({ messages: hello, max_tokens: 12, ...body });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.choices[0]!.message.content;
};

test('a system message changes prompt_tokens (the model sees it)', async () => {
  const plain = await complete({ messages: hello, max_tokens: 2, temperature: 0 });
  const card = 'Tessel is a teal fox courier. Personality: cheerful. Scenario: the night market.';
  const withSystem = await complete({ messages: [{ role: 'system', content: card }, ...hello], max_tokens: 2, temperature: 0 });
  const tokens = (await import('../../src/character/index.js')).CharacterModel;
  const m = await tokens.load(join(dir, 'models', id));
  try {
    const want = await m.planChat([{ role: 'system', content: [{ text: card }] }, { role: 'user', content: [{ text: hello[0]!.content }] }], { maxTokens: 2 });
    assert.equal(withSystem.body.usage.prompt_tokens, want.promptTokens);
    assert.ok(withSystem.body.usage.prompt_tokens - plain.body.usage.prompt_tokens >= (await m.encode(card)).length);
  } finally {
    m.dispose();
  }
});

test('every sampling field changes the reply or is refused with a 400 naming it', async () => {
  const greedy = await replyOf({ temperature: 0 });
  // top_p and top_k that keep only the most likely token sample the greedy reply at any temperature
  assert.equal(await replyOf({ temperature: 2, top_p: 1e-9, seed: 3 }), greedy);
  assert.equal(await replyOf({ temperature: 2, top_k: 1, seed: 3 }), greedy);
  // the same seed, the same reply; another seed, another reply
  const s1 = await replyOf({ temperature: 1.5, seed: 42 });
  assert.equal(await replyOf({ temperature: 1.5, seed: 42 }), s1);
  assert.notEqual(await replyOf({ temperature: 1.5, seed: 43 }), s1);
  // stop: the reply ends before the stop string
  assert.ok(greedy.length >= 6, `greedy reply too short: ${JSON.stringify(greedy)}`);
  const stop = greedy.slice(2, 4);
  assert.equal(await replyOf({ temperature: 0, stop }), greedy.slice(0, greedy.indexOf(stop)));
  // max_tokens and max_completion_tokens bound the generated tokens
  const short = await complete({ messages: hello, temperature: 0, max_completion_tokens: 3 });
  assert.ok(short.body.usage.completion_tokens <= 3);
  // penalties (their formulas are checked in test/model/prefill-chunks): this greedy reply never
  // repeats a token, so negative frequency/presence penalties (rewarding repeats) change it, and
  // the repetition penalty, which also counts the prompt's tokens, changes it too
  const long = await replyOf({ temperature: 0, max_tokens: 40 });
  assert.notEqual(await replyOf({ temperature: 0, max_tokens: 40, frequency_penalty: -2 }), long);
  assert.notEqual(await replyOf({ temperature: 0, max_tokens: 40, presence_penalty: -2 }), long);
  assert.notEqual(await replyOf({ temperature: 0, max_tokens: 40, repetition_penalty: 5 }), long);
  // refused: n > 1, logit_bias, logprobs, out-of-range values
  for (const [field, value] of [['n', 2], ['logit_bias', { '5': 10 }], ['logprobs', true], ['frequency_penalty', 3], ['top_p', 0]] as const) {
    const r = await complete({ messages: hello, [field]: value });
    assert.equal(r.status, 400, field);
    assert.equal(r.body.error!.param, field);
  }
});

test('image size: "auto" or the model\'s size; others are a 400 listing the size; a seed repeats the image', async () => {
  const gen = async (body: Record<string, unknown>) => {
    const res = await fetch(`${server.url}/v1/images/generations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: id, prompt: 'the fox at the market', ...body }) });
    return { status: res.status, body: (await res.json()) as { data: { b64_json: string }[]; error?: { param: string; message: string } } };
  };
  const bad = await gen({ size: '256x256' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error!.param, 'size');
  assert.match(bad.body.error!.message, /32x32/);
  const a = await gen({ size: '32x32', seed: 9 });
  const b = await gen({ size: 'auto', seed: 9 });
  const c = await gen({ seed: 10 });
  assert.equal(a.status, 200);
  assert.equal(a.body.data[0]!.b64_json, b.body.data[0]!.b64_json);
  assert.notEqual(a.body.data[0]!.b64_json, c.body.data[0]!.b64_json);
});

test('replies are text only unless images are asked for; a stateless request stores no chat; store: true keeps one', async () => {
  const chats = async (): Promise<number> => ((await (await fetch(`${server.url}/v1/chats`)).json()) as { data: unknown[] }).data.length;
  const before = await chats();
  const r = await complete({ messages: hello, max_tokens: 3 });
  assert.equal(r.body.choices[0]!.message.images, undefined);
  assert.equal(r.body.chat_id, undefined);
  assert.equal(r.res.headers.get('x-chat-id'), null);
  assert.equal(await chats(), before);
  const kept = await complete({ messages: hello, max_tokens: 3, store: true });
  assert.match(kept.body.chat_id!, /^chat-/);
  assert.equal(await chats(), before + 1);
  // The character's setting makes images the default; the request can still say text only.
  const patch = async (v: boolean) => {
    const res = await fetch(`${server.url}/v1/characters/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reply_images: v }) });
    return ((await res.json()) as { reply_images: boolean }).reply_images;
  };
  assert.equal(await patch(true), true);
  try {
    assert.equal((await complete({ messages: hello, max_tokens: 2 })).body.choices[0]!.message.images?.length, 1);
    assert.equal((await complete({ messages: hello, max_tokens: 2, modalities: ['text'] })).body.choices[0]!.message.images, undefined);
  } finally {
    assert.equal(await patch(false), false);
  }
});

/** One raw HTTP/1.1 exchange on a socket: the bytes received until `done` says the response is complete. */
async function rawRequest(sock: Socket, body: string, headers: string): Promise<string> {
  const u = new URL(server.url);
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`);
  let got = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      got += d.toString('utf8');
      // a chunked stream ends with its zero-length chunk; a JSON body with its content length
      if (got.endsWith('0\r\n\r\n') || /content-length: (\d+)/i.test(got) && Buffer.byteLength(got.slice(got.indexOf('\r\n\r\n') + 4)) >= Number(/content-length: (\d+)/i.exec(got)![1])) {
        sock.off('data', onData);
        resolve();
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
  return got;
}

test('HTTP: Connection: close on a stream closes the socket; a keep-alive stream leaves it clean for the next request', async () => {
  const u = new URL(server.url);
  const streamBody = JSON.stringify({ model: id, messages: hello, stream: true, max_tokens: 3, temperature: 0 });
  const closing = connect(Number(u.port), u.hostname);
  const ended = new Promise<void>((resolve) => closing.once('close', () => resolve()));
  const first = await rawRequest(closing, streamBody, 'Connection: close\r\n');
  assert.match(first, /^HTTP\/1\.1 200/);
  assert.match(first, /\r\nconnection: close\r\n/i);
  assert.ok(first.includes('data: [DONE]'));
  await ended; // the server closed it

  const kept = connect(Number(u.port), u.hostname);
  try {
    const a = await rawRequest(kept, streamBody, '');
    assert.match(a, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(a, /connection: close/i);
    assert.ok(a.includes('data: [DONE]'));
    const b = await rawRequest(kept, JSON.stringify({ model: id, messages: hello, max_tokens: 2, temperature: 0 }), '');
    assert.match(b, /^HTTP\/1\.1 200/);
    assert.match(b, /"object":"chat\.completion"/);
  } finally {
    kept.destroy();
  }
});

test('a SillyTavern-style request: card fields in the system prompt, Bearer undefined, Connection: close, streamed', async () => {
  const system = [
    "Write Tessel's next reply in a fictional chat between Tessel and User.",
    `Tessel's description: ${'A teal fox courier with an orange star on her forehead. '.repeat(4)}`,
    "Tessel's personality: cheerful, quick, curious",
    'Scenario: a delivery run through the night market',
  ].join('\n');
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer undefined', connection: 'close' },
    body: JSON.stringify({
      model: id, stream: true, max_tokens: 4, temperature: 0.9, top_p: 0.95, frequency_penalty: 0.2, presence_penalty: 0.1, seed: -1 >>> 1, logit_bias: {},
      messages: [
        { role: 'system', content: system },
        { role: 'system', name: 'example_user', content: 'Where are you headed?' },
        { role: 'system', name: 'example_assistant', content: 'The lantern stalls, of course!' },
        { role: 'assistant', content: character().opening },
        { role: 'user', content: 'Hi Tessel! Got a parcel for me?' },
      ],
      stream_options: { include_usage: true },
    }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('connection'), 'close');
  const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  assert.equal(events.at(-1), '[DONE]');
  const usage = (JSON.parse(events.at(-2)!) as { usage: { prompt_tokens: number } }).usage;
  const plain = await complete({ messages: [{ role: 'user', content: 'Hi Tessel! Got a parcel for me?' }], max_tokens: 1 });
  assert.ok(usage.prompt_tokens > plain.body.usage.prompt_tokens + 40, `${usage.prompt_tokens} vs ${plain.body.usage.prompt_tokens}`);
});

test("the web UI's flow: a streamed first turn with store: true names its chat; the next turn continues it", async () => {
  const stream = async (body: Record<string, unknown>): Promise<{ chatId: string | null; text: string }> => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: id, stream: true, max_tokens: 4, temperature: 0, ...body }),
    });
    assert.equal(res.status, 200);
    const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)) as { choices: { delta: { content?: string } }[] });
    return { chatId: res.headers.get('x-chat-id'), text: events.map((e) => e.choices[0]?.delta.content ?? '').join('') };
  };
  const first = await stream({ messages: [{ role: 'user', content: 'Hello!' }], store: true });
  assert.match(first.chatId ?? '', /^chat-/);
  const second = await stream({ chat_id: first.chatId, messages: [{ role: 'user', content: 'Hello!' }, { role: 'assistant', content: first.text }, { role: 'user', content: 'And now?' }] });
  assert.equal(second.chatId, first.chatId);
  const stored = (await (await fetch(`${server.url}/v1/chats/${first.chatId}`)).json()) as { messages: { role: string; content: string }[] };
  assert.deepEqual(stored.messages.map((m) => [m.role, m.content]), [['user', 'Hello!'], ['assistant', first.text], ['user', 'And now?'], ['assistant', second.text]]);
});

test('usage.prompt_tokens_details.cached_tokens: the same prompt again is served from the prefix cache, streamed or not', async () => {
  const messages = [{ role: 'user', content: 'Which stall sells the blue lanterns?' }];
  const cachedOf = (u: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens: number } }): number => u.prompt_tokens_details!.cached_tokens;
  const first = await complete({ messages, max_tokens: 2, temperature: 0 });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, messages, max_tokens: 2, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  const streamed = (JSON.parse(events.at(-2)!) as { usage: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens: number } } }).usage;
  // Text only, the prompt is one segment: the second time all of it comes from the cache.
  assert.equal(cachedOf(streamed), streamed.prompt_tokens);
  const other = await complete({ messages: [{ role: 'user', content: 'Is the night market open tomorrow?' }], max_tokens: 2, temperature: 0 });
  const cached = cachedOf(other.body.usage as never);
  // The character's shared prompt head, in whole blocks of 64 tokens (docs/serving.md 9).
  assert.ok(cached >= 64 && cached % 64 === 0 && cached < other.body.usage.prompt_tokens, `cached ${cached} of ${other.body.usage.prompt_tokens}`);
});
