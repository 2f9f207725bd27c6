// BLIP's text towers in the Hugging Face `transformers` layout (modeling_blip_text.py): a BERT
// (BlipTextModel) used twice by BlipForQuestionAnswering, as `text_encoder` (bidirectional, reads
// the question and cross-attends the image tokens) and as `text_decoder.bert` (causal, reads the
// answer so far and cross-attends the question encoding), the latter with the LM head
// `text_decoder.cls.predictions`.
//
// Details that matter for matching the reference numbers:
// - embeddings: word + absolute position embeddings (no token types), then LayerNorm;
// - every layer is post-LN BERT: LayerNorm(dense(attention) + x) for the self-attention block,
//   the same for the cross-attention block (keys and values from encoder_hidden_size inputs),
//   then intermediate dense + GELU and LayerNorm(dense + x); scores are divided by sqrt(head_dim);
// - the self-attention mask is additive (1 - m) * -10000 (padding, and causality in the decoder),
//   the cross-attention mask (1 - m) * float32 min (transformers' invert_attention_mask);
// - the LM head is dense -> GELU -> LayerNorm -> decoder [V, D] + bias [V] (the decoder's bias is
//   tied to cls.predictions.bias).
import { ops, scope, tensor, zeros, type Tensor } from '../../torch/index.js';
import { activation, Embedding, LayerNorm, Linear, Module, ModuleList } from '../../nn/index.js';

export interface BlipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  /** Width of what the cross-attention reads (the image tokens for the encoder, the question for the decoder). */
  encoderHiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  maxPositionEmbeddings: number;
  hiddenAct: string;
  layerNormEps: number;
  /** The decoder's start token ([DEC], 30522 in blip-vqa-base). */
  bosTokenId: number;
  /** Generation stops after this token ([SEP], 102). */
  sepTokenId: number;
  padTokenId: number;
  /** Generation length cap, the start token included (transformers' default 20). */
  maxLength: number;
}

/** The additive self-attention mask of BlipTextModel: (1 - m) * -10000. */
const SELF_MASKED = -10000;
/** The additive cross-attention mask of invert_attention_mask: (1 - m) * finfo(float32).min. */
const CROSS_MASKED = -3.4028234663852886e38;

class BlipTextSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  constructor(readonly hidden: number, kvIn: number, readonly numHeads: number) {
    super();
    if (hidden % numHeads !== 0) throw new Error(`BLIP text: hidden_size ${hidden} is not divisible by ${numHeads} heads`);
    this.query = this.registerModule('query', new Linear(hidden, hidden));
    this.key = this.registerModule('key', new Linear(kvIn, hidden));
    this.value = this.registerModule('value', new Linear(kvIn, hidden));
  }
  /** x [B, T, D]; keys and values from ctx [B, S, E] (or x); mask additive, broadcastable to [B, H, T, S]. */
  forward(x: Tensor, ctx: Tensor | null, mask: Tensor | null): Tensor {
    return scope(() => {
      const [B, T] = x.shape as [number, number];
      const H = this.numHeads;
      const d = this.hidden / H;
      const src = ctx ?? x;
      const heads = (t: Tensor): Tensor => t.reshape([B, -1, H, d]).transpose(1, 2);
      const q = heads(this.query.forward(x));
      const k = heads(this.key.forward(src));
      const v = heads(this.value.forward(src));
      let scores = q.matmul(k.transpose(-1, -2)).div(Math.sqrt(d));
      if (mask) scores = scores.add(mask);
      return scores.softmax(-1).matmul(v).permute([0, 2, 1, 3]).reshape([B, T, this.hidden]);
    });
  }
}

/** BlipTextSelfOutput / BlipTextOutput: LayerNorm(dense(h) + residual). */
class BlipTextDenseNorm extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  constructor(inFeatures: number, hidden: number, eps: number) {
    super();
    this.dense = this.registerModule('dense', new Linear(inFeatures, hidden));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(hidden, eps));
  }
  forward(h: Tensor, residual: Tensor): Tensor {
    return scope(() => this.LayerNorm.forward(this.dense.forward(h).add(residual)));
  }
}

