// The serving additions to decoding (docs/serving.md 2-3, 7): OpenAI's frequency and presence
// penalties against hand-computed logits, an allowed-token mask, and the chunked prefill, which
// must leave the same cache as one prefill and stop between chunks once cancelled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { tensor } from '../../src/torch/index.js';
import { Bagel, decodeText, newContext, prefillText, prefillTextChunked, processLogits, MICRO } from '../../src/model/index.js';

const values = (t: torch.Tensor): number[] => [...(t.dataSync() as Float32Array)];

test('processLogits: frequency and presence penalties over the generated tokens, before temperature', () => {
  torch.scope(() => {
    const raw = tensor([2, -1, 0.5, 3]);
    // token 0 twice: 2 - (0.5 * 2 + 0.25); token 3 once: 3 - (0.5 + 0.25)
    assert.deepEqual(values(processLogits(raw, [], { frequencyPenalty: 0.5, presencePenalty: 0.25 }, [0, 0, 3])), [0.75, -1, 0.5, 2.25]);
    assert.deepEqual(values(processLogits(raw, [], { frequencyPenalty: 0.5, presencePenalty: 0.25, temperature: 2 }, [0, 0, 3])), [0.375, -0.5, 0.25, 1.125]);
    // negative values reward repeats
    assert.deepEqual(values(processLogits(raw, [], { presencePenalty: -1 }, [1])), [2, 0, 0.5, 3]);
    // the prompt's ids (seen) are not counted by these two
    assert.deepEqual(values(processLogits(raw, [0, 1, 2], { frequencyPenalty: 1 }, [])), [2, -1, 0.5, 3]);
  });
});

function model(): Bagel {
  torch.manualSeed(4);
  return new Bagel(MICRO, { visualUnd: false, visualGen: false }).eval();
}

test('decodeSteps: a mask that allows one token makes greedy and sampled decoding pick it', () => {
  const m = model();
  const ctx = newContext(m);
  prefillText(m, ctx, [5, 6, 7]);
  const only = new Float32Array(MICRO.llm.vocabSize).fill(-Infinity);
  only[42] = 0;
  const mask = tensor(only).keep();
  try {
    assert.deepEqual(decodeText(m, ctx, { maxTokens: 4, allowedNext: () => mask }), [42, 42, 42, 42]);
    torch.manualSeed(1);
    assert.deepEqual(decodeText(m, ctx, { maxTokens: 4, temperature: 1.5, allowedNext: () => mask }), [42, 42, 42, 42]);
    // The mask sees what was generated so far.
    const seen: number[] = [];
    decodeText(m, ctx, { maxTokens: 3, allowedNext: (g) => (seen.push(g.length), null) });
    assert.deepEqual(seen, [0, 1, 2]);
  } finally {
    mask.dispose();
    ctx.dispose();
    m.dispose();
  }
});

test('prefillTextChunked leaves the cache of one prefill; a cancel stops it between chunks', async () => {
  const m = model();
  const ids = Array.from({ length: 37 }, (_, i) => (i * 7) % 500);
  const one = newContext(m);
  const chunked = newContext(m);
  try {
    prefillText(m, one, ids);
    await prefillTextChunked(m, chunked, ids, { chunkTokens: 8 });
    assert.deepEqual([chunked.length, chunked.nextPosition], [one.length, one.nextPosition]);
    for (let layer = 0; layer < MICRO.llm.numLayers; layer++) {
      const [k1, v1] = one.cached(layer)!;
      const [k2, v2] = chunked.cached(layer)!;
      const d = torch.scope(() => Math.max(k1.sub(k2).abs().max().item(), v1.sub(v2).abs().max().item()));
      assert.ok(d < 1e-5, `layer ${layer}: max difference ${d}`);
    }
    assert.deepEqual(decodeText(m, chunked, { maxTokens: 6 }), decodeText(m, one, { maxTokens: 6 }));

    const ac = new AbortController();
    const cut = newContext(m);
    const run = prefillTextChunked(m, cut, ids, { chunkTokens: 8, signal: ac.signal });
    ac.abort(); // the first chunk ran synchronously; the second never starts
    await assert.rejects(run, { name: 'AbortError' });
    assert.equal(cut.length, 8);
    cut.dispose();
  } finally {
    one.dispose();
    chunked.dispose();
    m.dispose();
  }
});
