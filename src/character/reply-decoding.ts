// One chat reply being decoded (docs/serving.md 3, 7, 9): its decode sequence with every sampling
// option and its own random source, the UTF-8 guard's state, the streamed text with stop strings
// held back. The decode batcher steps many of these together; each takes its own token.
import { DecodeSequence, seededRandom, type Bagel, type KVCache } from '../model/index.js';
import { StreamDecoder, type Tokenizer } from '../data/index.js';
import { StopHoldback } from './stop-strings.js';
import { Utf8Guard } from './utf8-guard.js';

/** The sampling fields of a reply (CharacterModel's SamplingOptions, docs/serving.md 3). */
export interface ReplySampling {
  temperature?: number;
  topP?: number;
  topK?: number;
  stop?: string[];
  frequencyPenalty?: number;
  presencePenalty?: number;
  repetitionPenalty?: number;
}

export interface DecodedReply {
  text: string;
  completionTokens: number;
  finishReason: 'stop' | 'length';
}

export class ReplyDecoding {
  readonly seq: DecodeSequence;
  private state: number = Utf8Guard.start;
  private readonly held: StopHoldback;
  private readonly stream: StreamDecoder;
  private stopped = false;
  private readonly maxTokens: number;

  /**
   * `seed`: the reply's random source (seededRandom), so that the same seed gives the same reply
   * whichever replies are decoded beside it. The context is forked, not changed.
   */
  constructor(model: Bagel, ctx: KVCache, tokenizer: Tokenizer, private readonly guard: Utf8Guard, promptIds: number[], o: ReplySampling & { seed: number; maxTokens: number; onText?: (piece: string) => void }) {
    this.maxTokens = o.maxTokens;
    this.held = new StopHoldback((o.stop ?? []).filter((x) => x.length > 0), o.onText);
    this.stream = new StreamDecoder(tokenizer, { skipSpecialTokens: true });
    // the sequence asks before each token; accept() advances the state after it
    this.seq = new DecodeSequence(model, ctx, {
      maxTokens: o.maxTokens, temperature: o.temperature ?? 0.7, allowedNext: (g) => guard.mask(this.state, { last: g.length >= o.maxTokens - 1 }), penaltyIds: promptIds,
      random: seededRandom(o.seed),
      ...(o.topP !== undefined ? { topP: o.topP } : {}),
      ...(o.topK !== undefined ? { topK: o.topK } : {}),
      ...(o.repetitionPenalty !== undefined ? { repetitionPenalty: o.repetitionPenalty } : {}),
      ...(o.frequencyPenalty !== undefined ? { frequencyPenalty: o.frequencyPenalty } : {}),
      ...(o.presencePenalty !== undefined ? { presencePenalty: o.presencePenalty } : {}),
    });
  }

  /** Whether the reply needs no more steps. */
  get done(): boolean {
    return this.stopped || this.seq.done;
  }

  /** Takes the step's choice (DecodeSequence.choose): advances the guard and streams the text. */
  accept(id: number | null): void {
    if (id === null) return;
    this.state = this.guard.advance(this.state, id);
    if (this.held.push(this.stream.push(id))) this.stopped = true;
  }

  /** The reply once done (or cut): the held text flushed, the counts and why it ended. */
  finish(): DecodedReply {
    let stopped = this.stopped;
    if (!stopped) {
      // A reply cut by max_tokens inside a character ends before that character.
      const rest = this.stream.flush();
      stopped = this.held.push(Utf8Guard.complete(this.state) ? rest : rest.replace(/\uFFFD+$/, ''));
    }
    this.held.end();
    const generated = this.seq.generated.length;
    return { text: this.held.text, completionTokens: generated, finishReason: !stopped && generated >= this.maxTokens ? 'length' : 'stop' };
  }

  dispose(): void {
    this.seq.dispose();
  }
}