class BlipTextAttention extends Module {
  readonly self: BlipTextSelfAttention;
  readonly output: BlipTextDenseNorm;
  constructor(c: BlipTextConfig, cross: boolean) {
    super();
    this.self = this.registerModule('self', new BlipTextSelfAttention(c.hiddenSize, cross ? c.encoderHiddenSize : c.hiddenSize, c.numHeads));
    this.output = this.registerModule('output', new BlipTextDenseNorm(c.hiddenSize, c.hiddenSize, c.layerNormEps));
  }
  forward(x: Tensor, ctx: Tensor | null, mask: Tensor | null): Tensor {
    return scope(() => this.output.forward(this.self.forward(x, ctx, mask), x));
  }
}

class BlipTextIntermediate extends Module {
  readonly dense: Linear;
  constructor(c: BlipTextConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(c.hiddenSize, c.intermediateSize));
  }
}

class BlipTextLayer extends Module {
  readonly attention: BlipTextAttention;
  readonly crossattention: BlipTextAttention;
  readonly intermediate: BlipTextIntermediate;
  readonly output: BlipTextDenseNorm;
  constructor(readonly c: BlipTextConfig) {
    super();
    this.attention = this.registerModule('attention', new BlipTextAttention(c, false));
    this.crossattention = this.registerModule('crossattention', new BlipTextAttention(c, true));
    this.intermediate = this.registerModule('intermediate', new BlipTextIntermediate(c));
    this.output = this.registerModule('output', new BlipTextDenseNorm(c.intermediateSize, c.hiddenSize, c.layerNormEps));
  }
  forward(x: Tensor, selfMask: Tensor | null, ctx: Tensor, crossMask: Tensor | null): Tensor {
    return scope(() => {
      const a = this.crossattention.forward(this.attention.forward(x, null, selfMask), ctx, crossMask);
      return this.output.forward(activation(this.c.hiddenAct, this.intermediate.dense.forward(a)), a);
    });
  }
}

class BlipTextEncoder extends Module {
  readonly layer: ModuleList<BlipTextLayer>;
  constructor(c: BlipTextConfig) {
    super();
    this.layer = this.registerModule('layer', new ModuleList(Array.from({ length: c.numLayers }, () => new BlipTextLayer(c))));
  }
  forward(x: Tensor, selfMask: Tensor | null, ctx: Tensor, crossMask: Tensor | null): Tensor {
    let h = x;
    for (const layer of this.layer) {
      const next = layer.forward(h, selfMask, ctx, crossMask);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }
}

class BlipTextEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  constructor(readonly c: BlipTextConfig) {
    super();
    this.word_embeddings = this.registerModule('word_embeddings', new Embedding(c.vocabSize, c.hiddenSize));
    this.position_embeddings = this.registerModule('position_embeddings', new Embedding(c.maxPositionEmbeddings, c.hiddenSize));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
  forward(ids: Tensor): Tensor {
    return scope(() => {
      const T = ids.shape[1]!;
      if (T > this.c.maxPositionEmbeddings) throw new Error(`BLIP text: ${T} tokens exceed max_position_embeddings ${this.c.maxPositionEmbeddings}`);
      const h = this.word_embeddings.forward(ids).add(this.position_embeddings.weight.narrow(0, 0, T).unsqueeze(0));
      return this.LayerNorm.forward(h);
    });
  }
}

/** Float 0/1 mask [B, S] from per-row lengths (1 on the first len_i positions). */
export function lengthMask(lengths: readonly number[], S: number): Tensor {
  const data = new Float32Array(lengths.length * S);
  lengths.forEach((n, i) => data.fill(1, i * S, i * S + Math.min(n, S)));
  return tensor(data, { shape: [lengths.length, S] });
}

/** BlipTextModel without the pooler: ids [B, T] -> hidden states [B, T, D]. */
export class BlipTextModel extends Module {
  readonly embeddings: BlipTextEmbeddings;
  readonly encoder: BlipTextEncoder;
  constructor(readonly config: BlipTextConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new BlipTextEmbeddings(config));
    this.encoder = this.registerModule('encoder', new BlipTextEncoder(config));
  }
  /**
   * ids [B, T] int64; mask [B, T] float 0/1 (null: all ones); causal: the decoder's mask;
   * ctx [B, S, E] what the cross-attention reads, ctxMask [B, S] float 0/1 (null: all ones).
   */
  forward(ids: Tensor, mask: Tensor | null, causal: boolean, ctx: Tensor, ctxMask: Tensor | null): Tensor {
    return scope(() => {
      const [B, T] = ids.shape as [number, number];
      let keep: Tensor | null = mask ? mask.reshape([B, 1, 1, T]) : null;
      if (causal) {
        const tri = ops.tril(ops.ones([T, T], 'float32')).reshape([1, 1, T, T]);
        keep = keep ? tri.mul(keep) : tri;
      }
      const selfMask = keep ? keep.neg().add(1).mul(SELF_MASKED) : null;
      const crossMask = ctxMask ? ctxMask.neg().add(1).mul(CROSS_MASKED).reshape([B, 1, 1, ctxMask.shape[1]!]) : null;
      return this.encoder.forward(this.embeddings.forward(ids), selfMask, ctx, crossMask);
    });
  }
}

