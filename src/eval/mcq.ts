// Multiple-choice knowledge QA (docs/dataset.md 3.7): the prompt shown to the model, a robust parser
// for the letter it chose, and the chance baselines (answer keys are skewed towards B and C, so
// "always the most frequent key" is reported beside uniform chance).
import { OPTION_KEYS, type Mcq, type OptionKey } from '../data/index.js';

/** The question with its four options and a one-line instruction; plain text, no chat template. */
export function mcqPrompt(item: Pick<Mcq, 'question' | 'options'>): string {
  const lines = OPTION_KEYS.map((k) => `${k}. ${item.options[k]}`);
  return `${item.question}\n${lines.join('\n')}\nAnswer with the letter of the correct option (A, B, C or D).`;
}

const norm = (s: string): string => s.toLowerCase().replace(/[^a-z0-9\u0080-\uffff]+/g, ' ').trim();

/**
 * The option a free-text answer chose, or null when it cannot be told (no letter, or several).
 * In order:
 * 1. an explicit statement: "Answer: B", "the answer is (C)", "option D", "I choose A";
 * 2. the answer text equals one option's text, or contains exactly one option's text as a
 *    phrase (the longest wins when one option's text contains another's);
 * 3. a letter marked as a label at the start: "B", "(B)", "B)", "B.", "B:", "[B]";
 * 4. exactly one distinct upper-case letter A-D standing alone and followed by punctuation or
 *    the end ("I'd say C."); a capital "A" followed by a word is an article, not a choice.
 */
export function parseMcqChoice(text: string, options?: Mcq['options']): OptionKey | null {
  const t = text.trim();
  if (t.length === 0) return null;
  const explicit = /(?:[Aa]nswer|[Oo]ption|[Cc]hoice|[Cc]hoose|[Pp]ick|[Ss]elect|[Gg]o with)\s*(?:is|would be|:|-|=)?\s*(?:is\s*)?[:\-]?\s*[([]?([A-D])\b(?![a-z'])/g;
  const explicitLetters = new Set<OptionKey>();
  for (const m of t.matchAll(explicit)) explicitLetters.add(m[1] as OptionKey);
  if (explicitLetters.size === 1) return [...explicitLetters][0]!;
  if (explicitLetters.size > 1) return null;

  if (options) {
    const n = norm(t);
    const texts = OPTION_KEYS.map((k) => ({ k, o: norm(String(options[k])) })).filter((x) => x.o.length > 0);
    const exact = texts.filter((x) => x.o === n);
    if (exact.length === 1) return exact[0]!.k;
    const contained = texts.filter((x) => ` ${n} `.includes(` ${x.o} `));
    // Drop options whose text lies inside another contained option's text ("fox" vs "a teal fox").
    const maximal = contained.filter((x) => !contained.some((y) => y !== x && y.o.length > x.o.length && ` ${y.o} `.includes(` ${x.o} `)));
    if (maximal.length === 1) return maximal[0]!.k;
  }

  const label = /^\s*[([]?([A-D])(?:[).:\]]|\s*$)/.exec(t);
  if (label) return label[1] as OptionKey;

  const standalone = new Set<OptionKey>();
  for (const m of t.matchAll(/(?<![A-Za-z'])([A-D])(?=[.,;:!?)\]]|\s*$)/g)) standalone.add(m[1] as OptionKey);
  return standalone.size === 1 ? [...standalone][0]! : null;
}

export interface ChanceBaselines {
  /** 1/4 for four options. */
  uniform: number;
  /** Accuracy of always answering the most frequent key of this item set. */
  majorityKey: number;
  majority: OptionKey | null;
}

export function mcqChance(items: readonly Pick<Mcq, 'answerKey'>[]): ChanceBaselines {
  const counts = new Map<OptionKey, number>();
  for (const it of items) counts.set(it.answerKey, (counts.get(it.answerKey) ?? 0) + 1);
  let majority: OptionKey | null = null;
  let best = 0;
  for (const k of OPTION_KEYS) {
    const c = counts.get(k) ?? 0;
    if (c > best) { best = c; majority = k; }
  }
  return { uniform: 1 / OPTION_KEYS.length, majorityKey: items.length ? best / items.length : NaN, majority };
}
