// The BLIP-VQA network (Li et al. 2022) in the Hugging Face `transformers` layout
// (BlipForQuestionAnswering, e.g. Salesforce/blip-vqa-base) and its BERT WordPiece tokenizer. The
// checklist answerer built on it (image preprocessing, batching, choice ranking) is
// BlipVqaAnswerer in src/reward/blip-answerer.ts.
//
// The network, as BlipForQuestionAnswering:
//   - vision_model: post-LayerNormed image tokens [1 + N, D] of CLIP-normalised pixels;
//   - text_encoder: the question, [CLS] q [SEP] as the HF processor encodes it (transformers keeps
//     [CLS]; the original BLIP code put [ENC] there), cross-attending the image tokens;
//   - text_decoder: starts from bos_token_id ([DEC]), cross-attends the question encoding, and
//     `generate` decodes greedily until sep_token_id ([SEP]) or max_length tokens ([DEC] included;
//     text_config.max_length, else transformers' default 20). Padded question positions are masked
//     in the decoder's cross-attention too, so every batched answer equals the one it gets alone
//     (transformers' batched generate attends to the padding there).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from 'tokenizers';
import { noGrad, safetensors, scope, tensor, type Tensor } from '../../torch/index.js';
import { Module } from '../../nn/index.js';
import { BlipVisionModel, type BlipVisionConfig } from './blip-vision.js';
import { BlipTextLMHeadModel, BlipTextModel, type BlipTextConfig } from './blip-text.js';
import { num, str, type HfConfigJson } from './hf-config.js';

export interface BlipConfig {
  text: BlipTextConfig;
  vision: BlipVisionConfig;
}

/** Reads a transformers BlipConfig (config.json), with transformers' defaults for absent fields. */
export function parseBlipConfig(json: HfConfigJson): BlipConfig {
  const t = (json.text_config ?? {}) as HfConfigJson;
  const v = (json.vision_config ?? {}) as HfConfigJson;
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
  let json: HfConfigJson;
  try {
    json = JSON.parse(readFileSync(configPath, 'utf8')) as HfConfigJson;
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
        const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as HfConfigJson;
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

/** The tokenizer.json of BertTokenizerFast for a WordPiece vocabulary (what transformers converts vocab.txt to). */
export function bertTokenizerJson(vocab: Record<string, number>, lowercase = true): HfConfigJson {
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
