// The official `openai` npm client against a running server with a real tiny untrained character
// model (docs/ecosystem.md 4: models, chat, streaming, images). The server needs an API
// key, so the client's `Authorization: Bearer` header is exercised too. Errors surface as the
// client's own APIError subclasses, carrying the OpenAI error shape (`type`, `param`, `code`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { APIError, AuthenticationError, BadRequestError, NotFoundError } from 'openai';
import { exportCard, imageSize, loadSampleCharacter } from '../../src/data/index.js';
import { MICRO } from '../../src/model/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { ModelChatEngine, startServer, type RunningServer } from '../../src/serve/index.js';

const API_KEY = 'openai-client-test-key';

let dir: string;
let server: RunningServer;
let client: OpenAI;
let id: string;

/** The server's extension: generated images ride on the assistant message (and on a delta). */
type ImageParts = { images?: { type: string; image_url: { url: string } }[] };

async function pngOf(url: string): Promise<Uint8Array> {
  assert.match(url, /^data:image\/png;base64,/);
  return new Uint8Array(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'serve-openai-'));
  server = await startServer({ dataDir: dir, engine: new ModelChatEngine(join(dir, 'models')), port: 0, apiKey: API_KEY });
  const { character } = loadSampleCharacter();
  const res = await fetch(`${server.url}/v1/characters/import`, {
    method: 'POST',
    headers: { 'content-type': 'image/png', authorization: `Bearer ${API_KEY}` },
    body: await exportCard(character, 'png', { heldOut: 'include' }),
  });
  assert.equal(res.status, 201);
  id = ((await res.json()) as { id: string }).id;
  const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
  const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
  m.save(join(dir, 'models', id));
  m.dispose();
  // No retries: a retried 409/429 would hide what the server answered and slow the test.
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 60_000 });
});

after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('models.list: the character is a model', async () => {
  const ids: string[] = [];
  for await (const model of client.models.list()) {
    assert.equal(model.object, 'model');
    assert.equal(typeof model.created, 'number');
    assert.equal(model.owned_by, 'unicharacter');
    ids.push(model.id);
  }
  assert.deepEqual(ids, [id]);
  const one = await client.models.retrieve(id);
  assert.equal(one.id, id);
});

test('chat.completions.create: text only, then text and an image', async () => {
  const plain = await client.chat.completions.create({ model: id, messages: [{ role: 'user', content: 'Hello!' }], modalities: ['text'], max_tokens: 6, temperature: 0 });
  assert.equal(plain.object, 'chat.completion');
  assert.equal(plain.model, id);
  assert.equal(plain.choices.length, 1);
  const msg = plain.choices[0]!.message;
  assert.equal(msg.role, 'assistant');
  assert.equal(typeof msg.content, 'string');
  assert.equal((msg as ImageParts).images, undefined, 'no image asked for, none sent');
  assert.ok(['stop', 'length'].includes(plain.choices[0]!.finish_reason));
  assert.ok(plain.usage && plain.usage.completion_tokens > 0);
  assert.equal(plain.usage.total_tokens, plain.usage.prompt_tokens + plain.usage.completion_tokens);

  const withImage = await client.chat.completions.create({
    model: id,
    messages: [
      { role: 'system', content: 'Stay in character.' },
      { role: 'user', content: 'Where is the next delivery?' },
    ],
    // 'image' is this server's modality (the client's types know 'text' and 'audio').
    modalities: ['text', 'image'] as unknown as ('text' | 'audio')[],
    max_tokens: 6,
    temperature: 0,
  });
  const images = (withImage.choices[0]!.message as ImageParts).images;
  assert.equal(images?.length, 1);
  assert.equal(images![0]!.type, 'image_url');
  const size = await imageSize(await pngOf(images![0]!.image_url.url));
  assert.deepEqual([size.format, size.width, size.height], ['png', 32, 32]);
});

test('streaming: deltas concatenate to the non-streamed reply; the last chunk carries usage', async () => {
  const request = { model: id, messages: [{ role: 'user' as const, content: 'Tell me about your work.' }], max_tokens: 8, temperature: 0 };
  const stream = await client.chat.completions.create({ ...request, modalities: ['text'], stream: true, stream_options: { include_usage: true } });
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  let role: string | undefined;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) {
      assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
      usage = chunk.usage;
      continue;
    }
    assert.equal(usage, undefined, 'usage comes last');
    const choice = chunk.choices[0]!;
    role ??= choice.delta.role;
    text += choice.delta.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.ok(chunks >= 3, `only ${chunks} chunks`);
  assert.ok(finish === 'stop' || finish === 'length');
  assert.ok(usage, 'no usage chunk');
  assert.ok(usage.completion_tokens > 0);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

  const full = await client.chat.completions.create({ ...request, modalities: ['text'] });
  assert.equal(text, full.choices[0]!.message.content);
  assert.equal(usage.completion_tokens, full.usage!.completion_tokens);
});

