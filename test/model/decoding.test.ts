// Text decoding controls (docs/method.md 4.4): top-k, top-p, repetition penalty, stop ids and stop
// strings, each against a hand-computed expectation; the defaults stay the reference's behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { noGrad, tensor } from '../../src/torch/index.js';
import { Bagel, decodeText, newContext, prefillText, processLogits, routingFromFlags, MICRO, type KVCache } from '../../src/model/index.js';

function finite(t: torch.Tensor): number[] {
  const a = t.dataSync() as Float32Array;
  return [...a.keys()].filter((i) => Number.isFinite(a[i]!));
}

test('processLogits: top-k, top-p (crafted probabilities), repetition penalty, order penalty -> temperature', () => {
  torch.scope(() => {
    const probs = [0.05, 0.5, 0.15, 0.3]; // descending order: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)
    const l = tensor(probs.map(Math.log));
    assert.deepEqual(finite(processLogits(l, [], { temperature: 1, topK: 1 })), [1]);
    assert.deepEqual(finite(processLogits(l, [], { temperature: 1, topK: 2 })), [1, 3]);
    assert.deepEqual(finite(processLogits(l, [], { temperature: 1, topK: 9 })), [0, 1, 2, 3]);
    // keep a token when the mass before it (descending) is < p
    assert.deepEqual(finite(processLogits(l, [], { temperature: 1, topP: 0.4 })), [1]); // 0 < 0.4, then 0.5 >= 0.4
    assert.deepEqual(finite(processLogits(l, [], { temperature: 1, topP: 0.75 })), [1, 3]); // 0.8 >= 0.75 drops 2
    assert.deepEqual(finite(processLogits(l, [], { temperature: 1, topP: 0.85 })), [1, 2, 3]); // 0.95 >= 0.85 drops 0
    assert.deepEqual(finite(processLogits(l, [], { temperature: 1, topP: 1e-6 })), [1]);
    assert.deepEqual(finite(processLogits(l, [], { temperature: 1, topP: 0.75, topK: 1 })), [1]);
    // top-p is applied to the tempered distribution: at T = 0.5 the probabilities sharpen to
    // p^2 / sum p^2 = [0.0068, 0.6803, 0.0612, 0.2449]; p = 0.9 keeps 1 and 3 (0.9252 >= 0.9 drops 2)
    assert.deepEqual(finite(processLogits(l, [], { temperature: 0.5, topP: 0.9 })), [1, 3]);
    // surviving logits are the tempered ones, unchanged
    const kept = processLogits(l, [], { temperature: 2, topK: 2 }).dataSync() as Float32Array;
    assert.ok(Math.abs(kept[1]! - Math.log(0.5) / 2) < 1e-6 && Math.abs(kept[3]! - Math.log(0.3) / 2) < 1e-6);
    // repetition penalty: positive logits divided, negative multiplied; repeated ids count once
    const raw = tensor([2, -1, 0.5, 3]);
    assert.deepEqual([...(processLogits(raw, [0, 1, 0], { repetitionPenalty: 2 }).dataSync() as Float32Array)], [1, -2, 0.5, 3]);
    // penalty before temperature: [1, -2, 0.5, 3] / 2
    assert.deepEqual([...(processLogits(raw, [0, 1], { repetitionPenalty: 2, temperature: 2 }).dataSync() as Float32Array)], [0.5, -1, 0.25, 1.5]);
    // greedy (T = 0): only the penalty applies, top-k/top-p are sampling controls
    assert.deepEqual([...(processLogits(raw, [3], { repetitionPenalty: 4, topK: 1 }).dataSync() as Float32Array)], [2, -1, 0.5, 0.75]);
  });
});

function model(seed: number): Bagel {
  torch.manualSeed(seed);
  return new Bagel(MICRO, { visualUnd: false, visualGen: false }).eval();
}

/** Logits of the next token after [bos prompt eos bos out...], recomputed without the cache. */
function nextLogits(m: Bagel, prompt: number[], out: number[]): Float32Array {
  return torch.scope(() => noGrad(() => {
    const { bos, eos } = MICRO.tokens;
    const seq = [bos, ...prompt, eos, bos, ...out];
    const hidden = m.language_model.model.forward(m.language_model.embed(tensor(seq, { dtype: 'int64' })), tensor(seq.map((_, i) => i), { dtype: 'int64' }),
      routingFromFlags(seq.map(() => false)), { kind: 'cached', causal: true });
    return m.logits(hidden).narrow(0, seq.length - 1, 1).squeeze(0).dataSync() as Float32Array;
  }));
}

