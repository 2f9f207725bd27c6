// The checklist answerer of docs/method.md 3.4 backed by BLIP-VQA when its weights are given (the
// network is src/reward/nets/blip-vqa.ts). Its id in logs, run configs and reports is 'blip-vqa'.
//
// Answering, as BlipForQuestionAnswering.generate:
//   1. image: resized to image_size x image_size (bicubic, antialiased and clamped to [0, 1] like
//      BlipImageProcessor's PIL resize; no uint8 rounding), normalised with the OpenAI CLIP mean/std;
//      vision_model -> post-LayerNormed tokens [1 + N, D];
//   2. question: BERT WordPiece (tokenizer.json) as the HF processor encodes it, [CLS] q [SEP]
//      (see BlipVqaOptions.questionStartId); text_encoder reads it, cross-attending the image tokens;
//   3. answer: text_decoder greedily from [DEC] until [SEP] or maxLength tokens (fallbackMaxLength
//      for the no-question fallback), then detokenised without specials. The official scorer caps
//      checklist answers at max_length 50 and the fallback's at 10 (REFERENCE_BLIP_LENGTHS, the
//      `reference` rules; docs/fidelity.md); `project` keeps text_config.max_length for both.
// Batches: several questions are encoded together with padding; every answer equals the one the
// question gets alone.
//
// Multiple-choice checklist questions are answered by ranking the choices: the decoder's summed
// log-probability of each choice's wordpieces followed by [SEP] (the original BLIP's 'rank'
// inference, over the given choices). yesProbability gives the soft alternative for yes/no items:
// P(yes) / (P(yes) + P(no)) of the first answer token.
import { noGrad, ops, scope, tensor, type Tensor } from '../torch/index.js';
import type { ChwImage } from '../data/index.js';
import {
  CLIP_MEAN, CLIP_STD, lengthMask, unitTensors, BlipForQuestionAnswering, BlipTokenizer, loadBlipVqaModel, type ImageBatch,
} from './nets/index.js';
import { normaliseReply } from './self-vqa.js';
import type { Answerer, AnswerPurpose } from './vqa.js';

export const BLIP_VQA_ID = 'blip-vqa';

/** The official scorer's `generate(max_length=...)`: checklist questions 50, the fallback question 10. */
export const REFERENCE_BLIP_LENGTHS = Object.freeze({ checklist: 50, fallback: 10 });

export interface BlipVqaOptions {
  /** Reported id (default 'blip-vqa'). */
  id?: string;
  /** Generation length cap with [DEC] included (default: text_config.max_length, else 20). */
  maxLength?: number;
  /** The cap for the no-question fallback (purpose 'fallback'; default: maxLength). */
  fallbackMaxLength?: number;
  /**
   * The token that starts the question: [CLS] as transformers' processor and model use it
   * (default), or e.g. the [ENC] id as the original BLIP code replaced it.
   */
  questionStartId?: number;
}

export interface BlipQuestion {
  question: string;
  choices?: readonly string[];
}

/** The checklist answerer backed by BLIP-VQA (a drop-in for SelfVqaAnswerer, id 'blip-vqa'). */
export class BlipVqaAnswerer implements Answerer {
  readonly id: string;
  readonly maxLength: number;
  readonly fallbackMaxLength: number;

  constructor(readonly model: BlipForQuestionAnswering, readonly tokenizer: BlipTokenizer, readonly options: BlipVqaOptions = {}) {
    this.id = options.id ?? BLIP_VQA_ID;
    this.maxLength = options.maxLength ?? model.config.text.maxLength;
    this.fallbackMaxLength = options.fallbackMaxLength ?? this.maxLength;
    for (const [name, v] of [['maxLength', this.maxLength], ['fallbackMaxLength', this.fallbackMaxLength]] as const) {
      if (!(Number.isInteger(v) && v >= 2)) throw new Error(`BlipVqaAnswerer: ${name} must be an integer >= 2 ([DEC] and one token), got ${v}`);
    }
  }

  /** Loads a transformers BlipForQuestionAnswering folder: config.json, model.safetensors, tokenizer.json. */
  static load(dir: string, options: BlipVqaOptions = {}): BlipVqaAnswerer {
    const tokenizer = BlipTokenizer.load(dir);
    return new BlipVqaAnswerer(loadBlipVqaModel(dir), tokenizer, options);
  }