test('streaming with an image: the image arrives as a delta before the finish', async () => {
  const stream = await client.chat.completions.create({
    model: id,
    messages: [{ role: 'user', content: 'Show me the workshop.' }],
    modalities: ['text', 'image'] as unknown as ('text' | 'audio')[],
    max_tokens: 4,
    temperature: 0,
    stream: true,
  });
  const urls: string[] = [];
  let finishedBeforeImage = false;
  let finished = false;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    for (const img of (choice.delta as ImageParts).images ?? []) {
      if (finished) finishedBeforeImage = true;
      urls.push(img.image_url.url);
    }
    if (choice.finish_reason) finished = true;
  }
  assert.ok(finished);
  assert.equal(finishedBeforeImage, false);
  assert.equal(urls.length, 1);
  assert.equal((await imageSize(await pngOf(urls[0]!))).format, 'png');
});

test('images.generate with b64_json decodes to a PNG', async () => {
  // The model draws the size it was trained on (32x32 here); other sizes are refused.
  const res = await client.images.generate({ model: id, prompt: 'the character at the workbench', response_format: 'b64_json', n: 1, size: '32x32' as '256x256' });
  assert.equal(typeof res.created, 'number');
  assert.equal(res.data?.length, 1);
  const bytes = new Uint8Array(Buffer.from(res.data![0]!.b64_json!, 'base64'));
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const size = await imageSize(bytes);
  assert.deepEqual([size.format, size.width, size.height], ['png', 32, 32]);
  const refused = await apiError(() => client.images.generate({ model: id, prompt: 'x', response_format: 'b64_json', size: '256x256' }));
  assert.ok(refused instanceof BadRequestError);
  assert.equal(refused.param, 'size');
});

// Usage counts the generated ids, not a re-encoding of the decoded text (an untrained model's
// bytes decode to U+FFFD, which would re-encode longer), and the prompt as the model saw it.
test('usage counts generated tokens: completion_tokens is at most max_tokens; length when cut', async () => {
  const res = await client.chat.completions.create({ model: id, messages: [{ role: 'user', content: 'Hello!' }], modalities: ['text'], max_tokens: 6, temperature: 0 });
  assert.ok(res.usage!.completion_tokens <= 6, `completion_tokens ${res.usage!.completion_tokens} > max_tokens 6`);
  assert.equal(res.choices[0]!.finish_reason, res.usage!.completion_tokens === 6 ? 'length' : 'stop');
  assert.ok(res.usage!.prompt_tokens > 'Hello!'.length / 4, 'prompt_tokens counts the whole role-play prompt');
});

/** Runs `f`, which must throw the client's APIError; returns it. */
async function apiError(f: () => Promise<unknown>): Promise<APIError> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof APIError, `not an APIError: ${String(e)}`);
    return e;
  }
  assert.fail('no error');
}

test('errors surface as the client APIError with the OpenAI error shape', async () => {
  const unknown = await apiError(() => client.chat.completions.create({ model: 'no-such-character', messages: [{ role: 'user', content: 'hi' }] }));
  assert.ok(unknown instanceof NotFoundError);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.type, 'not_found_error');
  assert.equal(unknown.param, 'model');
  const body = unknown.error as { message: string; type: string; param: string | null; code: string | null };
  assert.deepEqual(Object.keys(body).sort(), ['code', 'message', 'param', 'type']);
  assert.match(unknown.message, /^404 /);

  const bad = await apiError(() => client.chat.completions.create({ model: id, messages: [{ role: 'user', content: 'hi' }], temperature: 5 }));
  assert.ok(bad instanceof BadRequestError);
  assert.equal(bad.status, 400);
  assert.equal(bad.type, 'invalid_request_error');
  assert.equal(bad.param, 'temperature');
  assert.equal(bad.code, 'invalid_value');

  const badImage = await apiError(() => client.images.generate({ model: id, prompt: 'x', response_format: 'url' }));
  assert.ok(badImage instanceof BadRequestError);
  assert.equal(badImage.param, 'response_format');

  const wrongKey = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
  const denied = await apiError(() => wrongKey.models.list());
  assert.ok(denied instanceof AuthenticationError);
  assert.equal(denied.status, 401);
  assert.equal(denied.type, 'authentication_error');
  assert.equal(denied.code, 'invalid_api_key');
});
