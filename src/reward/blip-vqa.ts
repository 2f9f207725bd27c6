// BLIP-VQA (Li et al. 2022) in the Hugging Face `transformers` layout (BlipForQuestionAnswering,
// e.g. Salesforce/blip-vqa-base): the checklist answerer of method.md 3.4 when its weights are
// given (issue 6). Its id in logs, run configs and reports is 'blip-vqa'.
//
// Answering, as BlipForQuestionAnswering.generate:
//   1. image: resized to image_size x image_size (bicubic, antialiased and clamped to [0, 1] like
//      BlipImageProcessor's PIL resize; no uint8 rounding), normalised with the OpenAI CLIP mean/std;
//      vision_model -> post-LayerNormed tokens [1 + N, D];
//   2. question: BERT WordPiece (tokenizer.json) as the HF processor encodes it, [CLS] q [SEP]
//      (transformers keeps [CLS]; the original BLIP code put [ENC] there, see
//      BlipVqaOptions.questionStartId); text_encoder reads it, cross-attending the image tokens;
//   3. answer: text_decoder starts from bos_token_id ([DEC]), cross-attends the question encoding
//      and is decoded greedily until sep_token_id ([SEP]) or max_length tokens ([DEC] included;
//      text_config.max_length, else transformers' default 20), then detokenised without specials.
// Batches: several questions are encoded together with padding; their padded positions are masked
// in the decoder's cross-attention too, so every answer equals the one the question gets alone
// (transformers' batched generate attends to the padding there).
//
// Multiple-choice checklist questions are answered by ranking the choices: the decoder's summed
// log-probability of each choice's wordpieces followed by [SEP] (the original BLIP's 'rank'
// inference, over the given choices). yesProbability gives the soft alternative for yes/no items:
// P(yes) / (P(yes) + P(no)) of the first answer token.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from 'tokenizers';
import { noGrad, ops, safetensors, scope, tensor, type Tensor } from '../torch/index.js';
import { Module } from '../nn/index.js';
import type { ChwImage } from '../data/image.js';
import { CLIP_MEAN, CLIP_STD, unitTensors, type ImageBatch } from './images.js';
import { BlipVisionModel, type BlipVisionConfig } from './blip-vision.js';
import { BlipTextLMHeadModel, BlipTextModel, lengthMask, type BlipTextConfig } from './blip-text.js';
import { normaliseReply } from './self-vqa.js';
import type { Answerer } from './vqa.js';
import { num, str, type Json } from './hf-config.js';

export { BlipVisionModel, type BlipVisionConfig } from './blip-vision.js';
export { BlipTextModel, BlipTextLMHeadModel, type BlipTextConfig } from './blip-text.js';

export const BLIP_VQA_ID = 'blip-vqa';

export interface BlipConfig {
  text: BlipTextConfig;
  vision: BlipVisionConfig;
}

/** Reads a transformers BlipConfig (config.json), with transformers' defaults for absent fields. */
export function parseBlipConfig(json: Json): BlipConfig {
  const t = (json.text_config ?? {}) as Json;
  const v = (json.vision_config ?? {}) as Json;
  const vision: BlipVisionConfig = {
    hiddenSize: num(v, 'hidden_size', 768),
    intermediateSize: num(v, 'intermediate_size', 3072),
    numLayers: num(v, 'num_hidden_layers', 12),
    numHeads: num(v, 'num_attention_heads', 12),
    imageSize: num(v, 'image_size', 384),
    patchSize: num(v, 'patch_size', 16),
    numChannels: num(v, 'num_channels', 3),
    hiddenAct: str(v, 'hidden_act', 'gelu'),
    layerNormEps: num(v, 'layer_norm_eps', 1e-5),
  };
  const text: BlipTextConfig = {
    vocabSize: num(t, 'vocab_size', 30524),
    hiddenSize: num(t, 'hidden_size', 768),
    encoderHiddenSize: num(t, 'encoder_hidden_size', 768),
    intermediateSize: num(t, 'intermediate_size', 3072),
    numLayers: num(t, 'num_hidden_layers', 12),
    numHeads: num(t, 'num_attention_heads', 8),
    maxPositionEmbeddings: num(t, 'max_position_embeddings', 512),
    hiddenAct: str(t, 'hidden_act', 'gelu'),
    layerNormEps: num(t, 'layer_norm_eps', 1e-12),
    bosTokenId: num(t, 'bos_token_id', 30522),
    sepTokenId: num(t, 'sep_token_id', 102),
    padTokenId: num(t, 'pad_token_id', 0),
    maxLength: num(t, 'max_length', 20),
  };
  if (text.encoderHiddenSize !== vision.hiddenSize || text.encoderHiddenSize !== text.hiddenSize) {
    throw new Error(`BLIP-VQA: text_config.encoder_hidden_size ${text.encoderHiddenSize} must equal vision_config.hidden_size ${vision.hiddenSize} and text_config.hidden_size ${text.hiddenSize} (the encoder reads the image, the decoder the question)`);
  }
  return { text, vision };
}