  /** BlipImageProcessor's pipeline on [0, 1] images: resize to S x S (antialiased bicubic, clamped), CLIP mean/std. */
  pixels(images: ImageBatch): Tensor {
    const S = this.model.config.vision.imageSize;
    return scope(() => {
      const mean = tensor([...CLIP_MEAN], { shape: [1, 3, 1, 1] });
      const std = tensor([...CLIP_STD], { shape: [1, 3, 1, 1] });
      return ops.cat(unitTensors(images).map((x) => {
        const [, , H, W] = x.shape as [number, number, number, number];
        const y = H === S && W === S ? x : ops._upsample_bicubic2d_aa(x, [S, S], false, null, null).clamp(0, 1);
        return y.sub(mean).div(std);
      }), 0);
    });
  }

  /** Image tokens [B, 1 + N, D] of a batch. */
  imageEmbeds(images: ImageBatch): Tensor {
    return noGrad(() => scope(() => this.model.imageEmbeds(this.pixels(images))));
  }

  /** Question ids (padded with pad_token_id) and their 0/1 mask. */
  async questionBatch(questions: readonly string[]): Promise<{ ids: number[][]; lengths: number[] }> {
    const maxLen = this.model.config.text.maxPositionEmbeddings;
    const ids = await Promise.all(questions.map((q) => this.tokenizer.encodeQuestion(q, maxLen, this.options.questionStartId)));
    return { ids, lengths: ids.map((r) => r.length) };
  }

  /** The question encodings [Q, T, D] and mask [Q, T] for questions each paired with image tokens [Q, N, D]. */
  private encode(imageTokens: Tensor, ids: number[][]): { question: Tensor; mask: Tensor } {
    return scope(() => {
      const T = Math.max(...ids.map((r) => r.length));
      const pad = this.model.config.text.padTokenId;
      const flat = ids.flatMap((r) => [...r, ...new Array<number>(T - r.length).fill(pad)]);
      const idsT = tensor(flat, { shape: [ids.length, T], dtype: 'int64' });
      const mask = lengthMask(ids.map((r) => r.length), T);
      return { question: this.model.encodeQuestion(idsT, mask, imageTokens), mask };
    });
  }

  /** Text of a generated row: without [DEC], [SEP] and padding, special tokens skipped. */
  private async text(row: readonly number[]): Promise<string> {
    const { bosTokenId, sepTokenId, padTokenId } = this.model.config.text;
    const body: number[] = [];
    for (const id of row.slice(1)) {
      if (id === sepTokenId) break;
      if (id !== padTokenId && id !== bosTokenId) body.push(id);
    }
    return normaliseReply(await this.tokenizer.decode(body));
  }

  /** Answers with image tokens [Q, N, D] already paired with the questions. */
  private async answerEncoded(imageTokens: Tensor, items: readonly BlipQuestion[], maxLength = this.maxLength): Promise<string[]> {
    const { ids } = await this.questionBatch(items.map((q) => q.question));
    const choiceIds = await Promise.all(items.map((q) => (q.choices && q.choices.length ? Promise.all(q.choices.map((c) => this.tokenizer.encodeText(c))) : null)));
    const rows = noGrad(() => scope(() => {
      const { question, mask } = this.encode(imageTokens, ids);
      const open = items.map((_, i) => i).filter((i) => choiceIds[i] === null);
      const out: (number[] | number)[] = new Array(items.length);
      if (open.length) {
        const index = tensor(open, { dtype: 'int64' });
        const generated = this.model.generate(question.index_select(0, index), mask.index_select(0, index), maxLength);
        open.forEach((i, j) => { out[i] = generated[j]!; });
      }
      items.forEach((_, i) => {
        const cands = choiceIds[i];
        if (cands) out[i] = argmaxFirst(this.choiceScoresOf(question.narrow(0, i, 1), mask.narrow(0, i, 1), cands));
      });
      return out;
    }));
    return Promise.all(rows.map((r, i) => (typeof r === 'number' ? Promise.resolve(items[i]!.choices![r]!) : this.text(r))));
  }

