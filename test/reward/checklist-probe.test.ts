// The checklist probe (src/reward/checklist-probe.ts) and its held-out accuracy
// (src/reward/probe-accuracy.ts): hand-worked labels and answers on solid-colour images, the split's
// sizes, the shuffled-label control, and on the sample character accuracy above the majority
// answer on a seeded held-out split, while the same answerer trained on shuffled labels is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, type ChwImage } from '../../src/data/index.js';
import {
  ChecklistProbeAnswerer, captionConstants, contentWords, fitProbe, itemWordLabels, probeHeldOutAccuracy, probeProbability, shuffledLabels, splitChecklistItems,
  type HeldOutItem,
} from '../../src/reward/index.js';
import { sampleCaptioned } from './sample-captioned.js';
import { BLUE, DARK, WHITE, twoTone as image } from './two-tone.js';

test('itemWordLabels: a yes/no item labels its content words, an MCQ its options\' words', () => {
  assert.deepEqual(contentWords('Does the image show snow?'), ['snow']);
  assert.deepEqual(itemWordLabels({ question: 'Is there a red umbrella?', answer: 'no' }), [{ word: 'red', label: 0 }, { word: 'umbrella', label: 0 }]);
  assert.deepEqual(itemWordLabels({ question: 'Where is Tessel?', answer: 'a beach', choices: ['a meadow', 'a beach', 'a snowy field'] }), [
    { word: 'beach', label: 1 }, { word: 'meadow', label: 0 }, { word: 'snowy', label: 0 }, { word: 'field', label: 0 },
  ]);
  assert.deepEqual(itemWordLabels({ question: 'What animal is shown?', answer: 'fox' }), [], 'an open question labels nothing');
});

test('fitProbe: separates two separable points, the prior is the share of 1 labels', () => {
  const a = Float64Array.from([1, 0]);
  const b = Float64Array.from([0, 1]);
  const p = fitProbe([a, b, b], [1, 0, 0], 0, 500);
  assert.ok(probeProbability(p, a) > 0.8 && probeProbability(p, b) < 0.2, `${probeProbability(p, a)} ${probeProbability(p, b)}`);
  assert.ok(Math.abs(p.prior - 1 / 3) < 1e-12);
  assert.throws(() => fitProbe([], [], 0, 1), /0 rows/);
});

test('checklist probe: yes/no by the word\'s probe, constants yes, unknown words no, MC by the options, open questions unknown', () => {
  const snow = [image(WHITE), image([0.95, 0.95, 0.97], WHITE)];
  const night = [image(DARK), image(DARK, [0.1, 0.1, 0.15])];
  const sea = [image(BLUE)];
  const yn = (im: ChwImage, w: string, a: 'yes' | 'no'): HeldOutItem => ({ image: im, question: `Does the image show ${w}?`, answer: a, kind: 'yes_no' });
  const items: HeldOutItem[] = [
    ...snow.flatMap((im) => [yn(im, 'snow', 'yes'), yn(im, 'night', 'no')]),
    ...night.flatMap((im) => [yn(im, 'snow', 'no'), yn(im, 'night', 'yes')]),
    ...sea.flatMap((im) => [yn(im, 'snow', 'no'), yn(im, 'night', 'no')]),
    { image: snow[0]!, question: 'Where?', answer: 'a snowy field', choices: ['a snowy field', 'outdoors at night'], kind: 'multiple_choice' },
  ];
  const a = ChecklistProbeAnswerer.fit(items, { constants: ['teal'] });
  assert.equal(a.id, 'trained:checklist-probe');
  assert.deepEqual(a.words.sort(), ['field', 'night', 'outdoors', 'snow'], '"snowy" is the same word as "snow"');
  const white = image([0.97, 0.97, 0.97]);
  const dark = image([0.03, 0.03, 0.08]);
  assert.equal(a.answer(white, 'Is there snow?'), 'yes');
  assert.equal(a.answer(white, 'Is it night?'), 'no');
  assert.equal(a.answer(dark, 'Is it night?'), 'yes');
  assert.equal(a.answer(dark, 'Is it snowy?'), 'no');
  assert.equal(a.answer(dark, 'Is the fox teal?'), 'yes', 'a constant of the character');
  assert.equal(a.answer(dark, 'Is there a lighthouse?'), 'no', 'no probe names it');
  assert.equal(a.answer(dark, 'Where is she?', ['A snowy field', 'Outdoors at night']), 'outdoors at night');
  assert.equal(a.answer(white, 'Where is she?', ['A snowy field', 'Outdoors at night']), 'a snowy field');
  assert.equal(a.answer(white, 'What animal is shown?'), 'unknown');
  assert.equal(a.probability(white, 'lighthouse'), null);
  assert.throws(() => ChecklistProbeAnswerer.fit([]), /no checklist items/);
});

test('splitChecklistItems and shuffledLabels: seeded sizes, the same answers in another order', () => {
  const xs = Array.from({ length: 10 }, (_, i) => i);
  const s = splitChecklistItems(xs, new Rng(3), 0.4);
  assert.equal(s.heldOut.length, 4);
  assert.deepEqual([...s.fit, ...s.heldOut].sort((a, b) => a - b), xs);
  assert.deepEqual(splitChecklistItems(xs, new Rng(3), 0.4), s, 'seeded');
  assert.throws(() => splitChecklistItems(xs, new Rng(3), 1), /heldOutFraction/);
  const im = image(WHITE);
  const items: HeldOutItem[] = ['yes', 'yes', 'no', 'no', 'no'].map((answer, i) => ({ image: im, question: `Does the image show w${i}?`, answer, kind: 'yes_no' as const }));
  const sh = shuffledLabels(items, new Rng(1));
  assert.deepEqual(sh.map((it) => it.answer).sort(), ['no', 'no', 'no', 'yes', 'yes']);
  assert.deepEqual(sh.map((it) => it.question), items.map((it) => it.question));
  assert.deepEqual(captionConstants(['teal fox in snow', 'teal fox by the sea']), ['teal', 'fox']);
});

test('checklist probe beats the majority answer on the sample character\'s held-out items, and does not with shuffled labels (seed 7)', async () => {
  const { train, heldOut } = await sampleCaptioned(64);
  const a = probeHeldOutAccuracy(train, heldOut, { seed: 7 });
  // 443 items (35 MCQs, 408 balanced yes/no); 40% held out.
  assert.equal(a.n + a.fitItems, 443);
  assert.equal(a.n, 177);
  // Measured 61.6% vs a majority of 50.3% (yes/no 65.0% vs 52.5%, n 160); the binomial standard
  // error at n 177 is 3.8 points, so the margin asserted is over 1.3 of them, and the four seeds
  // tried (7, 1, 2, 3) all gave 9.6 to 11.3 points.
  assert.ok(a.accuracy > a.majority + 0.05, JSON.stringify(a));
  assert.ok(a.byKind.yes_no.accuracy > a.byKind.yes_no.majority + 0.05, JSON.stringify(a.byKind));
  // The control: the same answerer trained on shuffled labels does not beat the majority (measured 46.9%).
  const c = probeHeldOutAccuracy(train, heldOut, { seed: 7, shuffleLabels: true });
  assert.equal(c.n, a.n);
  assert.equal(c.majority, a.majority, 'the same held-out items');
  assert.ok(c.accuracy < c.majority + 0.02, JSON.stringify(c));
  assert.ok(a.accuracy > c.accuracy + 0.08);
});
