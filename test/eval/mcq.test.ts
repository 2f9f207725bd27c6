// Reading the chosen letter out of free-text MCQ answers, and the chance baselines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mcqChance, mcqPrompt, parseMcqChoice } from '../../src/eval/index.js';

const options = { A: 'A cat', B: 'A teal fox', C: 'A hedgehog', D: 'An owl' };

test('explicit answers', () => {
  assert.equal(parseMcqChoice('Answer: D', options), 'D');
  assert.equal(parseMcqChoice('The answer is B.', options), 'B');
  assert.equal(parseMcqChoice('the answer is (C)', options), 'C');
  assert.equal(parseMcqChoice('I choose C because foxes are teal', options), 'C');
  assert.equal(parseMcqChoice('Option A', options), 'A');
});

test('label letters at the start', () => {
  assert.equal(parseMcqChoice('B', options), 'B');
  assert.equal(parseMcqChoice('(C) A hedgehog', options), 'C');
  assert.equal(parseMcqChoice('D) An owl', options), 'D');
  assert.equal(parseMcqChoice('[A]', options), 'A');
  assert.equal(parseMcqChoice('B.', options), 'B');
});

test('option text instead of a letter; the article "A" is not a choice', () => {
  assert.equal(parseMcqChoice('A teal fox', options), 'B');
  assert.equal(parseMcqChoice('She is a teal fox, of course!', options), 'B');
  assert.equal(parseMcqChoice('an owl', options), 'D');
  assert.equal(parseMcqChoice('A small furry animal'), null);
});

test('nothing or several letters is unparseable', () => {
  assert.equal(parseMcqChoice('', options), null);
  assert.equal(parseMcqChoice('I do not know', options), null);
  assert.equal(parseMcqChoice('Either B. or C.', options), null);
  assert.equal(parseMcqChoice('answer: B, answer: C', options), null);
  assert.equal(parseMcqChoice("I'd say C.", options), 'C');
});

test('the prompt lists the four options', () => {
  const p = mcqPrompt({ question: 'What animal is Tessel?', options });
  assert.match(p, /^What animal is Tessel\?\nA\. A cat\nB\. A teal fox\nC\. A hedgehog\nD\. An owl\n/);
});

test('chance baselines: uniform and majority key', () => {
  const c = mcqChance([{ answerKey: 'B' }, { answerKey: 'B' }, { answerKey: 'C' }, { answerKey: 'A' }]);
  assert.equal(c.uniform, 0.25);
  assert.equal(c.majority, 'B');
  assert.equal(c.majorityKey, 0.5);
});