  /** Summed decoder log-probabilities of each candidate's wordpieces + [SEP], for one encoded question. */
  private choiceScoresOf(question: Tensor, mask: Tensor, candidates: readonly number[][]): number[] {
    const { bosTokenId: bos, sepTokenId: sep } = this.model.config.text;
    return candidates.map((c) => scope(() => {
      const seq = [bos, ...c, sep];
      const ids = tensor(seq, { shape: [1, seq.length], dtype: 'int64' });
      const lp = this.model.decoderLogits(ids, question, mask).select(0, 0).log_softmax(-1);
      const targets = tensor(seq.slice(1), { shape: [seq.length - 1, 1], dtype: 'int64' });
      return lp.narrow(0, 0, seq.length - 1).gather(1, targets).sum().item();
    }));
  }

  /**
   * One answer (the Answerer interface): greedy text capped at maxLength (fallbackMaxLength for
   * purpose 'fallback'), or the best-ranked choice when choices are given.
   */
  async answer(image: ChwImage, question: string, choices?: readonly string[], purpose: AnswerPurpose = 'checklist'): Promise<string> {
    return (await this.answerAll(image, [{ question, ...(choices ? { choices } : {}) }], purpose))[0]!;
  }

  /** Several questions about one image: the image is encoded once and the questions batched. */
  async answerAll(image: ChwImage, questions: readonly BlipQuestion[], purpose: AnswerPurpose = 'checklist'): Promise<string[]> {
    if (questions.length === 0) return [];
    const tokens = this.imageEmbeds([image]);
    try {
      const expanded = scope(() => tokens.expand([questions.length, tokens.shape[1]!, tokens.shape[2]!]).contiguous());
      try {
        return await this.answerEncoded(expanded, questions, purpose === 'fallback' ? this.fallbackMaxLength : this.maxLength);
      } finally {
        expanded.dispose();
      }
    } finally {
      tokens.dispose();
    }
  }

  /** Question i about image i, batched; each answer equals the one it gets alone. */
  async answerBatch(images: ImageBatch, questions: readonly string[]): Promise<string[]> {
    const tokens = this.imageEmbeds(images);
    try {
      if (tokens.shape[0] !== questions.length) throw new Error(`BLIP-VQA: ${tokens.shape[0]} images but ${questions.length} questions`);
      return await this.answerEncoded(tokens, questions.map((question) => ({ question })));
    } finally {
      tokens.dispose();
    }
  }

  /** The greedy id rows ([DEC] first) for question i about image i. */
  async generateIds(images: ImageBatch, questions: readonly string[]): Promise<number[][]> {
    const { ids } = await this.questionBatch(questions);
    return noGrad(() => scope(() => {
      const { question, mask } = this.encode(this.model.imageEmbeds(this.pixels(images)), ids);
      return this.model.generate(question, mask, this.maxLength);
    }));
  }

  /** Summed log-probabilities of each choice (wordpieces + [SEP]) as the answer to question i about image i. */
  async choiceScores(images: ImageBatch, questions: readonly string[], choices: readonly string[]): Promise<number[][]> {
    const { ids } = await this.questionBatch(questions);
    const cands = await Promise.all(choices.map((c) => this.tokenizer.encodeText(c)));
    return noGrad(() => scope(() => {
      const { question, mask } = this.encode(this.model.imageEmbeds(this.pixels(images)), ids);
      return questions.map((_, i) => this.choiceScoresOf(question.narrow(0, i, 1), mask.narrow(0, i, 1), cands));
    }));
  }

  /**
   * The soft yes/no score of question i about image i: P(yes) / (P(yes) + P(no)) of the first
   * answer token (the decoder's distribution after [DEC]).
   */
  async yesProbability(images: ImageBatch, questions: readonly string[], yes = 'yes', no = 'no'): Promise<number[]> {
    const yesId = this.tokenizer.idOf(yes);
    const noId = this.tokenizer.idOf(no);
    if (yesId === null || noId === null) throw new Error(`BLIP-VQA: '${yesId === null ? yes : no}' is not one token of ${this.tokenizer.source}`);
    const { ids } = await this.questionBatch(questions);
    return noGrad(() => scope(() => {
      const { question, mask } = this.encode(this.model.imageEmbeds(this.pixels(images)), ids);
      const start = tensor(new Array<number>(questions.length).fill(this.model.config.text.bosTokenId), { shape: [questions.length, 1], dtype: 'int64' });
      const p = this.model.decoderLogits(start, question, mask, true).softmax(-1);
      const py = p.select(1, yesId);
      const pn = p.select(1, noId);
      return Array.from(py.div(py.add(pn)).toArray() as number[], Number);
    }));
  }

  dispose(): void {
    this.model.dispose();
  }
}

function argmaxFirst(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}
