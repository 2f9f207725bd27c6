// Continuous batching through HTTP (docs/serving.md 9): concurrent streams for one model decode
// together, and each reply equals the same request served alone at batch 1 (same seed, same
// reply, whatever runs beside it); a cancelled stream leaves the batch without disturbing the
// others; the bounded queue still answers 429 beyond the running and waiting requests.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCard, loadSampleCharacter } from '../../src/data/index.js';
import { MICRO } from '../../src/model/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { ModelChatEngine, startServer, type RunningServer } from '../../src/serve/index.js';

const dirs: string[] = [];
let batched: { server: RunningServer; id: string };
let single: { server: RunningServer; id: string };

async function serverWith(maxBatch: number, queueCapacity?: number, prefixCacheBytes?: number): Promise<{ server: RunningServer; id: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'serve-batch-'));
  dirs.push(dir);
  const server = await startServer({ dataDir: dir, engine: new ModelChatEngine(join(dir, 'models'), { maxBatch, ...(prefixCacheBytes !== undefined ? { prefixCacheBytes } : {}) }), port: 0, ...(queueCapacity !== undefined ? { queueCapacity } : {}) });
  const { character } = loadSampleCharacter();
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
  const id = ((await res.json()) as { id: string }).id;
  // the same weights in every server (same seed)
  const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
  const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
  m.save(join(dir, 'models', id));
  m.dispose();
  return { server, id };
}

before(async () => {
  batched = await serverWith(8);
  single = await serverWith(1, undefined, 0); // batch 1 and no prompt prefix cache: the reference replies
});

after(async () => {
  await batched.server.close();
  await single.server.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Streamed { status: number; text: string; firstAt: number; endAt: number; completionTokens: number; cachedTokens: number }

/** A streamed chat completion: its text, when its first delta and its end came, its usage (onPiece: after each content delta). */
async function stream(url: string, body: object, signal?: AbortSignal, onPiece?: () => void): Promise<Streamed> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }), ...(signal ? { signal } : {}),
  });
  if (res.status !== 200) return { status: res.status, text: await res.text(), firstAt: NaN, endAt: performance.now(), completionTokens: 0, cachedTokens: 0 };
  let text = '';
  let firstAt = NaN;
  let completionTokens = -1;
  let cachedTokens = -1;
  let buf = '';
  const dec = new TextDecoder();
  for await (const bytes of res.body!) {
    buf += dec.decode(bytes as Uint8Array, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6)) as { choices?: { delta?: { content?: string } }[]; usage?: { completion_tokens: number; prompt_tokens_details: { cached_tokens: number } } };
      const piece = j.choices?.[0]?.delta?.content;
      if (piece) {
        if (Number.isNaN(firstAt)) firstAt = performance.now();
        text += piece;
        onPiece?.();
      }
      if (j.usage) [completionTokens, cachedTokens] = [j.usage.completion_tokens, j.usage.prompt_tokens_details.cached_tokens];
    }
  }
  return { status: 200, text, firstAt, endAt: performance.now(), completionTokens, cachedTokens };
}

const request = (id: string, k: number) => ({
  model: id,
  messages: [{ role: 'user', content: `Tell me about delivery ${'number '.repeat(k)}${k}.` }], // prompts of different lengths
  max_tokens: 10 + 3 * k,
  temperature: k % 3 === 0 ? 0 : 0.8 + 0.1 * k,
  ...(k % 2 ? { top_p: 0.9 } : { top_k: 40 }),
  seed: 1000 + k,
  modalities: ['text'],
});

test('concurrent streams decode together and each equals the same request served alone at batch 1', async () => {
  const K = 6;
  const together = await Promise.all(Array.from({ length: K }, (_, k) => stream(batched.server.url, request(batched.id, k))));
  const alone: Streamed[] = [];
  for (let k = 0; k < K; k++) alone.push(await stream(single.server.url, request(single.id, k)));
  for (let k = 0; k < K; k++) {
    assert.equal(together[k]!.status, 200, together[k]!.text);
    assert.equal(together[k]!.text, alone[k]!.text, `request ${k}: the same reply batched and alone`);
    assert.equal(together[k]!.completionTokens, alone[k]!.completionTokens);
  }
  const withText = together.filter((s) => s.text.length > 0);
  assert.ok(withText.length >= K / 2, 'most replies have text');
  // Decoded together: a stream's deltas arrive while another's are still coming, which a batch-1
  // server never shows (a reply's first delta waits until the reply before it has ended). Not
  // every stream need overlap every other: a short greedy reply may end before the longest
  // prompt's prefill is done.
  const overlapping = withText.filter((s) => withText.some((o) => o !== s && s.firstAt < o.endAt && o.firstAt < s.endAt));
  assert.ok(overlapping.length >= withText.length / 2, `the streams overlapped (${overlapping.length} of ${withText.length})`);
});

test('a cancelled stream leaves the batch; the others finish with their batch-1 replies', async () => {
  const ac = new AbortController();
  const long = { ...request(batched.id, 1), max_tokens: 400, temperature: 1.5 };
  // Cancelled at its first delta, while it decodes beside the others (a timer could come after
  // its end: its prompt head comes from the prefix cache, docs/serving.md 9).
  const cancelled = stream(batched.server.url, long, ac.signal, () => ac.abort()).catch((e: Error) => e);
  const others = await Promise.all([2, 3, 4].map((k) => stream(batched.server.url, request(batched.id, k))));
  const e = await cancelled;
  assert.ok(e instanceof Error && e.name === 'AbortError', `the client's stream was aborted (${String(e)})`);
  // The batched replies reused the prompt head cached by the first test; the batch-1 server keeps no prompts.
  for (const [i, k] of [2, 3, 4].entries()) {
    const alone = await stream(single.server.url, request(single.id, k));
    assert.equal(others[i]!.text, alone.text);
    assert.ok(others[i]!.cachedTokens > 0 && alone.cachedTokens === 0, `cached tokens ${others[i]!.cachedTokens} batched, ${alone.cachedTokens} alone`);
  }
  // the server is free again: a request after the cancel is answered at once
  const next = await stream(batched.server.url, request(batched.id, 0));
  assert.equal(next.status, 200);
  assert.equal(batched.server.queue.stats.running, 0);
});

test('the queue stays bounded: beyond maxBatch running and the waiting room, a 429', async () => {
  const small = await serverWith(2, 1);
  try {
    const all = await Promise.all(Array.from({ length: 5 }, (_, k) => stream(small.server.url, { ...request(small.id, k), max_tokens: 60 })));
    const statuses = all.map((s) => s.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 429, 429], JSON.stringify(statuses));
  } finally {
    await small.server.close();
  }
});

test('maxBatch must be a positive integer, prefixCacheBytes a non-negative one', () => {
  assert.throws(() => new ModelChatEngine('/nowhere', { maxBatch: 0 }), /maxBatch must be an integer >= 1, got 0/);
  assert.throws(() => new ModelChatEngine('/nowhere', { maxBatch: 2.5 }), /maxBatch must be an integer >= 1/);
  assert.equal(new ModelChatEngine('/nowhere', { maxBatch: 3 }).concurrency, 3);
  assert.throws(() => new ModelChatEngine('/nowhere', { prefixCacheBytes: -1 }), /prefixCacheBytes must be an integer >= 0, got -1/);
});
