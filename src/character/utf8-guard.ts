// Replies that are always valid, printable UTF-8 (docs/serving.md 7). A byte-level BPE token is a
// run of bytes, so an untrained or unlucky model can sample a lone continuation byte, a
// half-finished character before <|im_end|>, or a control byte. The guard follows the bytes of
// the reply with a small UTF-8 automaton and, at each decoding step, lets through only the
// tokens whose bytes can continue it: <|im_end|> only between characters, no other special
// token, no C0/C1 control character except tab, newline and carriage return, no surrogate,
// overlong form or code point above U+10FFFF; no token that leads where no token can finish
// the character; and at the last allowed token, only tokens that end a character.
import { tensor, type Tensor } from '../torch/index.js';
import { byteLevelAlphabet, type Tokenizer } from '../data/index.js';

/** The automaton's states: what the bytes so far still need to finish a character. */
const S = {
  Ground: 0,
  Cont1: 1, // one continuation byte 80-BF
  Cont2: 2, // two continuation bytes
  AfterC2: 3, // after C2: A0-BF only (80-9F would be a C1 control)
  AfterE0: 4, // A0-BF, then one more (no overlong 3-byte form)
  AfterED: 5, // 80-9F, then one more (no surrogates)
  AfterF0: 6, // 90-BF, then two more
  AfterF1: 7, // 80-BF, then two more (F1-F3)
  AfterF4: 8, // 80-8F, then two more (<= U+10FFFF)
} as const;
const NUM_STATES = 9;
const BAD = -1;

