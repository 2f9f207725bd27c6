// How well the checklist probe (checklist-probe.ts) answers checklist items it was not trained on,
// beside the majority answer on the same items (docs/reward-scorers.md "The checklist probe").
// The items are the character's own: the multiple-choice questions of its training images and
// balanced yes/no items built from caption words (answerer-accuracy.ts yesNoItems), for the
// training images and the held-out test images. They are split by item with a seed; the held-out
// part is never trained on. Each held-out item is answered by probes trained on the training-split
// items of the other images only, so no fact about the asked image reaches its answer through a
// second item (a multiple-choice option and a yes/no word can name the same thing).
import { Rng } from '../data/index.js';
import { scoreAnswers, tellingWords, yesNoItems, type AccuracyResult, type CaptionedImage, type HeldOutItem } from './answerer-accuracy.js';
import { ChecklistProbeAnswerer, contentWords, type ChecklistProbeOptions } from './checklist-probe.js';

export interface ChecklistSplitOptions {
  /** Seed of the items' yes/no negatives and of the split (default 7). */
  seed?: number;
  /** Share of the items held out (default 0.4). */
  heldOutFraction?: number;
}

export interface ProbeAccuracy extends AccuracyResult {
  seed: number;
  heldOutFraction: number;
  /** Items the probes were trained on (the training split). */
  fitItems: number;
  /** Whether the training labels were shuffled (the control that must not beat the majority). */
  shuffledLabels: boolean;
}

/** The checklist items of captioned images: MCQs and balanced yes/no items (training captions' telling words). */
export function checklistItems(train: readonly CaptionedImage[], heldOutImages: readonly CaptionedImage[], rng: Rng): HeldOutItem[] {
  const vocabulary = tellingWords(train.map((t) => t.caption));
  const items: HeldOutItem[] = [];
  for (const t of train) {
    for (const m of t.mcq ?? []) items.push({ image: t.image, question: m.question, answer: m.answer, choices: m.options, kind: 'multiple_choice' });
    items.push(...yesNoItems(t.image, t.caption, vocabulary, rng));
  }
  for (const h of heldOutImages) items.push(...yesNoItems(h.image, h.caption, vocabulary, rng));
  return items;
}

/** A seeded split by item: round(n * heldOutFraction) items held out, at least one on each side. */
export function splitChecklistItems<T>(items: readonly T[], rng: Rng, heldOutFraction: number): { fit: T[]; heldOut: T[] } {
  if (!(heldOutFraction > 0 && heldOutFraction < 1)) throw new Error(`checklist split: heldOutFraction must be in (0, 1), got ${heldOutFraction}`);
  if (items.length < 2) throw new Error(`checklist split: needs at least 2 items, got ${items.length}`);
  const k = Math.min(items.length - 1, Math.max(1, Math.round(items.length * heldOutFraction)));
  const order = rng.shuffle(items.map((_, i) => i));
  const held = new Set(order.slice(0, k));
  return { fit: items.filter((_, i) => !held.has(i)), heldOut: items.filter((_, i) => held.has(i)) };
}

/** Content words every caption has: constants of the character ("teal", "scarf"). */
export function captionConstants(captions: readonly string[]): string[] {
  const docs = captions.map((c) => new Set(contentWords(c)));
  return docs.length ? [...docs[0]!].filter((w) => docs.every((d) => d.has(w))) : [];
}

/** The control: yes/no answers permuted among the yes/no items, each MCQ's answer replaced by a seeded random option. */
export function shuffledLabels(items: readonly HeldOutItem[], rng: Rng): HeldOutItem[] {
  const yn = rng.shuffle(items.filter((it) => it.kind === 'yes_no').map((it) => it.answer));
  let k = 0;
  return items.map((it) => (it.kind === 'yes_no' ? { ...it, answer: yn[k++]! } : { ...it, answer: it.choices![rng.int(it.choices!.length)]! }));
}

/** The items and their split, as the accuracy and GRPO's answerer use them (seeded). */
export function checklistSplit(train: readonly CaptionedImage[], heldOutImages: readonly CaptionedImage[], o: ChecklistSplitOptions = {}): { fit: HeldOutItem[]; heldOut: HeldOutItem[] } {
  const rng = new Rng(o.seed ?? 7);
  return splitChecklistItems(checklistItems(train, heldOutImages, rng), rng, o.heldOutFraction ?? 0.4);
}

/**
 * The probe's accuracy on the held-out split and the majority baseline on the same items
 * (scoreAnswers). `shuffleLabels` trains on shuffled labels instead (a control: it should not beat
 * the baseline).
 */
export function probeHeldOutAccuracy(
  train: readonly CaptionedImage[], heldOutImages: readonly CaptionedImage[] = [],
  o: ChecklistProbeOptions & ChecklistSplitOptions & { shuffleLabels?: boolean } = {},
): ProbeAccuracy {
  if (train.length < 2) throw new Error(`checklist probe accuracy: needs at least 2 captioned training images, got ${train.length}`);
  const seed = o.seed ?? 7;
  const heldOutFraction = o.heldOutFraction ?? 0.4;
  const { fit, heldOut } = checklistSplit(train, heldOutImages, { seed, heldOutFraction });
  const fitOn = o.shuffleLabels ? shuffledLabels(fit, new Rng(seed + 1)) : fit;
  const constants = o.constants ?? captionConstants(train.map((t) => t.caption));
  const answers = new Map<HeldOutItem, string>();
  for (const image of new Set(heldOut.map((it) => it.image))) {
    const others = fitOn.filter((it) => it.image !== image);
    if (others.length === 0) throw new Error('checklist probe accuracy: no training item about another image');
    const probe = ChecklistProbeAnswerer.fit(others, { ...o, constants });
    for (const it of heldOut) if (it.image === image) answers.set(it, probe.answer(it.image, it.question, it.choices));
  }
  const r = scoreAnswers(heldOut, heldOut.map((it) => answers.get(it)!));
  return { ...r, seed, heldOutFraction, fitItems: fit.length, shuffledLabels: o.shuffleLabels ?? false };
}

/** The probe GRPO uses: trained on the training split's items of every image (the held-out items never). */
export function fitChecklistProbe(train: readonly CaptionedImage[], heldOutImages: readonly CaptionedImage[] = [], o: ChecklistProbeOptions & ChecklistSplitOptions = {}): ChecklistProbeAnswerer {
  const { fit } = checklistSplit(train, heldOutImages, o);
  return ChecklistProbeAnswerer.fit(fit, { ...o, constants: o.constants ?? captionConstants(train.map((t) => t.caption)) });
}
