// The prompt prefix cache (docs/serving.md 9): a prompt reuses whole blocks of the longest prefix
// it shares with a cached one, its KV rows are then the very bits of a prefill without the cache,
// a different prefix does not hit, the byte bound evicts the least recently used prompt, and a
// chat reply with the same seed is the same with and without the cache.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { Bagel, MICRO, newContext, prefillTokens, type KVCache } from '../../src/model/index.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { CharacterModel, PrefixCache, type ChatTurn } from '../../src/character/index.js';

torch.manualSeed(11);
const model = new Bagel(MICRO, { visualUnd: false, visualGen: false }).eval();
after(() => model.dispose());

const seqOf = (n: number, salt: number): number[] => Array.from({ length: n }, (_, i) => (i * 13 + salt * (i >= 40 ? 7 : 0)) % 500);

/** Largest absolute difference between the K/V rows of two caches (0: the same bits). */
function maxDiff(a: KVCache, b: KVCache): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let l = 0; l < MICRO.llm.numLayers; l++) {
    const [ka, va] = a.cached(l)!;
    const [kb, vb] = b.cached(l)!;
    d = Math.max(d, torch.scope(() => Math.max(ka.sub(kb).abs().max().item(), va.sub(vb).abs().max().item())));
  }
  return d;
}

test('a shared prefix is reused in whole blocks, and the rows equal a prefill without the cache bit for bit', async () => {
  const cache = new PrefixCache(2 ** 24, 16);
  const a = seqOf(70, 0);
  const b = seqOf(75, 1); // equal to `a` on its first 40 tokens only
  const first = await cache.prefill(model, a);
  const second = await cache.prefill(model, b);
  const plain = newContext(model);
  try {
    assert.equal(first.cachedTokens, 0);
    assert.equal(second.cachedTokens, 32); // 40 common tokens: two blocks of 16
    assert.deepEqual([second.ctx.length, second.ctx.nextPosition], [75, 75]);
    await prefillTokens(model, plain, b, { chunkTokens: 16 });
    assert.equal(maxDiff(second.ctx, plain), 0);
    // The very same prompt again: all of it from the cache.
    const again = await cache.prefill(model, b);
    assert.equal(again.cachedTokens, 75);
    assert.equal(maxDiff(again.ctx, plain), 0);
    again.ctx.dispose();
    assert.deepEqual([cache.size, cache.stats.hits, cache.stats.cachedTokens], [2, 2, 107]);
  } finally {
    for (const c of [first.ctx, second.ctx, plain]) c.dispose();
    cache.clear();
  }
});

test('a prompt with a different first block does not hit', async () => {
  const cache = new PrefixCache(2 ** 24, 16);
  const a = seqOf(50, 0);
  const b = [a[0]!, ...a.slice(1, 15), 499, ...a.slice(16)]; // differs inside the first block
  const r = [await cache.prefill(model, a), await cache.prefill(model, b)];
  try {
    assert.deepEqual(r.map((x) => x.cachedTokens), [0, 0]);
    assert.equal(cache.stats.hits, 0);
  } finally {
    for (const x of r) x.ctx.dispose();
    cache.clear();
  }
});

test('the byte bound evicts the least recently used prompt; a bound of 0 keeps nothing', async () => {
  const one = new PrefixCache(2 ** 24, 16);
  const probe = await one.prefill(model, seqOf(60, 0));
  const entryBytes = one.bytes;
  probe.ctx.dispose();
  one.clear();
  // An entry holds its buffers' capacity: 2 layers x (K and V) x Hkv x capacity x D floats.
  assert.equal(entryBytes % (MICRO.llm.numLayers * 2 * MICRO.llm.numKvHeads * MICRO.llm.headDim * 4), 0);
  assert.ok(entryBytes >= 60 * MICRO.llm.numLayers * 2 * MICRO.llm.numKvHeads * MICRO.llm.headDim * 4);

  const cache = new PrefixCache(Math.floor(entryBytes * 1.5), 16);
  const x = seqOf(60, 0);
  const y = [7, ...seqOf(59, 2)]; // nothing in common with x
  const ctxs = [(await cache.prefill(model, x)).ctx, (await cache.prefill(model, y)).ctx];
  assert.equal(cache.size, 1); // x was evicted to keep y under the bound
  assert.ok(cache.bytes <= cache.maxBytes);
  assert.equal(cache.stats.evictions, 1);
  const xAgain = await cache.prefill(model, x);
  const yAgain = await cache.prefill(model, y); // y was evicted by x's return
  assert.deepEqual([xAgain.cachedTokens, yAgain.cachedTokens], [0, 0]);
  cache.setMaxBytes(0);
  assert.deepEqual([cache.size, cache.bytes], [0, 0]);
  const none = await cache.prefill(model, x);
  assert.deepEqual([none.cachedTokens, cache.size], [0, 0]);
  for (const c of [...ctxs, xAgain.ctx, yAgain.ctx, none.ctx]) c.dispose();
  assert.throws(() => new PrefixCache(-1), /maxBytes must be an integer >= 0, got -1/);
  assert.throws(() => new PrefixCache(10, 0), /blockTokens must be an integer >= 1, got 0/);
});

test('chat: the same seed gives the same reply with and without the cache, and reports the cached tokens', async () => {
  const { character } = loadSampleCharacter();
  const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
  const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
  const user = (text: string): ChatTurn[] => [{ role: 'user', content: [{ text }] }];
  const ask = (text: string) => m.chat(user(text), { seed: 42, temperature: 0.7, maxTokens: 12 });
  try {
    m.prefixes.setMaxBytes(0);
    const cold = await ask('Where is the next delivery?');
    m.prefixes.setMaxBytes(2 ** 24);
    await ask('Hello, who are you?'); // fills the cache with the character's shared prompt head
    const warm = await ask('Where is the next delivery?');
    assert.equal(cold.cachedTokens, 0);
    const [pa, pb] = [await m.planChat(user('Hello, who are you?')), await m.planChat(user('Where is the next delivery?'))];
    const [sa, sb] = [pa.segments[0]!.ids!, pb.segments[0]!.ids!];
    let common = 0;
    while (sa[common] === sb[common]) common++;
    assert.equal(warm.cachedTokens, (common + 1) - ((common + 1) % m.prefixes.blockTokens)); // + 1: the <|im_start|> marker
    assert.ok(warm.cachedTokens >= m.prefixes.blockTokens);
    assert.deepEqual([warm.text, warm.completionTokens, warm.promptTokens], [cold.text, cold.completionTokens, cold.promptTokens]);
  } finally {
    m.dispose();
  }
});
