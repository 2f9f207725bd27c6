// The HTTP API end to end: real server on 127.0.0.1, real SQLite in a temp dir, real fetch.
// The engine is `TestEchoEngine`, defined here only: a deterministic stand-in for the model layer
// that echoes the last user line word by word, can be held at a gate, and records cancellation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { exportCard, importCard, loadSampleCharacter, type Character } from '../../src/data/index.js';
import { startServer, type ChatEngine, type ChatOptions, type ChatRequest, type ChatResult, type GeneratedImage, type ImageRequest, type RunningServer } from '../../src/serve/index.js';

const RED_PNG = new Uint8Array(await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer());

/** Test-only engine. Reply: "<character name> heard: <last user text>", one token per word. */
class TestEchoEngine implements ChatEngine {
  gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  started = 0;
  aborted = 0;
  private onStart: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((r) => (this.openGate = r));
  }
  release(): void {
    this.openGate?.();
    this.gate = undefined;
  }
  /** Resolves when the `count`-th chat call has started. */
  whenStarted(count: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (this.started >= count ? resolve() : (this.onStart = check));
      check();
    });
  }

  models() {
    return [{ id: 'test-echo', ready: true }];
  }

  async chat(req: ChatRequest, opts: ChatOptions): Promise<ChatResult> {
    this.started++;
    this.onStart?.();
    const last = [...req.messages].reverse().find((m) => m.role === 'user');
    const said = last?.content.flatMap((p) => (p.type === 'text' ? [p.text] : ['<image>'])).join(' ') ?? '';
    const words = `${req.character.names.display} heard: ${said}`.split(' ');
    const tokens = words.map((w, i) => (i === 0 ? w : ` ${w}`));
    for (const [i, tok] of tokens.entries()) {
      if (i === 1 && this.gate) await this.waitGate(opts.signal);
      if (opts.signal.aborted) {
        this.aborted++;
        throw opts.signal.reason;
      }
      opts.onToken?.(tok);
    }
    const images: GeneratedImage[] = req.modalities.includes('image') && said.includes('[draw]') ? [{ bytes: RED_PNG, mime: 'image/png' }] : [];
    return { text: tokens.join(''), images, usage: { promptTokens: said.split(' ').length, completionTokens: tokens.length } };
  }

  private async waitGate(signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      signal.addEventListener('abort', () => resolve(), { once: true });
      void this.gate!.then(resolve);
    });
  }

  async generateImage(req: ImageRequest): Promise<{ images: GeneratedImage[] }> {
    return { images: Array.from({ length: req.n }, () => ({ bytes: RED_PNG, mime: 'image/png', revisedPrompt: req.prompt })) };
  }
}

interface SseEvent {
  data: string;
}
function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => ({ data: block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n') }));
}

async function expectError(res: Response, status: number, param?: string | null, code?: string): Promise<{ message: string; type: string; param: string | null; code: string | null }> {
  const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof body.error.message, 'string');
  if (param !== undefined) assert.equal(body.error.param, param, body.error.message);
  if (code !== undefined) assert.equal(body.error.code, code);
  return body.error;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'unichar-http-'));
}

