// The caption-kNN checklist answerer (src/reward/caption-knn.ts) and its held-out accuracy
// (src/reward/answerer-accuracy.ts): hand-worked cases on solid-colour images, the majority
// baseline on a hand-counted item list, and accuracy above the majority answer on the sample
// character's held-out items (seeded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CaptionKnnAnswerer, captionKnnHeldOutAccuracy, sameWord, scoreAnswers, tellingWords, captionWords, type HeldOutItem,
} from '../../src/reward/index.js';
import { sampleCaptioned } from './sample-captioned.js';
import { BLUE, DARK, GREEN, WHITE, twoTone as image } from './two-tone.js';

test('words and sameWord: lower-case words, a 4+ letter prefix names the same thing', () => {
  assert.deepEqual(captionWords('Is the fox’s tail ringed?'), ['is', 'the', 'fox', 'tail', 'ringed']);
  assert.equal(sameWord('snow', 'snowy'), true);
  assert.equal(sameWord('rain', 'raining'), true);
  assert.equal(sameWord('sun', 'sunset'), false, 'under 4 letters only equal words match');
  assert.equal(sameWord('star', 'stars'), true);
  assert.deepEqual(tellingWords(['teal fox in snow', 'teal fox by the sea']), ['snow']);
});

test('caption-kNN: yes/no from the nearest captions, constants yes, unknown words no, MC by the neighbours, open questions unknown', () => {
  const a = CaptionKnnAnswerer.fit([
    { image: image(WHITE), text: 'teal fox in snow beside a pine tree' },
    { image: image(WHITE, GREEN), text: 'teal fox in snow on grass' },
    { image: image(BLUE), text: 'teal fox on a beach by the sea, red umbrella' },
    { image: image(DARK), text: 'teal fox at night under stars, yellow lantern' },
  ], { k: 1 });
  assert.equal(a.id, 'trained:caption-knn');
  // Nearest to a white image is the snow image: "snow" 1 of 1 found, above its prior 2/4.
  assert.equal(a.answer(image([0.95, 0.95, 0.95]), 'Is there snow?'), 'yes');
  assert.equal(a.answer(image([0.95, 0.95, 0.95]), 'Is it night?'), 'no');
  assert.equal(a.answer(image([0.02, 0.02, 0.08]), 'Is it night?'), 'yes');
  assert.equal(a.answer(image([0.1, 0.25, 0.85]), 'Is there an umbrella?'), 'yes');
  // "teal" and "fox" are in every caption: a constant of the character.
  assert.equal(a.answer(image(DARK), 'Is the fox teal?'), 'yes');
  // No caption names a lighthouse.
  assert.equal(a.answer(image(BLUE), 'Is there a lighthouse?'), 'no');
  // Multiple choice: the option named by the nearest caption.
  assert.equal(a.answer(image(BLUE), 'What colour is the umbrella?', ['Yellow', 'Red']), 'red');
  assert.equal(a.answer(image(DARK), 'What colour is the light?', ['red', 'yellow']), 'yellow');
  // Nothing named by the neighbour: the option the training set names most (red 1, blue 0).
  assert.equal(a.answer(image(WHITE), 'Which colour?', ['blue', 'red']), 'red');
  assert.equal(a.answer(image(WHITE), 'What animal is shown?'), 'unknown');
  assert.throws(() => CaptionKnnAnswerer.fit([]), /no captioned images/);
});

test('scoreAnswers: accuracy and the majority baseline, hand-counted', () => {
  const im = image(WHITE);
  const items: HeldOutItem[] = [
    { image: im, question: 'Does the image show snow?', answer: 'yes', kind: 'yes_no' },
    { image: im, question: 'Does the image show sea?', answer: 'no', kind: 'yes_no' },
    { image: im, question: 'Does the image show night?', answer: 'no', kind: 'yes_no' },
    { image: im, question: 'Where?', answer: 'beach', choices: ['beach', 'snow'], kind: 'multiple_choice' },
    { image: im, question: 'Where?', answer: 'beach', choices: ['beach', 'snow'], kind: 'multiple_choice' },
    { image: im, question: 'Where?', answer: 'snow', choices: ['beach', 'snow'], kind: 'multiple_choice' },
  ];
  const r = scoreAnswers(items, ['yes', 'yes', 'no', 'beach', 'snow', 'snow']);
  // yes/no: 2 of 3 right; majority "no" 2 of 3. MC: 2 of 3 right; majority "beach" for "Where?" 2 of 3.
  assert.deepEqual(r.byKind.yes_no, { accuracy: 2 / 3, majority: 2 / 3, n: 3 });
  assert.deepEqual(r.byKind.multiple_choice, { accuracy: 2 / 3, majority: 2 / 3, n: 3 });
  assert.equal(r.n, 6);
  assert.ok(Math.abs(r.accuracy - 4 / 6) < 1e-12 && Math.abs(r.majority - 4 / 6) < 1e-12);
});

test('caption-kNN beats the majority answer on the sample character\'s held-out items (seeded)', async () => {
  const { train, heldOut } = await sampleCaptioned(64, { withVqaAnswers: true });
  const a = await captionKnnHeldOutAccuracy(train, heldOut, { seed: 7 });
  const again = await captionKnnHeldOutAccuracy(train, heldOut, { seed: 7 });
  assert.deepEqual(again, a, 'seeded: the same items and answers');
  // 12 training images asked leave one out (35 MCQs + balanced yes/no items) and 4 test images.
  assert.equal(a.byKind.multiple_choice.n, 35);
  assert.ok(a.byKind.yes_no.n > 300, `${a.byKind.yes_no.n} yes/no items`);
  assert.equal(a.byKind.yes_no.majority, 0.5, 'balanced yes/no items');
  // Measured 0.635 yes/no (n 408; a binomial standard error of 0.025 at 0.5) and 0.614 overall
  // against a majority of 0.483: the margins below are about 2 standard errors.
  assert.ok(a.byKind.yes_no.accuracy > a.byKind.yes_no.majority + 0.05, JSON.stringify(a.byKind));
  assert.ok(a.accuracy > a.majority + 0.05, JSON.stringify(a));
});
