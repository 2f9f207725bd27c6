// ROUGE-L, BLEU and VQA normalisation on cases worked by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corpusBleu, lcsLength, metricTokens, normalizeVqaAnswer, rougeL, sentenceBleu, vqaExactMatch } from '../../src/eval/index.js';

const close = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test('tokens are lower-cased alphanumeric runs', () => {
  assert.deepEqual(metricTokens("Tessel's map, North-West!"), ['tessel', 's', 'map', 'north', 'west']);
  assert.deepEqual(metricTokens('  '), []);
});

test('LCS length', () => {
  assert.equal(lcsLength(['a', 'b', 'c', 'd'], ['a', 'c', 'd', 'b']), 3);
  assert.equal(lcsLength([], ['a']), 0);
});

test('ROUGE-L: "the cat lay on the mat" vs "the cat sat on the mat"', () => {
  // LCS = the cat on the mat = 5 of 6 tokens on both sides: P = R = F = 5/6.
  const r = rougeL('The cat lay on the mat.', 'the cat sat on the mat');
  close(r.precision, 5 / 6);
  close(r.recall, 5 / 6);
  close(r.f, 5 / 6);
});

test('ROUGE-L: different lengths and no overlap', () => {
  // cand "police killed the gunman" vs ref "the gunman was shot": LCS "the gunman" = 2; P = 2/4, R = 2/4.
  close(rougeL('police killed the gunman', 'the gunman was shot').f, 0.5);
  // cand "a b" vs ref "a b c d": LCS 2, P = 1, R = 0.5, F = 2·1·0.5/1.5 = 2/3.
  close(rougeL('a b', 'a b c d').f, 2 / 3);
  assert.equal(rougeL('x y', 'a b').f, 0);
  assert.equal(rougeL('', 'a b').f, 0);
});

test('sentence BLEU-4 with smoothing: "the cat is on the mat" vs "the cat sat on the mat"', () => {
  // p1 = 5/6, p2 = 3/5 (the cat, on the, the mat), p3 = 1/4 (on the mat), p4 = 0 -> 0.1/3; BP = 1.
  const b = sentenceBleu('the cat is on the mat', 'the cat sat on the mat');
  close(b.precisions[0]!, 5 / 6);
  close(b.precisions[1]!, 3 / 5);
  close(b.precisions[2]!, 1 / 4);
  close(b.precisions[3]!, 0.1 / 3);
  close(b.bleu, Math.exp((Math.log(5 / 6) + Math.log(3 / 5) + Math.log(1 / 4) + Math.log(0.1 / 3)) / 4));
  close(b.bleu, 0.25407, 1e-4);
  assert.equal(b.brevityPenalty, 1);
});

test('corpus BLEU: identical text is 1, a missing 4-gram order is 0, and the brevity penalty', () => {
  assert.equal(corpusBleu([{ candidate: 'one two three four five', reference: 'one two three four five' }]).bleu, 1);
  assert.equal(corpusBleu([{ candidate: 'the cat is on the mat', reference: 'the cat sat on the mat' }]).bleu, 0);
  // Candidate "a b c d" vs reference "a b c d e f": all precisions 1, c = 4 < r = 6, BP = exp(1 - 6/4).
  const b = corpusBleu([{ candidate: 'a b c d', reference: 'a b c d e f' }]);
  close(b.brevityPenalty, Math.exp(1 - 6 / 4));
  close(b.bleu, Math.exp(-0.5));
  // Sums over the corpus before dividing: two pairs, the second with no overlap:
  // p_n = (matches of pair 1) / (n-grams of both) = 4/8, 3/6, 2/4, 1/2 -> BLEU = 0.5, lengths equal.
  const c = corpusBleu([{ candidate: 'a b c d', reference: 'a b c d' }, { candidate: 'w x y z', reference: 'p q r s' }]);
  close(c.bleu, 0.5);
});

test('clipped counts: repeated words do not inflate precision', () => {
  // "the the the the" vs "the cat": unigram matches clipped to 1 of 4.
  close(sentenceBleu('the the the the', 'the cat', 1).precisions[0]!, 1 / 4);
});

test('VQA normalisation', () => {
  assert.equal(normalizeVqaAnswer('The Red Umbrella.'), 'red umbrella');
  assert.equal(normalizeVqaAnswer('  Two  lanterns! '), '2 lanterns');
  assert.equal(normalizeVqaAnswer('2.5'), '2.5');
  assert.equal(normalizeVqaAnswer('1,000 stars'), '1000 stars');
  assert.equal(normalizeVqaAnswer("Tessel's map"), 'tessels map');
  assert.equal(normalizeVqaAnswer('yes, a fox'), 'yes fox');
  assert.equal(normalizeVqaAnswer('dont know'), "don't know");
  assert.equal(normalizeVqaAnswer("don't know"), "don't know");
  assert.equal(vqaExactMatch('A teal fox.', 'teal fox'), 1);
  assert.equal(vqaExactMatch('none', '0'), 1);
  assert.equal(vqaExactMatch('She is sitting upright.', 'sitting upright'), 0);
});