/** The next state after byte b, or BAD. */
export function utf8Step(state: number, b: number): number {
  const cont = b >= 0x80 && b <= 0xbf;
  switch (state) {
    case S.Ground:
      if (b < 0x80) return (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b === 0x7f ? BAD : S.Ground;
      if (b === 0xc2) return S.AfterC2;
      if (b >= 0xc3 && b <= 0xdf) return S.Cont1;
      if (b === 0xe0) return S.AfterE0;
      if (b === 0xed) return S.AfterED;
      if (b >= 0xe1 && b <= 0xef) return S.Cont2;
      if (b === 0xf0) return S.AfterF0;
      if (b >= 0xf1 && b <= 0xf3) return S.AfterF1;
      if (b === 0xf4) return S.AfterF4;
      return BAD;
    case S.Cont1:
      return cont ? S.Ground : BAD;
    case S.Cont2:
      return cont ? S.Cont1 : BAD;
    case S.AfterC2:
      return b >= 0xa0 && b <= 0xbf ? S.Ground : BAD;
    case S.AfterE0:
      return b >= 0xa0 && b <= 0xbf ? S.Cont1 : BAD;
    case S.AfterED:
      return b >= 0x80 && b <= 0x9f ? S.Cont1 : BAD;
    case S.AfterF0:
      return b >= 0x90 && b <= 0xbf ? S.Cont2 : BAD;
    case S.AfterF1:
      return cont ? S.Cont2 : BAD;
    case S.AfterF4:
      return b >= 0x80 && b <= 0x8f ? S.Cont2 : BAD;
    default:
      return BAD;
  }
}

/**
 * The bytes each token id stands for (null for special tokens and ids the tokenizer lacks):
 * byte-level vocabularies map their symbols back through GPT-2's byte alphabet; any other token
 * is the UTF-8 of its decoded text.
 */
export function tokenBytes(tok: Tokenizer, size: number): (Uint8Array | null)[] {
  // The alphabet lists the printable bytes (which stand for themselves) first, then the others
  // in byte order, mapped to U+0100 onwards (GPT-2's bytes_to_unicode).
  const alphabet = byteLevelAlphabet();
  const shifted = [...Array(256).keys()].filter((b) => !alphabet.includes(String.fromCodePoint(b)));
  const byteOf = new Map<string, number>(alphabet.map((c) => {
    const cp = c.codePointAt(0)!;
    return [c, cp < 256 ? cp : shifted[cp - 256]!];
  }));
  const out: (Uint8Array | null)[] = new Array(size).fill(null);
  for (let id = 0; id < size; id++) {
    if (tok.isSpecial(id)) continue;
    const s = tok.idToToken(id);
    if (s === null) continue;
    const chars = [...s];
    if (chars.every((c) => byteOf.has(c))) out[id] = Uint8Array.from(chars, (c) => byteOf.get(c)!);
    else out[id] = new TextEncoder().encode(tok.decode([id]));
  }
  return out;
}

export class Utf8Guard {
  /** next[state * V + id]: the state after the token, or BAD. */
  private readonly next: Int8Array;
  private readonly masks: (Tensor | null)[] = new Array(NUM_STATES).fill(null);
  private readonly lastMasks: (Tensor | null)[] = new Array(NUM_STATES).fill(null);
  /** The most bytes any token stands for (for lower bounds on token counts). */
  readonly maxTokenBytes: number;

  constructor(
    tok: Tokenizer,
    /** The model's vocabulary size (its logits' length; may exceed the tokenizer's). */
    readonly vocabSize: number,
    readonly eos: number,
  ) {
    const bytes = tokenBytes(tok, Math.min(vocabSize, tok.vocabSize));
    this.maxTokenBytes = Math.max(1, ...bytes.map((b) => b?.length ?? 0));
    this.next = new Int8Array(NUM_STATES * vocabSize).fill(BAD);
    for (let s = 0; s < NUM_STATES; s++) {
      bytes.forEach((b, id) => {
        if (!b || b.length === 0) return;
        let st = s;
        for (const x of b) {
          st = utf8Step(st, x);
          if (st === BAD) break;
        }
        this.next[s * vocabSize + id] = st;
      });
      if (s === S.Ground && eos < vocabSize) this.next[eos] = S.Ground;
    }
    this.pruneDeadEnds();
  }

  /**
   * Forbids every token that leads into a state no token sequence can finish (a vocabulary
   * without some continuation bytes): such a token could never be followed by a valid character.
   * A state is live when some token leads from it to a live state; the character boundary is live.
   */
  private pruneDeadEnds(): void {
    const V = this.vocabSize;
    const live = new Array<boolean>(NUM_STATES).fill(false);
    live[S.Ground] = true;
    for (let changed = true; changed;) {
      changed = false;
      for (let s = 0; s < NUM_STATES; s++) {
        if (live[s]) continue;
        for (let id = 0; id < V; id++) {
          const t = this.next[s * V + id]!;
          if (t !== BAD && live[t]) {
            live[s] = true;
            changed = true;
            break;
          }
        }
      }
    }
    for (let i = 0; i < this.next.length; i++) {
      const t = this.next[i]!;
      if (t !== BAD && !live[t]) this.next[i] = BAD;
    }
  }

  /** The state after `id` (BAD when the token was not allowed). */
  advance(state: number, id: number): number {
    return this.next[state * this.vocabSize + id]!;
  }

  /** Whether the reply so far ends between characters. */
  static complete(state: number): boolean {
    return state === S.Ground;
  }

  static readonly start = S.Ground;

  /**
   * Additive mask [V] for a state: 0 where the token may come next, -inf elsewhere (kept). With
   * `last` (the reply's last allowed token) only tokens that end a character are allowed, when
   * there are any: a token left unfinished there could never be completed.
   */
  mask(state: number, o: { last?: boolean } = {}): Tensor {
    const cache = o.last ? this.lastMasks : this.masks;
    let m = cache[state];
    if (!m) {
      const V = this.vocabSize;
      const allowed = (id: number): boolean => {
        const t = this.next[state * V + id]!;
        return o.last ? t === S.Ground : t !== BAD;
      };
      let any = false;
      for (let id = 0; id < V && !any; id++) any = allowed(id);
      if (o.last && !any) return this.mask(state);
      const v = new Float32Array(V);
      for (let id = 0; id < V; id++) v[id] = allowed(id) ? 0 : -Infinity;
      m = tensor(v).keep();
      cache[state] = m;
    }
    return m;
  }

  dispose(): void {
    for (const m of [...this.masks, ...this.lastMasks]) m?.dispose();
    this.masks.fill(null);
    this.lastMasks.fill(null);
  }
}