class BlipTextPredictionHeadTransform extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  constructor(readonly c: BlipTextConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(c.hiddenSize, c.hiddenSize));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
  forward(h: Tensor): Tensor {
    return scope(() => this.LayerNorm.forward(activation(this.c.hiddenAct, this.dense.forward(h))));
  }
}

class BlipTextLMPredictionHead extends Module {
  readonly transform: BlipTextPredictionHeadTransform;
  readonly decoder: Linear;
  readonly bias: Tensor;
  constructor(c: BlipTextConfig) {
    super();
    this.transform = this.registerModule('transform', new BlipTextPredictionHeadTransform(c));
    this.decoder = this.registerModule('decoder', new Linear(c.hiddenSize, c.vocabSize, { bias: false }));
    this.bias = this.registerParameter('bias', zeros([c.vocabSize]));
  }
  forward(h: Tensor): Tensor {
    return scope(() => ops.linear(this.transform.forward(h), this.decoder.weight, this.bias));
  }
}

class BlipTextOnlyMLMHead extends Module {
  readonly predictions: BlipTextLMPredictionHead;
  constructor(c: BlipTextConfig) {
    super();
    this.predictions = this.registerModule('predictions', new BlipTextLMPredictionHead(c));
  }
}

/** BlipTextLMHeadModel (`text_decoder`): the causal BERT and its LM head. */
export class BlipTextLMHeadModel extends Module {
  readonly bert: BlipTextModel;
  readonly cls: BlipTextOnlyMLMHead;
  constructor(readonly config: BlipTextConfig) {
    super();
    this.bert = this.registerModule('bert', new BlipTextModel(config));
    this.cls = this.registerModule('cls', new BlipTextOnlyMLMHead(config));
  }
  /**
   * Next-token logits. ids [B, T] (the answer so far, starting with [DEC]); question [B, S, D]
   * with its 0/1 mask [B, S] (null: all ones). lastOnly: logits of the last position only, [B, V];
   * otherwise [B, T, V].
   */
  forward(ids: Tensor, question: Tensor, questionMask: Tensor | null, lastOnly = false): Tensor {
    return scope(() => {
      let h = this.bert.forward(ids, null, true, question, questionMask);
      if (lastOnly) h = h.select(1, h.shape[1]! - 1);
      return this.cls.predictions.forward(h);
    });
  }
}