function setup(seed: number, prompt: number[]): { m: Bagel; ctx: KVCache } {
  const m = model(seed);
  const ctx = newContext(m);
  prefillText(m, ctx, prompt);
  return { m, ctx };
}

test('decodeSteps: top-k 1 and a tiny top-p sample exactly the greedy tokens; defaults keep the reference sampling', () => {
  const prompt = [3, 4, 5];
  const { m, ctx } = setup(0, prompt);
  const greedy = decodeText(m, ctx, { maxTokens: 8 });
  torch.manualSeed(123);
  assert.deepEqual(decodeText(m, ctx, { maxTokens: 8, temperature: 1.3, topK: 1 }), greedy);
  torch.manualSeed(124);
  assert.deepEqual(decodeText(m, ctx, { maxTokens: 8, temperature: 1.3, topP: 1e-6 }), greedy);
  // neutral settings take the reference path: same draws from the same seed
  torch.manualSeed(7);
  const a = decodeText(m, ctx, { maxTokens: 8, temperature: 0.7 });
  torch.manualSeed(7);
  const b = decodeText(m, ctx, { maxTokens: 8, temperature: 0.7, topK: 0, topP: 1, repetitionPenalty: 1 });
  assert.deepEqual(a, b);
  // top-k 3 sampling only ever picks one of the 3 most likely next tokens
  torch.manualSeed(9);
  const s = decodeText(m, ctx, { maxTokens: 6, temperature: 5, topK: 3 });
  s.forEach((id, k) => {
    const l = nextLogits(m, prompt, s.slice(0, k));
    const third = [...l].sort((x, y) => y - x)[2]!;
    assert.ok(l[id]! >= third, `step ${k}: token ${id} is outside the top 3`);
  });
  ctx.dispose();
  m.dispose();
});

test('decodeSteps: greedy with a repetition penalty equals the hand-penalised argmax of the recomputed logits', () => {
  const prompt = [10, 11, 12];
  const { m, ctx } = setup(1, prompt);
  const penalty = 3;
  // count the first plain greedy tokens as seen, so that the penalty has to change the path
  const plain = decodeText(m, ctx, { maxTokens: 10 });
  const seen = [...prompt, ...plain.slice(0, 3)];
  const out = decodeText(m, ctx, { maxTokens: 10, repetitionPenalty: penalty, penaltyIds: seen });
  assert.notDeepEqual(out, plain, 'the penalty changes the greedy path');
  const { eos } = MICRO.tokens;
  for (let k = 0; k <= out.length && k < 10; k++) {
    const l = Array.from(nextLogits(m, prompt, out.slice(0, k)));
    for (const id of new Set([...seen, ...out.slice(0, k)])) l[id] = l[id]! < 0 ? l[id]! * penalty : l[id]! / penalty;
    const best = l.indexOf(Math.max(...l));
    assert.equal(best, k < out.length ? out[k] : eos, `step ${k}`);
  }
  ctx.dispose();
  m.dispose();
});

test('decodeSteps: stop ids end before the id; stop strings end after the token that completes them', () => {
  const prompt = [20, 21];
  const { m, ctx } = setup(2, prompt);
  const out = decodeText(m, ctx, { maxTokens: 8 });
  assert.ok(out.length >= 4, 'the tiny model decodes a few tokens before <|im_end|>');
  const stopId = out[2]!;
  assert.deepEqual(decodeText(m, ctx, { maxTokens: 8, stopIds: [stopId] }), out.slice(0, out.indexOf(stopId)));
  const detokenize = (ids: number[]): string => ids.map((i) => `<${i}>`).join('');
  const stop = `<${out[1]}><${out[2]}>`;
  let end = 1;
  while (!detokenize(out.slice(0, end)).includes(stop)) end++;
  const got: number[] = [];
  assert.deepEqual(decodeText(m, ctx, { maxTokens: 8, stopStrings: [stop], detokenize, onToken: (id) => got.push(id) }), out.slice(0, end));
  assert.deepEqual(got, out.slice(0, end));
  assert.deepEqual(decodeText(m, ctx, { maxTokens: 8, stopStrings: ['<never>'], detokenize }), out);
  assert.throws(() => decodeText(m, ctx, { stopStrings: ['x'] }), /detokenize/);
  ctx.dispose();
  m.dispose();
});
