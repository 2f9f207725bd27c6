// How well a checklist answerer answers items it was not fitted on, beside the majority answer
// (docs/reward-scorers.md "The caption-kNN checklist answerer"). Items come from the character's
// captioned images: its multiple-choice questions, and balanced yes/no items built from caption
// words (for each image the words of its caption that tell images apart, answered "yes", and as
// many such words of other captions, answered "no"). The training images are answered leave one
// out (the answerer refitted without the image asked about); held-out test images, when given,
// by the answerer fitted on every training image.
import { Rng, type ChwImage } from '../data/index.js';
import { CaptionKnnAnswerer, captionWords, type CaptionKnnOptions } from './caption-knn.js';
import type { Answerer } from './vqa.js';

/** A captioned image: its caption, the rest of its describing text, its multiple-choice items. */
export interface CaptionedImage {
  image: ChwImage;
  caption: string;
  /** VQA answers and other text about the image (fitted on, not used to make items). */
  extra?: string;
  mcq?: { question: string; options: string[]; answer: string }[];
}

export interface HeldOutItem {
  image: ChwImage;
  question: string;
  answer: string;
  choices?: string[];
  kind: 'yes_no' | 'multiple_choice';
}

export interface AccuracyResult {
  /** Share of items answered exactly (lower-cased, trimmed). */
  accuracy: number;
  /** The majority baseline: per question text, the answer most items with that question have. */
  majority: number;
  n: number;
  byKind: Record<HeldOutItem['kind'], { accuracy: number; majority: number; n: number }>;
}

/** The text an entry is fitted on. */
const docOf = (c: CaptionedImage): string => [c.caption, c.extra ?? '', ...(c.mcq ?? []).map((m) => `${m.question} ${m.answer}`)].join(' ');

/** Caption words that tell the training captions apart (in some but not all), in first-seen order. */
export function tellingWords(captions: readonly string[]): string[] {
  const docs = captions.map((c) => new Set(captionWords(c)));
  const seen: string[] = [];
  for (const d of docs) for (const w of d) if (w.length >= 4 && !seen.includes(w)) seen.push(w);
  return seen.filter((w) => {
    const n = docs.filter((d) => d.has(w)).length;
    return n > 0 && n < docs.length;
  });
}

/** Balanced yes/no items for one image: its telling words (yes) and as many others (no), seeded. */
export function yesNoItems(image: ChwImage, caption: string, vocabulary: readonly string[], rng: Rng): HeldOutItem[] {
  const mine = new Set(captionWords(caption));
  const yes = vocabulary.filter((w) => mine.has(w));
  const no = rng.shuffle(vocabulary.filter((w) => !mine.has(w))).slice(0, yes.length);
  const q = (w: string): string => `Does the image show ${w}?`;
  return [...yes.map((w) => ({ image, question: q(w), answer: 'yes', kind: 'yes_no' as const })), ...no.map((w) => ({ image, question: q(w), answer: 'no', kind: 'yes_no' as const }))];
}

/** Accuracy and the majority baseline of answers to items. */
export function scoreAnswers(items: readonly HeldOutItem[], answers: readonly string[]): AccuracyResult {
  const norm = (s: string): string => s.trim().toLowerCase();
  const part = (pick: (i: number) => boolean) => {
    const idx = items.map((_, i) => i).filter(pick);
    const counts = new Map<string, Map<string, number>>();
    for (const i of idx) {
      const m = counts.get(items[i]!.question) ?? new Map<string, number>();
      m.set(norm(items[i]!.answer), (m.get(norm(items[i]!.answer)) ?? 0) + 1);
      counts.set(items[i]!.question, m);
    }
    const top = (q: string): string => [...counts.get(q)!.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
    const hit = idx.filter((i) => norm(answers[i]!) === norm(items[i]!.answer)).length;
    const maj = idx.filter((i) => top(items[i]!.question) === norm(items[i]!.answer)).length;
    return { accuracy: idx.length ? hit / idx.length : Number.NaN, majority: idx.length ? maj / idx.length : Number.NaN, n: idx.length };
  };
  // The yes/no questions name one word each, so their majority is taken over all yes/no items (else every question would be its own majority).
  const yn = part((i) => items[i]!.kind === 'yes_no');
  const ynMajority = (() => {
    const ys = items.filter((it) => it.kind === 'yes_no');
    const nYes = ys.filter((it) => norm(it.answer) === 'yes').length;
    return ys.length ? Math.max(nYes, ys.length - nYes) / ys.length : Number.NaN;
  })();
  const mc = part((i) => items[i]!.kind === 'multiple_choice');
  const byKind = { yes_no: { ...yn, majority: ynMajority }, multiple_choice: mc };
  const n = yn.n + mc.n;
  const w = (a: number, k: number): number => (k ? a * k : 0);
  return {
    accuracy: n ? (w(yn.accuracy, yn.n) + w(mc.accuracy, mc.n)) / n : Number.NaN,
    majority: n ? (w(ynMajority, yn.n) + w(mc.majority, mc.n)) / n : Number.NaN,
    n, byKind,
  };
}

async function answerAll(a: Answerer, items: readonly HeldOutItem[]): Promise<string[]> {
  const out: string[] = [];
  for (const it of items) out.push(await a.answer(it.image, it.question, it.choices));
  return out;
}

/**
 * The caption-kNN answerer's held-out accuracy on a character's captioned images: training images
 * leave one out (MCQ and yes/no items), held-out images (yes/no items) by the answerer fitted on
 * all training images. Seeded: the same inputs give the same items and numbers.
 */
export async function captionKnnHeldOutAccuracy(train: readonly CaptionedImage[], heldOut: readonly CaptionedImage[] = [], o: CaptionKnnOptions & { seed?: number } = {}): Promise<AccuracyResult> {
  if (train.length < 2) throw new Error(`caption-kNN accuracy: needs at least 2 training images, got ${train.length}`);
  const rng = new Rng(o.seed ?? 7);
  const vocabulary = tellingWords(train.map((t) => t.caption));
  const items: HeldOutItem[] = [];
  const answers: string[] = [];
  for (const [i, t] of train.entries()) {
    const fitted = CaptionKnnAnswerer.fit(train.filter((_, j) => j !== i).map((e) => ({ image: e.image, text: docOf(e) })), o);
    const mine: HeldOutItem[] = [
      ...(t.mcq ?? []).map((m) => ({ image: t.image, question: m.question, answer: m.answer, choices: m.options, kind: 'multiple_choice' as const })),
      ...yesNoItems(t.image, t.caption, vocabulary, rng),
    ];
    items.push(...mine);
    answers.push(...await answerAll(fitted, mine));
  }
  if (heldOut.length) {
    const fitted = CaptionKnnAnswerer.fit(train.map((e) => ({ image: e.image, text: docOf(e) })), o);
    const mine = heldOut.flatMap((h) => yesNoItems(h.image, h.caption, vocabulary, rng));
    items.push(...mine);
    answers.push(...await answerAll(fitted, mine));
  }
  return scoreAnswers(items, answers);
}

/** The answerer fitted on every training image (what GRPO uses). */
export function fitCaptionKnn(train: readonly CaptionedImage[], o: CaptionKnnOptions = {}): CaptionKnnAnswerer {
  return CaptionKnnAnswerer.fit(train.map((e) => ({ image: e.image, text: docOf(e) })), o);
}
