// Checklist VQA (method.md 3.4, VQA_i): for each (question, answer, weight) of the prompt, an
// answering model is asked; the question scores its weight iff the stripped, lower-cased reply
// equals the lower-cased expected answer exactly. VQA_i = matched weight / total weight, in [0, 1].
// Duplicated questions count twice, as in the reference data. Without questions the reference asks
// "Does this image accurately depict: {p}?" and scores yes 1 / no 0 / anything else 0.5.
// The answering model is pluggable (BLIP-VQA when given: BlipVqaAnswerer, id 'blip-vqa'; or the
// customized model's own understanding path: SelfVqaAnswerer); its id is reported with the score.
import type { ChwImage } from '../data/index.js';

export interface ChecklistQuestion {
  question: string;
  answer: string;
  weight?: number;
  choices?: string[];
}

/** Anything that answers a question about an image in free text. */
export interface Answerer {
  readonly id: string;
  answer(image: ChwImage, question: string, choices?: readonly string[]): string | Promise<string>;
  /**
   * Optional: every question of one image at once (e.g. BLIP-VQA encodes the image once and batches
   * the questions); must give the same replies as answer() one by one.
   */
  answerAll?(image: ChwImage, questions: readonly { question: string; choices?: readonly string[] }[]): Promise<string[]>;
}

const YES = ['yes', 'yeah', 'true', 'correct', 'accurate', 'accurately'];
const NO = ['no', 'not', 'false', 'incorrect', 'inaccurate'];

/** The no-question fallback: 1 for a yes-like reply, 0 for a no-like one, else 0.5. */
export function yesNoScore(reply: string): number {
  const words = reply.toLowerCase().split(/[^a-z]+/).filter(Boolean);
  if (words.some((w) => NO.includes(w))) return 0;
  if (words.some((w) => YES.includes(w))) return 1;
  return 0.5;
}

/** Weighted exact-match score of replies against a checklist, in [0, 1] (0 when all weights are 0). */
export function checklistScore(questions: readonly ChecklistQuestion[], replies: readonly string[]): number {
  if (replies.length !== questions.length) throw new Error(`VQA: ${questions.length} questions but ${replies.length} replies`);
  let total = 0;
  let matched = 0;
  questions.forEach((q, i) => {
    const w = q.weight ?? 1;
    total += w;
    if (replies[i]!.trim().toLowerCase() === q.answer.trim().toLowerCase()) matched += w;
  });
  return total > 0 ? matched / total : 0;
}

export class VqaScorer {
  constructor(readonly answerer: Answerer) {}
  get id(): string {
    return this.answerer.id;
  }

  /** VQA_i per image: checklist i for image i, or the depiction question for prompt i when it is empty. */
  async score(images: readonly ChwImage[], checklists: readonly (readonly ChecklistQuestion[])[], prompts: readonly string[]): Promise<number[]> {
    if (images.length !== checklists.length || images.length !== prompts.length) {
      throw new Error(`VQA: ${images.length} images, ${checklists.length} checklists, ${prompts.length} prompts`);
    }
    const out: number[] = [];
    for (let i = 0; i < images.length; i++) {
      const qs = checklists[i]!;
      if (qs.length === 0) {
        out.push(yesNoScore(await this.answerer.answer(images[i]!, `Does this image accurately depict: ${prompts[i]}?`)));
        continue;
      }
      let replies: string[] = [];
      if (this.answerer.answerAll) {
        replies = await this.answerer.answerAll(images[i]!, qs.map((q) => ({ question: q.question, ...(q.choices ? { choices: q.choices } : {}) })));
      } else {
        for (const q of qs) replies.push(await this.answerer.answer(images[i]!, q.question, q.choices));
      }
      out.push(checklistScore(qs, replies));
    }
    return out;
  }
}
