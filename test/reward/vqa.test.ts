// Checklist VQA edge cases (src/reward/vqa.ts) under the 'reference' rules (the official scorer,
// docs/method.md 3.4) and the 'project' rules, on hand-worked cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VqaScorer, answerMatches, checklistScore, yesNoScore, type Answerer, type ChecklistItem } from '../../src/reward/index.js';
import type { ChwImage } from '../../src/data/index.js';

const image: ChwImage = { channels: 3, height: 1, width: 1, data: new Float32Array(3) };

/** Replies from a table, recording every question asked and what it was asked for. */
function tableAnswerer(replies: Record<string, string>): Answerer & { asked: string[]; purposes: (string | undefined)[] } {
  const asked: string[] = [];
  const purposes: (string | undefined)[] = [];
  return { id: 'test:table', asked, purposes, answer: (_i, q, _c, purpose) => { asked.push(q); purposes.push(purpose); return replies[q] ?? 'unknown'; } };
}

test('reference rules: the reply is stripped and lower-cased, the expected answer only lower-cased', () => {
  assert.equal(answerMatches('  Yes \n', 'YES', 'reference'), true);
  assert.equal(answerMatches('yes', ' yes', 'reference'), false, 'an expected answer with a space never matches');
  assert.equal(answerMatches('yes', ' yes', 'project'), true);
  // Weights 1 + 2 + 1 (the second item's expected answer has a trailing space).
  const qs: ChecklistItem[] = [
    { question: 'a?', answer: 'Red' }, { question: 'b?', answer: 'blue ', weight: 2 }, { question: 'c?', answer: 'no', weight: 1 },
  ];
  assert.equal(checklistScore(qs, ['red', 'blue', 'no'], 'reference'), 2 / 4);
  assert.equal(checklistScore(qs, ['red', 'blue', 'no'], 'project'), 1);
});

test('empty items are skipped: not asked, no weight; all skipped scores 0 without the fallback', async () => {
  const qs: ChecklistItem[] = [
    { question: 'Is the fox teal?', answer: 'yes', weight: 1 },
    { question: '', answer: 'yes', weight: 5 },
    { question: 'Is it night?', answer: '', weight: 5 },
    { question: 'Is there a star?', answer: 'yes', weight: 3 },
  ];
  const a = tableAnswerer({ 'Is the fox teal?': 'yes', 'Is there a star?': 'no', 'Is it night?': 'yes' });
  const [s] = await new VqaScorer(a).score([image], [qs], ['p']);
  assert.equal(s, 1 / 4);
  assert.deepEqual(a.asked, ['Is the fox teal?', 'Is there a star?']);
  // Directly: the replies of skipped items are ignored.
  assert.equal(checklistScore(qs, ['yes', 'yes', 'yes', 'yes']), 1);
  const b = tableAnswerer({});
  const [none] = await new VqaScorer(b).score([image], [[{ question: '', answer: 'x' }]], ['a fox']);
  assert.equal(none, 0);
  assert.deepEqual(b.asked, [], 'no depiction question when the checklist has items');
});

test('the no-question fallback: official word lists as substrings, positive first; project reads words, negative first', async () => {
  const cases: [string, number, number][] = [
    // reply, reference, project
    ['Yes', 1, 1],
    ['no', 0, 0],
    ['a fox', 0.5, 0.5],
    ['incorrect', 1, 0], // "correct" is a substring of "incorrect", and the positive list is read first
    ['it does not show the star', 0, 0], // "shows" needs the s; then "no" (in "not") -> 0
    ['not at all', 0, 0],
    ["it doesn't", 0, 0.5],
    ['nothing', 0, 0.5], // "no" is a substring of "nothing"
    ['it depicts a fox', 1, 0.5],
    ['yeah', 0.5, 1],
  ];
  for (const [reply, ref, proj] of cases) {
    assert.equal(yesNoScore(reply, 'reference'), ref, `reference: ${reply}`);
    assert.equal(yesNoScore(reply, 'project'), proj, `project: ${reply}`);
  }
  const a = tableAnswerer({ 'Does this image accurately depict: a teal fox?': 'Incorrect' });
  assert.deepEqual(await new VqaScorer(a).score([image], [[]], ['a teal fox']), [1]);
  assert.deepEqual(await new VqaScorer(a, { rules: 'project' }).score([image], [[]], ['a teal fox']), [0]);
  assert.throws(() => new VqaScorer(a, { rules: 'pytorch' as never }), /rules must be/);
});

test('the depiction question is asked for the fallback, checklist items as checklist questions', async () => {
  const a = tableAnswerer({ 'Does this image accurately depict: a fox?': 'yes', 'Is it teal?': 'yes' });
  const s = await new VqaScorer(a).score([image, image], [[], [{ question: 'Is it teal?', answer: 'yes' }]], ['a fox', 'a cat']);
  assert.deepEqual(s, [1, 1]);
  assert.deepEqual(a.asked, ['Does this image accurately depict: a fox?', 'Is it teal?']);
  // The official scorer decodes the two with different BLIP length caps (blip-vqa.test.ts).
  assert.deepEqual(a.purposes, ['fallback', undefined]);
});

test('checkStop runs before every image and question; when it throws, nothing more is asked', async () => {
  const a = tableAnswerer({});
  const checklists = [[{ question: 'q1?', answer: 'yes' }, { question: 'q2?', answer: 'yes' }], [], [{ question: 'q3?', answer: 'yes' }]];
  let polls = 0;
  await new VqaScorer(a).score([image, image, image], checklists, ['a', 'b', 'c'], () => void polls++);
  // image 1 + its 2 questions, image 2 (the fallback question is one answer), image 3 + its question
  assert.equal(polls, 1 + 2 + 1 + 1 + 1);
  const b = tableAnswerer({});
  let n = 0;
  const stop = new Error('stop');
  await assert.rejects(new VqaScorer(b).score([image, image, image], checklists, ['a', 'b', 'c'], () => {
    if (++n === 3) throw stop; // before q2
  }), (e) => e === stop);
  assert.deepEqual(b.asked, ['q1?'], 'the pass ended at the poll that said stop');
});