describe('HTTP API', () => {
  let server: RunningServer;
  let engine: TestEchoEngine;
  let dir: string;
  let sample: Character;
  let characterId: string;
  const post = (path: string, body: unknown, init: RequestInit = {}) =>
    fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });

  before(async () => {
    dir = tempDir();
    engine = new TestEchoEngine();
    server = await startServer({ dataDir: dir, engine, port: 0, queueCapacity: 1, limits: { jsonBodyBytes: 1 << 20, imageBytes: 64 << 10 } });
    sample = loadSampleCharacter().character;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('binds 127.0.0.1 by default and answers /health', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.url}/health`);
    const body = (await res.json()) as { status: string; engine: { models: unknown } };
    assert.equal(body.status, 'ok');
    assert.deepEqual(body.engine.models, [{ id: 'test-echo', ready: true }]);
  });

  test('imports a PNG card of the sample character as raw bytes, lists it as a model', async () => {
    const png = await exportCard(sample, 'png', { heldOut: 'include' });
    const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
    const created = (await res.json()) as { id: string; name: string; avatar_url: string; reference_images: unknown[] };
    assert.equal(res.status, 201, JSON.stringify(created));
    characterId = created.id;
    assert.match(characterId, /^[a-z0-9][a-z0-9._-]*$/);
    assert.equal(created.name, sample.names.display);
    assert.equal(created.reference_images.length, sample.referenceImages.length);
    const avatar = await fetch(server.url + created.avatar_url);
    assert.equal(avatar.headers.get('content-type'), 'image/png');

    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { object: string; data: { id: string; object: string; owned_by: string }[] };
    assert.equal(models.object, 'list');
    assert.deepEqual(
      models.data.map((m) => [m.id, m.object]),
      [[characterId, 'model']],
    );
    const one = (await (await fetch(`${server.url}/v1/models/${characterId}`)).json()) as { id: string };
    assert.equal(one.id, characterId);
    await expectError(await fetch(`${server.url}/v1/models/nobody`), 404, 'model', 'model_not_found');
  });

  test('exports json, png and charx cards that read back as the same character', async () => {
    for (const format of ['json', 'png', 'charx'] as const) {
      const res = await fetch(`${server.url}/v1/characters/${characterId}/export?format=${format}&held_out=include`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-disposition') ?? '', new RegExp(`filename="${characterId}\\.${format}"`));
      const { character, format: read } = importCard(new Uint8Array(await res.arrayBuffer()));
      assert.equal(read, format);
      assert.equal(character.names.display, sample.names.display);
      assert.equal(character.description, sample.description);
      assert.equal(character.profile, sample.profile);
      assert.deepEqual(character.scenes, sample.scenes);
      assert.equal(character.referenceImages.length, sample.referenceImages.length);
      for (const [i, img] of character.referenceImages.entries()) {
        assert.equal(img.id, sample.referenceImages[i]!.id);
        assert.ok(img.data && img.data.length > 0);
      }
    }
    await expectError(await fetch(`${server.url}/v1/characters/${characterId}/export?format=gif`), 400, 'format');
  });

  test('imports a CHARX card sent as multipart form data', async () => {
    const charx = await exportCard(sample, 'charx', { heldOut: 'include' });
    const form = new FormData();
    form.append('file', new Blob([charx], { type: 'application/zip' }), 'tessel.charx');
    const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', body: form });
    const created = (await res.json()) as { id: string; name: string };
    assert.equal(res.status, 201, JSON.stringify(created));
    assert.notEqual(created.id, characterId, 'a second import gets its own id');
    assert.equal(created.name, sample.names.display);
    const del = await fetch(`${server.url}/v1/characters/${created.id}`, { method: 'DELETE' });
    assert.deepEqual(await del.json(), { id: created.id, object: 'character', deleted: true });
  });

  test('a broken card upload is a 400, never a 500', async () => {
    await expectError(await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"spec": 12' }), 400, 'file', 'invalid_card');
    const notPng = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 1]);
    await expectError(await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: notPng }), 400, 'file', 'invalid_card');
    await expectError(await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }), 400, 'file', 'missing_file');
  });

  test('characters: create, update, get, delete', async () => {
    const res = await post('/v1/characters', { name: 'Mira Vale', description: 'A lighthouse keeper.', category: 'human', avatar: `data:image/png;base64,${Buffer.from(RED_PNG).toString('base64')}` });
    const c = (await res.json()) as { id: string; name: string; description: string; avatar_url: string };
    assert.equal(res.status, 201, JSON.stringify(c));
    assert.equal(c.id, 'mira-vale');
    assert.equal(c.description, 'A lighthouse keeper.');
    assert.ok(c.avatar_url.startsWith('/v1/images/'));
    const patched = (await (await fetch(`${server.url}/v1/characters/${c.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ style: 'terse' }) })).json()) as {
      style: string;
      description: string;
    };
    assert.deepEqual([patched.style, patched.description], ['terse', 'A lighthouse keeper.']);
    const list = (await (await fetch(`${server.url}/v1/characters`)).json()) as { data: { id: string }[] };
    assert.ok(list.data.some((x) => x.id === c.id));
    await expectError(await post('/v1/characters', { description: 'no name' }), 400, 'name');
    await expectError(await post('/v1/characters', { name: 'X', avatar: 'https://example.com/a.png' }), 400, 'avatar', 'invalid_image_url');
    assert.equal((await fetch(`${server.url}/v1/characters/${c.id}`, { method: 'DELETE' })).status, 200);
    await expectError(await fetch(`${server.url}/v1/characters/${c.id}`), 404, 'id', 'character_not_found');
    await expectError(await fetch(`${server.url}/v1/characters/${c.id}`, { method: 'DELETE' }), 404);
  });

  test('chat completion: OpenAI response shape, usage, and both turns persisted', async () => {
    const res = await post('/v1/chat/completions', {
      model: characterId,
      messages: [
        { role: 'system', content: 'Stay in character.' },
        { role: 'user', content: [{ type: 'text', text: 'hello there' }] },
      ],
      modalities: ['text'],
      temperature: 0.7,
      store: true, // a request without chat_id is kept only when asked (docs/serving.md 5)
    });
    const body = (await res.json()) as {
      id: string;
      object: string;
      model: string;
      chat_id: string;
      choices: { index: number; message: { role: string; content: string; images?: unknown }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, characterId);
    assert.deepEqual(body.choices, [{ index: 0, message: { role: 'assistant', content: `${sample.names.display} heard: hello there` }, finish_reason: 'stop' }]);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
    assert.equal(res.headers.get('x-chat-id'), body.chat_id);

    const chat = (await (await fetch(`${server.url}/v1/chats/${body.chat_id}`)).json()) as { character_id: string; messages: { role: string; content: string }[] };
    assert.equal(chat.character_id, characterId);
    assert.deepEqual(
      chat.messages.map((m) => [m.role, m.content]),
      [
        ['system', 'Stay in character.'],
        ['user', 'hello there'],
        ['assistant', body.choices[0]!.message.content],
      ],
    );
    // Continuing the chat stores only the new turn.
    const next = (await (await post('/v1/chat/completions', { model: characterId, chat_id: body.chat_id, messages: [{ role: 'user', content: 'again' }] })).json()) as { chat_id: string };
    assert.equal(next.chat_id, body.chat_id);
    const after2 = (await (await fetch(`${server.url}/v1/chats/${body.chat_id}`)).json()) as { messages: unknown[] };
    assert.equal(after2.messages.length, 5);
  });

  test('image input as a data URI and image output in message.images[]', async () => {
    const uri = `data:image/png;base64,${Buffer.from(RED_PNG).toString('base64')}`;
    const res = await post('/v1/chat/completions', {
      model: characterId,
      modalities: ['text', 'image'],
      store: true,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'look [draw]' }, { type: 'image_url', image_url: { url: uri, detail: 'low' } }] }],
    });
    const body = (await res.json()) as { chat_id: string; choices: { message: { content: string; images: { type: string; image_url: { url: string } }[] } }[] };
    assert.equal(res.status, 200, JSON.stringify(body));
    const msg = body.choices[0]!.message;
    assert.equal(msg.content, `${sample.names.display} heard: look [draw] <image>`);
    assert.equal(msg.images.length, 1);
    assert.equal(msg.images[0]!.type, 'image_url');
    assert.equal(msg.images[0]!.image_url.url, uri);
    const chat = (await (await fetch(`${server.url}/v1/chats/${body.chat_id}`)).json()) as { messages: { images: { url: string }[] }[] };
    const stored = await fetch(server.url + chat.messages[1]!.images[0]!.url);
    assert.deepEqual(new Uint8Array(await stored.arrayBuffer()), RED_PNG);
  });

  test('stream: role chunk, content chunks, finish, usage chunk, then [DONE]', async () => {
    const res = await post('/v1/chat/completions', { model: characterId, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'one two three' }] });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = parseSse(await res.text());
    assert.equal(events.at(-1)!.data, '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as { id: string; object: string; choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[]; usage?: { total_tokens: number; completion_tokens: number } });
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id));
    assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
    const usage = chunks.at(-1)!;
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage!.completion_tokens, 5);
    const finish = chunks.at(-2)!;
    assert.equal(finish.choices[0]!.finish_reason, 'stop');
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
    assert.equal(text, `${sample.names.display} heard: one two three`);
    assert.equal(chunks.filter((c) => c.choices[0]?.delta.content).length, 5, 'one chunk per token');
    // Without include_usage there is no usage chunk.
    const plain = parseSse(await (await post('/v1/chat/completions', { model: characterId, stream: true, messages: [{ role: 'user', content: 'hi' }] })).text());
    assert.ok(plain.slice(0, -1).every((e) => (JSON.parse(e.data) as { choices: unknown[] }).choices.length === 1));
  });

  test('validation errors are 400 in the OpenAI shape, naming the field', async () => {
    await expectError(await post('/v1/chat/completions', { model: characterId }), 400, 'messages');
    await expectError(await post('/v1/chat/completions', { model: characterId, messages: [] }), 400, 'messages');
    await expectError(await post('/v1/chat/completions', { model: characterId, messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages[0].role');
    await expectError(await post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: [{ type: 'text', text: 3 }] }] }), 400, 'messages[0].content[0].text');
    await expectError(await post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: 'x' }], temperature: 5 }), 400, 'temperature');
    await expectError(
      await post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }),
      400,
      'messages[0].content[0].image_url.url',
      'invalid_image_url',
    );
    await expectError(
      await post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8=' } }] }] }),
      400,
      'messages[0].content[0].image_url.url',
      'invalid_image',
    );
    await expectError(await post('/v1/chat/completions', { model: 'nobody', messages: [{ role: 'user', content: 'x' }] }), 404, 'model', 'model_not_found');
    await expectError(await post('/v1/chat/completions', { model: characterId, chat_id: 'chat-nope', messages: [{ role: 'user', content: 'x' }] }), 404, 'chat_id');
    await expectError(await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' }), 400);
    await expectError(await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }), 415);
    await expectError(await fetch(`${server.url}/v1/nowhere`), 404, null, 'unknown_url');
  });

  test('oversized bodies and images are refused with 413', async () => {
    const big = 'x'.repeat(2 << 20);
    await expectError(await post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: big }] }), 413, null, 'body_too_large');
    const bigImage = `data:image/png;base64,${Buffer.alloc(100 << 10).toString('base64')}`;
    await expectError(await post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: bigImage } }] }] }), 413, 'messages[0].content[0].image_url.url', 'image_too_large');
  });

  test('images/generations returns b64_json images', async () => {
    const res = await post('/v1/images/generations', { prompt: 'a lighthouse at dusk', model: characterId, n: 2, size: '512x512' });
    const body = (await res.json()) as { created: number; data: { b64_json: string; revised_prompt: string }[] };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.data.length, 2);
    assert.deepEqual(new Uint8Array(Buffer.from(body.data[0]!.b64_json, 'base64')), RED_PNG);
    await expectError(await post('/v1/images/generations', { prompt: 'x', size: '9x9' }), 400, 'size');
    await expectError(await post('/v1/images/generations', { prompt: 'x', response_format: 'url' }), 400, 'response_format');
    await expectError(await post('/v1/images/generations', { prompt: '' }), 400, 'prompt');
  });

  test('429 in the OpenAI shape when the queue is full; the held requests then finish', async () => {
    engine.hold();
    const started = engine.started;
    const msg = (text: string) => ({ model: characterId, messages: [{ role: 'user', content: text }] });
    const running = post('/v1/chat/completions', msg('first'));
    await engine.whenStarted(started + 1);
    const waiting = post('/v1/chat/completions', msg('second'));
    while (server.queue.stats.waiting < 1) await new Promise((r) => setTimeout(r, 5));
    const err = await expectError(await post('/v1/chat/completions', msg('third')), 429, null, 'rate_limit_exceeded');
    assert.equal(err.type, 'rate_limit_error');
    // Streaming requests are refused the same way, before any event is sent.
    await expectError(await post('/v1/chat/completions', { ...msg('fourth'), stream: true }), 429);
    engine.release();
    const [a, b] = await Promise.all([running, waiting]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    const texts = await Promise.all([a.json(), b.json()]);
    assert.match((texts[1] as { choices: { message: { content: string } }[] }).choices[0]!.message.content, /second$/);
  });

  test('a client that disconnects mid-stream cancels its generation and frees the queue', async () => {
    engine.hold();
    const aborted = engine.aborted;
    const started = engine.started;
    const ac = new AbortController();
    const res = await post('/v1/chat/completions', { model: characterId, stream: true, messages: [{ role: 'user', content: 'long story' }] }, { signal: ac.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /"role":"assistant"/);
    await engine.whenStarted(started + 1);
    ac.abort();
    while (engine.aborted === aborted) await new Promise((r) => setTimeout(r, 5));
    while (server.queue.stats.running > 0) await new Promise((r) => setTimeout(r, 5));
    engine.release();
    // The server is healthy and serves the next request.
    assert.equal((await post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: 'still there?' }] })).status, 200);
  });

  test('a client that disconnects while queued never reaches the engine', async () => {
    engine.hold();
    const started = engine.started;
    const running = post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: 'first' }] });
    await engine.whenStarted(started + 1);
    const ac = new AbortController();
    const queued = post('/v1/chat/completions', { model: characterId, messages: [{ role: 'user', content: 'never' }] }, { signal: ac.signal }).catch((e: Error) => e);
    while (server.queue.stats.waiting < 1) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    assert.equal(((await queued) as Error).name, 'AbortError');
    while (server.queue.stats.waiting > 0) await new Promise((r) => setTimeout(r, 5));
    engine.release();
    assert.equal((await running).status, 200);
    assert.equal(engine.started, started + 1, 'the abandoned request was never generated');
  });
});

describe('HTTP API with an API key', () => {
  let server: RunningServer;
  let dir: string;
  before(async () => {
    dir = tempDir();
    server = await startServer({ dataDir: dir, engine: new TestEchoEngine(), port: 0, apiKey: 'sk-test-123' });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('401 without or with a wrong key; 200 with it; /health stays open', async () => {
    const missing = await expectError(await fetch(`${server.url}/v1/models`), 401, null, 'invalid_api_key');
    assert.equal(missing.type, 'authentication_error');
    await expectError(await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer sk-wrong' } }), 401, null, 'invalid_api_key');
    await expectError(await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }), 401);
    const ok = await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer sk-test-123' } });
    assert.equal(ok.status, 200);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });
});