/** BlipForQuestionAnswering with the transformers key names. */
export class BlipForQuestionAnswering extends Module {
  readonly vision_model: BlipVisionModel;
  readonly text_encoder: BlipTextModel;
  readonly text_decoder: BlipTextLMHeadModel;
  constructor(readonly config: BlipConfig) {
    super();
    this.vision_model = this.registerModule('vision_model', new BlipVisionModel(config.vision));
    this.text_encoder = this.registerModule('text_encoder', new BlipTextModel(config.text));
    this.text_decoder = this.registerModule('text_decoder', new BlipTextLMHeadModel(config.text));
  }
  /** Normalised pixels [B, 3, S, S] -> image tokens [B, 1 + N, D]. */
  imageEmbeds(pixels: Tensor): Tensor {
    return this.vision_model.forward(pixels);
  }
  /** Question ids [B, T] with 0/1 mask [B, T] (null: no padding), image tokens [B, N, D] -> [B, T, D]. */
  encodeQuestion(ids: Tensor, mask: Tensor | null, imageEmbeds: Tensor): Tensor {
    return this.text_encoder.forward(ids, mask, false, imageEmbeds, null);
  }
  /** Decoder logits [B, T, V] (or [B, V] for the last position) for answer ids [B, T] starting with [DEC]. */
  decoderLogits(ids: Tensor, question: Tensor, questionMask: Tensor | null, lastOnly = false): Tensor {
    return this.text_decoder.forward(ids, question, questionMask, lastOnly);
  }

  /**
   * Greedy answers (transformers' greedy search): from [DEC], append argmax until [SEP] or
   * maxLength tokens; rows that finish early are fed pad_token_id while the others go on, as in
   * transformers. Returns one id row per question, [DEC] first, ending at its [SEP] (kept) or at
   * maxLength tokens, without the padding.
   */
  generate(question: Tensor, questionMask: Tensor | null, maxLength = this.config.text.maxLength): number[][] {
    const { bosTokenId: bos, sepTokenId: sep, padTokenId: pad } = this.config.text;
    const B = question.shape[0]!;
    const rows = Array.from({ length: B }, () => [bos]);
    const done = new Array<boolean>(B).fill(false);
    return noGrad(() => {
      while (rows[0]!.length < maxLength && done.some((d) => !d)) {
        const next = scope(() => {
          const ids = tensor(rows.flat(), { shape: [B, rows[0]!.length], dtype: 'int64' });
          return Array.from(this.decoderLogits(ids, question, questionMask, true).argmax(-1).toArray() as number[], Number);
        });
        next.forEach((id, i) => {
          rows[i]!.push(done[i] ? pad : id);
          if (id === sep) done[i] = true;
        });
      }
      return rows.map((r) => {
        const end = r.indexOf(sep);
        return end < 0 ? r : r.slice(0, end + 1);
      });
    });
  }
}

