// Checklist VQA (docs/method.md 3.4, VQA_i): for each (question, answer, weight) of the prompt, an
// answering model is asked; the question scores its weight iff the reply matches the expected
// answer. VQA_i = matched weight / total weight, in [0, 1]. Duplicated questions count twice, as in
// the reference data. Without questions the reference asks "Does this image accurately depict: {p}?"
// and scores yes-like 1 / no-like 0 / anything else 0.5.
// The answering model is pluggable (BLIP-VQA when given: BlipVqaAnswerer, id 'blip-vqa'; or the
// customized model's own understanding path: SelfVqaAnswerer); its id is reported with the score.
//
// Two rule sets (docs/fidelity.md): 'reference' is the official scorer's (vqa_scorer.py) edge cases:
// an item with an empty question or answer is skipped (not asked, no weight; a checklist whose items
// are all skipped scores 0, it does not fall back); the reply is stripped and lower-cased, the
// expected answer only lower-cased; the fallback looks for its words as substrings, the positive
// list first (so "incorrect" counts as "correct"). 'project' strips both sides and reads the
// fallback reply word by word, the negative list first.
import type { ChecklistQuestion, ChwImage } from '../data/index.js';

/** What the checklist score reads of a checklist question (src/data's ChecklistQuestion); weight defaults to 1. */
export type ChecklistItem = Pick<ChecklistQuestion, 'question' | 'answer'> & Partial<Pick<ChecklistQuestion, 'weight' | 'choices'>>;

/**
 * What a question is asked for: a checklist item, or the no-question fallback ("Does this image
 * accurately depict: {p}?"). The official scorer decodes the two with different length caps
 * (BLIP `max_length` 50 and 10, REFERENCE_BLIP_LENGTHS in blip-answerer.ts); an answerer may
 * ignore it.
 */
export type AnswerPurpose = 'checklist' | 'fallback';

/** Anything that answers a question about an image in free text. */
export interface Answerer {
  readonly id: string;
  answer(image: ChwImage, question: string, choices?: readonly string[], purpose?: AnswerPurpose): string | Promise<string>;
  /**
   * Optional: every question of one image at once (e.g. BLIP-VQA encodes the image once and batches
   * the questions); must give the same replies as answer() one by one.
   */
  answerAll?(image: ChwImage, questions: readonly { question: string; choices?: readonly string[] }[]): Promise<string[]>;
}

export const VQA_RULES = ['reference', 'project'] as const;
export type VqaRules = (typeof VQA_RULES)[number];

/** The official fallback's word lists, in its order (vqa_scorer.py). */
export const REFERENCE_FALLBACK_WORDS = {
  positive: ['yes', 'true', 'correct', 'accurate', 'depicts', 'shows'],
  negative: ['no', 'false', 'incorrect', 'not', "doesn't", 'does not'],
} as const;
const YES = ['yes', 'yeah', 'true', 'correct', 'accurate', 'accurately'];
const NO = ['no', 'not', 'false', 'incorrect', 'inaccurate'];

/** The no-question fallback: 1 for a yes-like reply, 0 for a no-like one, else 0.5 (rules above). */
export function yesNoScore(reply: string, rules: VqaRules = 'reference'): number {
  if (rules === 'reference') {
    const a = reply.toLowerCase();
    if (REFERENCE_FALLBACK_WORDS.positive.some((w) => a.includes(w))) return 1;
    if (REFERENCE_FALLBACK_WORDS.negative.some((w) => a.includes(w))) return 0;
    return 0.5;
  }
  const words = reply.toLowerCase().split(/[^a-z]+/).filter(Boolean);
  if (words.some((w) => NO.includes(w))) return 0;
  if (words.some((w) => YES.includes(w))) return 1;
  return 0.5;
}

/** The question the scorer asks about an image whose prompt has no checklist. */
export function fallbackQuestion(prompt: string): string {
  return `Does this image accurately depict: ${prompt}?`;
}

/** Whether the official scorer asks an item: it skips one with an empty question or answer. */
export function isScoredItem(q: ChecklistItem): boolean {
  return q.question !== '' && q.answer !== '';
}

/** Whether a reply matches the expected answer under the rules. */
export function answerMatches(reply: string, expected: string, rules: VqaRules = 'reference'): boolean {
  const want = rules === 'reference' ? expected.toLowerCase() : expected.trim().toLowerCase();
  return reply.trim().toLowerCase() === want;
}

/**
 * Weighted match score of replies (one per question) against a checklist, in [0, 1]; skipped items
 * (isScoredItem) carry no weight, and a checklist without weight scores 0.
 */
export function checklistScore(questions: readonly ChecklistItem[], replies: readonly string[], rules: VqaRules = 'reference'): number {
  if (replies.length !== questions.length) throw new Error(`VQA: ${questions.length} questions but ${replies.length} replies`);
  let total = 0;
  let matched = 0;
  questions.forEach((q, i) => {
    if (!isScoredItem(q)) return;
    const w = q.weight ?? 1;
    total += w;
    if (answerMatches(replies[i]!, q.answer, rules)) matched += w;
  });
  return total > 0 ? matched / total : 0;
}

export interface VqaScorerOptions {
  /** The edge-case rules (default 'reference'). */
  rules?: VqaRules;
}

export class VqaScorer {
  readonly rules: VqaRules;
  constructor(readonly answerer: Answerer, options: VqaScorerOptions = {}) {
    this.rules = options.rules ?? 'reference';
    if (!(VQA_RULES as readonly string[]).includes(this.rules)) throw new Error(`VqaScorer: rules must be 'reference' or 'project', got ${JSON.stringify(this.rules)}`);
  }
  get id(): string {
    return this.answerer.id;
  }

  /** VQA_i per image: checklist i for image i, or the depiction question for prompt i when it is
   * empty. `checkStop` runs before each image and each question; it throws to abandon the pass. */
  async score(images: readonly ChwImage[], checklists: readonly (readonly ChecklistItem[])[], prompts: readonly string[], checkStop?: () => void): Promise<number[]> {
    if (images.length !== checklists.length || images.length !== prompts.length) {
      throw new Error(`VQA: ${images.length} images, ${checklists.length} checklists, ${prompts.length} prompts`);
    }
    const out: number[] = [];
    for (let i = 0; i < images.length; i++) {
      checkStop?.();
      const all = checklists[i]!;
      if (all.length === 0) {
        out.push(yesNoScore(await this.answerer.answer(images[i]!, fallbackQuestion(prompts[i]!), undefined, 'fallback'), this.rules));
        continue;
      }
      // Items with an empty question or answer are never asked (both rule sets; the official scorer).
      const qs = all.filter(isScoredItem);
      let replies: string[] = [];
      if (this.answerer.answerAll) {
        replies = await this.answerer.answerAll(images[i]!, qs.map((q) => ({ question: q.question, ...(q.choices ? { choices: q.choices } : {}) })));
      } else {
        for (const q of qs) {
          checkStop?.();
          replies.push(await this.answerer.answer(images[i]!, q.question, q.choices));
        }
      }
      out.push(checklistScore(qs, replies, this.rules));
    }
    return out;
  }
}
