// The batched prefill (prefillChunks, docs/serving.md 9): chunks of several contexts, of different
// lengths over caches of different lengths (one forked from a shared prefix, one empty), appended
// in one decoder pass leave each context as a prefill of its chunk alone does: the same cache rows
// and positions (float32: bit for bit on this build; checked within 1e-6 to allow float32
// rounding), the same next-token logits and the same greedy continuation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { Bagel, decodeSteps, newContext, prefillChunks, prefillTokens, MICRO, type KVCache } from '../../src/model/index.js';

function model(): Bagel {
  torch.manualSeed(7);
  return new Bagel(MICRO, { visualUnd: false, visualGen: false }).eval();
}

const HEAD = [5, 9, 13, 21, 8, 30, 44, 7, 19, 50, 61, 12];
const CHUNKS = [[33, 40, 27], [18, 6, 9, 55, 70, 3, 23, 14, 60], [61], [62, 63, 64, 65, 66]];

/** Contexts to prefill: two forks of one cached head (lengths 12 and 8), a context of 3 tokens, an empty one. */
async function contexts(m: Bagel, head: KVCache): Promise<KVCache[]> {
  const a = head.forkPrefix(12);
  const b = head.forkPrefix(8);
  b.nextPosition = 8;
  const c = newContext(m);
  await prefillTokens(m, c, [70, 71, 72]);
  return [a, b, c, newContext(m)];
}

function maxDiff(x: KVCache, y: KVCache, layers: number): number {
  let d = 0;
  for (let l = 0; l < layers; l++) {
    const cx = x.cached(l)!;
    const cy = y.cached(l)!;
    for (let i = 0; i < 2; i++) d = Math.max(d, cx[i]!.sub(cy[i]!).abs().max().item());
  }
  return d;
}

test('prefillChunks over several contexts equals each chunk prefilled alone', async () => {
  const m = model();
  const head = newContext(m);
  await prefillTokens(m, head, HEAD);
  const alone = await contexts(m, head);
  alone.forEach((ctx, i) => prefillChunks(m, [{ ctx, tokens: CHUNKS[i]! }]));
  const together = await contexts(m, head);
  prefillChunks(m, together.map((ctx, i) => ({ ctx, tokens: CHUNKS[i]! })));
  const layers = MICRO.llm.numLayers;
  together.forEach((ctx, i) => {
    const ref = alone[i]!;
    assert.equal(ctx.length, ref.length);
    assert.equal(ctx.nextPosition, ref.nextPosition);
    assert.ok(maxDiff(ctx, ref, layers) <= 1e-6, `context ${i}: cache rows differ by ${maxDiff(ctx, ref, layers)}`);
    const g1 = [...decodeSteps(m, ref, { maxTokens: 6 })];
    const g2 = [...decodeSteps(m, ctx, { maxTokens: 6 })];
    assert.deepEqual(g2, g1, `context ${i}: greedy continuation`);
  });
  // the shared head is untouched by its forks' appends
  assert.equal(head.length, HEAD.length);
  [...alone, ...together, head].forEach((c) => c.dispose());
});

test('prefillChunks equals a chunked prefill step by step, and rejects a context given twice', async () => {
  const m = model();
  const seqs = [[5, 9, 13, 21, 8, 30, 44], [7, 19, 50], [61, 12, 33, 40, 27, 18]];
  const ref = seqs.map(() => newContext(m));
  for (let i = 0; i < seqs.length; i++) await prefillTokens(m, ref[i]!, seqs[i]!, { chunkTokens: 2 });
  const got = seqs.map(() => newContext(m));
  for (let start = 0; start < 7; start += 2) prefillChunks(m, got.map((ctx, i) => ({ ctx, tokens: seqs[i]!.slice(start, start + 2) })));
  got.forEach((ctx, i) => assert.ok(maxDiff(ctx, ref[i]!, MICRO.llm.numLayers) <= 1e-6, `sequence ${i}`));
  assert.throws(() => prefillChunks(m, [{ ctx: got[0]!, tokens: [1] }, { ctx: got[0]!, tokens: [2] }]), /its own context/);
  [...ref, ...got].forEach((c) => c.dispose());
});