/**
 * Loads a transformers BlipForQuestionAnswering folder's config.json and model.safetensors.
 * Loading is strict: a missing, unexpected or mis-shaped key is an error naming it. Accepted and
 * skipped: the `*.position_ids` buffers older versions saved, `text_encoder.pooler.*` (unused by
 * VQA) and `text_decoder.cls.predictions.decoder.bias` (tied to cls.predictions.bias). When
 * `text_decoder.cls.predictions.decoder.weight` is absent it is tied to the decoder's word
 * embeddings, as BERT's LM head is.
 */
export function loadBlipVqaModel(dir: string): BlipForQuestionAnswering {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${dir}: no config.json (a transformers BlipForQuestionAnswering folder has config.json, model.safetensors and tokenizer.json)`);
  const weightsPath = join(dir, 'model.safetensors');
  if (!existsSync(weightsPath)) throw new Error(`${dir}: no model.safetensors (convert pytorch_model.bin with transformers' save_pretrained(safe_serialization=True))`);
  let json: Json;
  try {
    json = JSON.parse(readFileSync(configPath, 'utf8')) as Json;
  } catch (e) {
    throw new Error(`${configPath}: not valid JSON (${(e as Error).message})`);
  }
  const model = new BlipForQuestionAnswering(parseBlipConfig(json));
  try {
    scope(() => {
      const skip = (k: string): boolean => k.endsWith('.position_ids') || k.startsWith('text_encoder.pooler.');
      const { tensors } = safetensors.load(weightsPath, { keys: (k) => !skip(k) });
      const head = 'text_decoder.cls.predictions';
      const decoderBias = tensors.get(`${head}.decoder.bias`);
      if (decoderBias) {
        if (!tensors.has(`${head}.bias`)) tensors.set(`${head}.bias`, decoderBias);
        tensors.delete(`${head}.decoder.bias`);
      }
      const words = tensors.get('text_decoder.bert.embeddings.word_embeddings.weight');
      if (!tensors.has(`${head}.decoder.weight`) && words) tensors.set(`${head}.decoder.weight`, words);
      model.loadStateDict(tensors);
    });
  } catch (e) {
    model.dispose();
    if (e instanceof Error) e.message = `${weightsPath}: ${e.message}`;
    throw e;
  }
  return model.eval();
}

/** The BERT WordPiece tokenizer of a BLIP folder (tokenizer.json), with the ids answering needs. */
export class BlipTokenizer {
  constructor(
    readonly hf: HfTokenizer,
    readonly clsId: number,
    readonly sepId: number,
    readonly source: string,
  ) {}

  /**
   * Loads the folder's tokenizer.json; a folder with only the slow tokenizer's vocab.txt (and
   * tokenizer_config.json's do_lower_case, default true) gets the equivalent BertTokenizerFast.
   */
  static load(dir: string): BlipTokenizer {
    let file = join(dir, 'tokenizer.json');
    let hf: HfTokenizer;
    if (existsSync(file)) {
      try {
        hf = HfTokenizer.fromFile(file);
      } catch (e) {
        throw new Error(`${file}: not a tokenizers tokenizer.json (${(e as Error).message})`);
      }
    } else if (existsSync(join(dir, 'vocab.txt'))) {
      file = join(dir, 'vocab.txt');
      const lines = readFileSync(file, 'utf8').split(/\r?\n/);
      if (lines.at(-1) === '') lines.pop();
      const vocab: Record<string, number> = {};
      lines.forEach((t, i) => { if (!(t in vocab)) vocab[t] = i; });
      let lowercase = true;
      const cfgPath = join(dir, 'tokenizer_config.json');
      if (existsSync(cfgPath)) {
        const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Json;
        if (typeof cfg.do_lower_case === 'boolean') lowercase = cfg.do_lower_case;
      }
      hf = HfTokenizer.fromString(JSON.stringify(bertTokenizerJson(vocab, lowercase)));
    } else {
      throw new Error(`${dir}: no tokenizer.json (BLIP-VQA needs the BERT WordPiece tokenizer.json of its folder, or its vocab.txt)`);
    }
    const cls = hf.tokenToId('[CLS]');
    const sep = hf.tokenToId('[SEP]');
    if (cls === null || cls === undefined) throw new Error(`${file}: no [CLS] token in the vocabulary`);
    if (sep === null || sep === undefined) throw new Error(`${file}: no [SEP] token in the vocabulary`);
    return new BlipTokenizer(hf, cls, sep, file);
  }

  /** Wordpiece ids of a text, no special tokens. */
  async encodeText(text: string): Promise<number[]> {
    return (await this.hf.encode(text, null, { addSpecialTokens: false })).getIds();
  }

  /** [CLS] (or startId) wordpieces [SEP], cut to maxLen tokens (the [SEP] kept). */
  async encodeQuestion(text: string, maxLen: number, startId = this.clsId): Promise<number[]> {
    const ids = await this.encodeText(text);
    return [startId, ...ids.slice(0, Math.max(0, maxLen - 2)), this.sepId];
  }

  /** Text of ids, special tokens skipped. */
  decode(ids: readonly number[]): Promise<string> {
    return this.hf.decode([...ids], true);
  }

  /** The id of a single-token word, or null. */
  idOf(token: string): number | null {
    const id = this.hf.tokenToId(token);
    return id === undefined ? null : id;
  }
}

export interface BlipVqaOptions {
  /** Reported id (default 'blip-vqa'). */
  id?: string;
  /** Generation length cap with [DEC] included (default: text_config.max_length, else 20). */
  maxLength?: number;
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

  constructor(readonly model: BlipForQuestionAnswering, readonly tokenizer: BlipTokenizer, readonly options: BlipVqaOptions = {}) {
    this.id = options.id ?? BLIP_VQA_ID;
    this.maxLength = options.maxLength ?? model.config.text.maxLength;
    if (!(this.maxLength >= 2)) throw new Error(`BlipVqaAnswerer: maxLength must be >= 2 ([DEC] and one token), got ${this.maxLength}`);
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
  private async answerEncoded(imageTokens: Tensor, items: readonly BlipQuestion[]): Promise<string[]> {
    const { ids } = await this.questionBatch(items.map((q) => q.question));
    const choiceIds = await Promise.all(items.map((q) => (q.choices && q.choices.length ? Promise.all(q.choices.map((c) => this.tokenizer.encodeText(c))) : null)));
    const rows = noGrad(() => scope(() => {
      const { question, mask } = this.encode(imageTokens, ids);
      const open = items.map((_, i) => i).filter((i) => choiceIds[i] === null);
      const out: (number[] | number)[] = new Array(items.length);
      if (open.length) {
        const index = tensor(open, { dtype: 'int64' });
        const generated = this.model.generate(question.index_select(0, index), mask.index_select(0, index), this.maxLength);
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

  /** One answer (the Answerer interface): greedy text, or the best-ranked choice when choices are given. */
  async answer(image: ChwImage, question: string, choices?: readonly string[]): Promise<string> {
    return (await this.answerAll(image, [{ question, ...(choices ? { choices } : {}) }]))[0]!;
  }

  /** Several questions about one image: the image is encoded once and the questions batched. */
  async answerAll(image: ChwImage, questions: readonly BlipQuestion[]): Promise<string[]> {
    if (questions.length === 0) return [];
    const tokens = this.imageEmbeds([image]);
    try {
      const expanded = scope(() => tokens.expand([questions.length, tokens.shape[1]!, tokens.shape[2]!]).contiguous());
      try {
        return await this.answerEncoded(expanded, questions);
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

/** The tokenizer.json of BertTokenizerFast for a WordPiece vocabulary (what transformers converts vocab.txt to). */
export function bertTokenizerJson(vocab: Record<string, number>, lowercase = true): Json {
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].filter((t) => t in vocab);
  for (const t of ['[UNK]', '[CLS]', '[SEP]']) if (!(t in vocab)) throw new Error(`vocab.txt: no ${t} token`);
  const tok = (t: string) => ({ SpecialToken: { id: t, type_id: 0 } });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: specials.map((t) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [tok('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, tok('[SEP]')],
      pair: [tok('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, tok('[SEP]'), { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: Object.fromEntries(['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [vocab[t]], tokens: [t] }])),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

function argmaxFirst(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}
