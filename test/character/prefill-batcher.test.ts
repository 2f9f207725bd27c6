// PrefillBatcher (docs/serving.md 9): prompts prefilled at the same time share decoder passes
// (fewer passes than chunks) and each context ends as prefillTokens alone leaves it, with the
// same chunks; maxBatch 1 runs one chunk a pass; a cancelled prompt rejects with an AbortError
// and the others complete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { Bagel, newContext, prefillTokens, MICRO, type KVCache } from '../../src/model/index.js';
import { PrefillBatcher } from '../../src/character/index.js';

function model(): Bagel {
  torch.manualSeed(3);
  return new Bagel(MICRO, { visualUnd: false, visualGen: false }).eval();
}

const PROMPTS = [[5, 9, 13, 21, 8, 30, 44, 7, 19], [50, 61, 12], [33, 40, 27, 18, 6, 9, 55, 70, 3, 23, 14, 60, 61]];

function same(a: KVCache, b: KVCache): boolean {
  if (a.length !== b.length || a.nextPosition !== b.nextPosition) return false;
  for (let l = 0; l < MICRO.llm.numLayers; l++) {
    const x = a.cached(l)!;
    const y = b.cached(l)!;
    if (x[0].sub(y[0]).abs().max().item() > 1e-6 || x[1].sub(y[1]).abs().max().item() > 1e-6) return false;
  }
  return true;
}

test('concurrent prefills share passes and equal prefillTokens alone', async () => {
  const m = model();
  const ref = PROMPTS.map(() => newContext(m));
  for (let i = 0; i < PROMPTS.length; i++) await prefillTokens(m, ref[i]!, PROMPTS[i]!, { chunkTokens: 4 });
  const batcher = new PrefillBatcher(m);
  const got = PROMPTS.map(() => newContext(m));
  await Promise.all(got.map((ctx, i) => batcher.prefill(ctx, PROMPTS[i]!, { chunkTokens: 4 })));
  got.forEach((ctx, i) => assert.ok(same(ctx, ref[i]!), `prompt ${i}`));
  // chunks: 3 + 1 + 4 = 8, in passes of up to three prompts: 4 (the longest prompt's chunks)
  assert.equal(batcher.stats.chunks, 8);
  assert.equal(batcher.stats.passes, 4);
  assert.equal(batcher.stats.maxChunks, 3);
  const one = new PrefillBatcher(m, 1);
  const solo = PROMPTS.map(() => newContext(m));
  await Promise.all(solo.map((ctx, i) => one.prefill(ctx, PROMPTS[i]!, { chunkTokens: 4 })));
  solo.forEach((ctx, i) => assert.ok(same(ctx, ref[i]!), `maxBatch 1, prompt ${i}`));
  assert.deepEqual(one.stats, { passes: 8, chunks: 8, maxChunks: 1 });
  assert.throws(() => one.setMaxBatch(0), /maxBatch must be an integer >= 1/);
  [...ref, ...got, ...solo].forEach((c) => c.dispose());
});

test('a cancelled prefill rejects with AbortError; the others complete', async () => {
  const m = model();
  const batcher = new PrefillBatcher(m);
  const ac = new AbortController();
  const ctxs = PROMPTS.map(() => newContext(m));
  const runs = ctxs.map((ctx, i) => batcher.prefill(ctx, PROMPTS[i]!, { chunkTokens: 4, ...(i === 2 ? { signal: ac.signal } : {}) }));
  ac.abort();
  await assert.rejects(runs[2]!, { name: 'AbortError' });
  await Promise.all(runs.slice(0, 2));
  const ref = newContext(m);
  await prefillTokens(m, ref, PROMPTS[0]!, { chunkTokens: 4 });
  assert.ok(same(ctxs[0]!, ref));
  [...ctxs, ref].forEach((c) => c.dispose());
});
