// The text tokenizer (docs/method.md 1.5), on Hugging Face's `tokenizers` (the Node binding).
//
// - `Tokenizer.fromFile` loads a `tokenizer.json` in the Hugging Face layout, as the Qwen2 / BAGEL
//   folder ships it: NFC normalizer, the Qwen2 split regex followed by a byte-level pre-tokenizer,
//   a byte-level BPE model and the `added_tokens` list. The four tokens of docs/method.md 1.5 are looked
//   up; any that is missing is appended as a special token, like the reference's
//   `add_special_tokens` (`data/data_utils.py:130-165`), and `numNewTokens` says how many.
// - `encode` never adds special tokens: every segment is wrapped by the caller
//   (`<|im_start|> text <|im_end|>`, docs/method.md 1.5). Special tokens in the text are matched whole.
// - `decode` and `StreamDecoder` are synchronous (token strings through the tokenizer's own
//   decoder); the stream only emits text once the bytes of the last character are complete.
// - `trainTinyTokenizer` trains a byte-level BPE for tiny configs, deterministically, and writes
//   it in the same layout, so a tiny model folder carries a tokenizer.json like the 7B one.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AddedToken, Tokenizer as HfTokenizer, type Decoder as HfDecoder } from 'tokenizers';
import type { Character } from './character.js';
import { DataError } from './diagnostics.js';
import { loadSampleCharacter } from './sample-character/load.js';
import { buildTask, TASKS } from './samples.js';

/** The four tokens of docs/method.md 1.5, in the reference's order. */
export const SPECIAL_TOKENS = {
  bos: '<|im_start|>',
  eos: '<|im_end|>',
  startOfImage: '<|vision_start|>',
  endOfImage: '<|vision_end|>',
} as const;
export type SpecialTokenName = keyof typeof SPECIAL_TOKENS;
export type SpecialTokenIds = Record<SpecialTokenName, number>;
const SPECIAL_NAMES = Object.keys(SPECIAL_TOKENS) as SpecialTokenName[];

/** The pre-tokenizer regex of the Qwen2 tokenizer.json. */
export const QWEN2_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const REPLACEMENT = '\uFFFD';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Structural checks the binding would otherwise report without naming the file or the field. */
function checkLayout(json: unknown, file: string): void {
  if (!isRecord(json)) throw new DataError({ file }, 'tokenizer.json must hold a JSON object');
  const model = json['model'];
  if (!isRecord(model)) throw new DataError({ file, field: 'model' }, 'missing or not an object');
  const type = model['type'];
  if (type !== undefined && typeof type !== 'string') throw new DataError({ file, field: 'model.type' }, 'must be a string');
  if (type === 'BPE' || (type === undefined && 'merges' in model)) {
    if (!isRecord(model['vocab'])) throw new DataError({ file, field: 'model.vocab' }, 'missing or not an object of token -> id');
    for (const [tok, id] of Object.entries(model['vocab'])) {
      if (!Number.isInteger(id) || (id as number) < 0) throw new DataError({ file, field: `model.vocab[${JSON.stringify(tok)}]` }, `id must be a non-negative integer, got ${JSON.stringify(id)}`);
    }
    if (!Array.isArray(model['merges'])) throw new DataError({ file, field: 'model.merges' }, 'missing or not a list');
  }
  const added = json['added_tokens'];
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new DataError({ file, field: 'added_tokens' }, 'must be a list');
    added.forEach((t, i) => {
      if (!isRecord(t)) throw new DataError({ file, record: `added_tokens[${i}]` }, 'must be an object');
      if (!Number.isInteger(t['id']) || (t['id'] as number) < 0) throw new DataError({ file, record: `added_tokens[${i}]`, field: 'id' }, 'must be a non-negative integer');
      if (typeof t['content'] !== 'string' || t['content'] === '') throw new DataError({ file, record: `added_tokens[${i}]`, field: 'content' }, 'must be a non-empty string');
    });
  }
}

export interface TokenDecodeOptions {
  /** Drop special tokens (the four of docs/method.md 1.5 and any other `special: true` added token). */
  skipSpecialTokens?: boolean;
}

/** A Hugging Face tokenizer with the four special ids of docs/method.md 1.5 resolved. */
export class Tokenizer {
  /** The file (or `<memory>` label) it was loaded from; errors name it. */
  readonly source: string;
  /** bos, eos, startOfImage, endOfImage. */
  readonly special: Readonly<SpecialTokenIds>;
  /** How many of the four were missing and appended (the reference's `num_new_tokens`; the model's
   * embeddings must grow by this many). 0 for the stock Qwen2.5 tokenizer. */
  readonly numNewTokens: number;
  private readonly hf: HfTokenizer;
  private readonly decoder: HfDecoder | null;
  private readonly specialIds: Set<number>;
  private readonly size: number;

  private constructor(hf: HfTokenizer, source: string, specialContents: Set<string>, addedContents: Set<string>) {
    this.hf = hf;
    this.source = source;
    const before = Tokenizer.maxIdPlusOne(hf);
    // Not an added token: appended, or, if the model's vocabulary has it as a plain token,
    // registered as added under that id (so it is matched whole) without growing the vocabulary.
    const missing = SPECIAL_NAMES.map((n) => SPECIAL_TOKENS[n]).filter((t) => !addedContents.has(t) || hf.tokenToId(t) === null);
    if (missing.length > 0) hf.addAddedTokens(missing.map((t) => new AddedToken(t, true, { normalized: false })));
    for (const t of missing) specialContents.add(t);
    const ids = {} as SpecialTokenIds;
    for (const n of SPECIAL_NAMES) {
      const id = hf.tokenToId(SPECIAL_TOKENS[n]);
      if (id === null) throw new DataError({ file: source }, `could not register special token ${SPECIAL_TOKENS[n]}`);
      ids[n] = id;
    }
    this.special = Object.freeze(ids);
    this.size = Tokenizer.maxIdPlusOne(hf);
    this.numNewTokens = this.size - before;
    this.specialIds = new Set([...specialContents].map((t) => hf.tokenToId(t)).filter((id): id is number => id !== null));
    for (const n of SPECIAL_NAMES) this.specialIds.add(ids[n]);
    this.decoder = hf.getDecoder();
  }

  private static maxIdPlusOne(hf: HfTokenizer): number {
    let max = -1;
    for (const id of Object.values(hf.getVocab(true))) if (id > max) max = id;
    return max + 1;
  }

  /** Loads a Hugging Face `tokenizer.json`. Errors name the file. */
  static fromFile(path: string): Tokenizer {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new DataError({ file: path }, code === 'ENOENT' ? 'tokenizer file not found' : `cannot read tokenizer file (${(e as Error).message})`);
    }
    return Tokenizer.fromJson(text, path);
  }

  /** Loads `<dir>/tokenizer.json` (a model folder). */
  static fromFolder(dir: string): Tokenizer {
    return Tokenizer.fromFile(join(dir, 'tokenizer.json'));
  }

  /** Loads tokenizer.json content; `source` names it in errors. */
  static fromJson(text: string, source = '<memory>'): Tokenizer {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new DataError({ file: source }, `not valid JSON (${(e as Error).message})`);
    }
    checkLayout(json, source);
    let hf: HfTokenizer;
    try {
      hf = HfTokenizer.fromString(text);
    } catch (e) {
      throw new DataError({ file: source }, `not a tokenizer.json the tokenizers library accepts (${(e as Error).message})`);
    }
    const specials = new Set<string>();
    const contents = new Set<string>();
    const added = (json as Record<string, unknown>)['added_tokens'];
    if (Array.isArray(added)) {
      for (const t of added as Record<string, unknown>[]) {
        contents.add(t['content'] as string);
        if (t['special'] === true) specials.add(t['content'] as string);
      }
    }
    return new Tokenizer(hf, source, specials, contents);
  }

  /** One past the largest id, added tokens included: the embedding rows the model needs. */
  get vocabSize(): number {
    return this.size;
  }
  get bos(): number {
    return this.special.bos;
  }
  get eos(): number {
    return this.special.eos;
  }
  get startOfImage(): number {
    return this.special.startOfImage;
  }
  get endOfImage(): number {
    return this.special.endOfImage;
  }

  /** Token ids of `text`; no special tokens are added (wrapping is the caller's, docs/method.md 1.5). */
  async encode(text: string): Promise<number[]> {
    const enc = await this.hf.encode(text, null, { addSpecialTokens: false });
    return enc.getIds();
  }

  /** Token strings of `text` (the model's vocabulary strings, e.g. `Ġworld`). */
  async tokens(text: string): Promise<string[]> {
    const enc = await this.hf.encode(text, null, { addSpecialTokens: false });
    return enc.getTokens();
  }

  async encodeBatch(texts: string[]): Promise<number[][]> {
    const encs = await this.hf.encodeBatch(texts, { addSpecialTokens: false });
    return encs.map((e) => e.getIds());
  }

  /** Text of `ids`, through the tokenizer's decoder (the same path as the library's own decode).
   * Incomplete UTF-8 at the end comes out as U+FFFD; use a `StreamDecoder` for streaming. */
  decode(ids: readonly number[], opts: TokenDecodeOptions = {}): string {
    const toks: string[] = [];
    for (const id of ids) {
      if (opts.skipSpecialTokens && this.specialIds.has(id)) continue;
      const t = this.hf.idToToken(id);
      if (t === null) throw new RangeError(`${this.source}: token id ${id} is not in the vocabulary (size ${this.size})`);
      toks.push(t);
    }
    return this.decoder ? this.decoder.decode(toks) : toks.join('');
  }

  /** The library's asynchronous decode; kept to check `decode` against. */
  decodeAsync(ids: readonly number[], opts: TokenDecodeOptions = {}): Promise<string> {
    return this.hf.decode([...ids], opts.skipSpecialTokens ?? false);
  }

  idToToken(id: number): string | null {
    return this.hf.idToToken(id);
  }
  tokenToId(token: string): number | null {
    return this.hf.tokenToId(token);
  }
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  streamDecoder(opts: TokenDecodeOptions = {}): StreamDecoder {
    return new StreamDecoder(this, opts);
  }

  /** Writes the tokenizer (with any appended special tokens) as tokenizer.json. */
  save(path: string): void {
    mkdirSync(dirname(path), { recursive: true });
    this.hf.save(path, true);
  }
}

/** Incremental decoding for streaming generation (the algorithm of the library's DecodeStream):
 * `push` returns the new text, or '' while the last character's UTF-8 bytes are incomplete. */
export class StreamDecoder {
  private ids: number[] = [];
  private prefix = '';
  private prefixIndex = 0;
  private readonly tok: Tokenizer;
  private readonly opts: TokenDecodeOptions;

  constructor(tok: Tokenizer, opts: TokenDecodeOptions = {}) {
    this.tok = tok;
    this.opts = opts;
  }

  push(id: number): string {
    this.ids.push(id);
    const text = this.tok.decode(this.ids, this.opts);
    if (text.length > this.prefix.length && !text.endsWith(REPLACEMENT) && text.startsWith(this.prefix)) {
      const piece = text.slice(this.prefix.length);
      const nextIndex = this.ids.length - this.prefixIndex;
      this.ids = this.ids.slice(this.prefixIndex);
      this.prefix = this.tok.decode(this.ids, this.opts);
      this.prefixIndex = nextIndex;
      return piece;
    }
    return '';
  }

  pushAll(ids: Iterable<number>): string {
    let out = '';
    for (const id of ids) out += this.push(id);
    return out;
  }

  /** Whatever is still held back (an incomplete character comes out as U+FFFD); resets. */
  flush(): string {
    const text = this.tok.decode(this.ids, this.opts);
    const rest = text.startsWith(this.prefix) ? text.slice(this.prefix.length) : text;
    this.ids = [];
    this.prefix = '';
    this.prefixIndex = 0;
    return rest;
  }
}

/** Yields the text pieces of a token stream as they become complete characters. */
export function* streamDecode(tok: Tokenizer, ids: Iterable<number>, opts: TokenDecodeOptions = {}): Generator<string> {
  const s = tok.streamDecoder(opts);
  for (const id of ids) {
    const piece = s.push(id);
    if (piece) yield piece;
  }
  const rest = s.flush();
  if (rest) yield rest;
}

// ---------------------------------------------------------------------------------------------
// Training a tiny byte-level BPE.

/** GPT-2's byte -> printable character table, in its order: ids 0..255 of every byte-level BPE
 * vocabulary of this layout (Qwen2 included: `!` is 0, `Ġ` (space) is 220). */
export function byteLevelAlphabet(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  return cs.map((c) => String.fromCodePoint(c));
}

/** tokenizer.json in the Qwen2 layout for a byte-level BPE (vocab: the 256 byte symbols, then one
 * per merge), with `added` registered as special added tokens after the vocabulary. */
export function byteLevelBpeJson(vocab: readonly string[], merges: readonly [string, string][], added: readonly string[]): string {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const vocabObj: Record<string, number> = {};
  vocab.forEach((t, i) => (vocabObj[t] = i));
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map((content, i) => ({
      id: vocab.length + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_SPLIT_REGEX }, behavior: 'Isolated', invert: false },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabObj,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return JSON.stringify(json, null, 2) + '\n';
}

export interface TrainTokenizerOptions {
  /** Total vocabulary including the 256 byte symbols and the four special tokens. */
  vocabSize: number;
  /** A pair seen fewer times than this is never merged (default 2); training may then stop below
   * `vocabSize`. */
  minFrequency?: number;
}

export interface TrainedTokenizer {
  /** The tokenizer.json content (Qwen2 layout); byte-identical for the same texts and options. */
  json: string;
  /** One past the largest id (may be below the requested size when the texts run out of pairs). */
  vocabSize: number;
  numMerges: number;
  /** Loads `json` through the library. */
  load(): Tokenizer;
  /** Writes `json` to `path` (parents created). */
  save(path: string): void;
}

const PAIR_SHIFT = 2 ** 21;

/** Trains a byte-level BPE on `texts` with the Qwen2 normalizer and pre-tokenizer. Deterministic:
 * the most frequent pair is merged first, ties going to the pair of smaller ids (the library's
 * trainer rule); the four special tokens are registered after the vocabulary. */
export function trainTinyTokenizer(texts: readonly string[], opts: TrainTokenizerOptions): TrainedTokenizer {
  const alphabet = byteLevelAlphabet();
  const specials = SPECIAL_NAMES.map((n) => SPECIAL_TOKENS[n]);
  const minVocab = alphabet.length + specials.length;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < minVocab) throw new RangeError(`vocabSize must be an integer >= ${minVocab} (256 bytes + 4 special tokens), got ${opts.vocabSize}`);
  if (opts.vocabSize >= PAIR_SHIFT) throw new RangeError(`vocabSize ${opts.vocabSize} is too large for the tiny trainer`);
  const counts = preTokenizedWords(texts, alphabet, specials);
  const wordList = [...counts.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const symbols = alphabet.slice();
  const symbolId = new Map(symbols.map((s, i) => [s, i]));
  const words: number[][] = wordList.map((w) => [...w].map((ch) => {
    const id = symbolId.get(ch);
    if (id === undefined) throw new Error(`pre-tokenizer produced a non byte-level character ${JSON.stringify(ch)}`);
    return id;
  }));
  const freqs = wordList.map((w) => counts.get(w)!);
  const pairs = new PairTable();
  words.forEach((w, wi) => pairs.addWord(w, freqs[wi]!, wi));
  const merges: [string, string][] = [];
  const targetSymbols = opts.vocabSize - specials.length;
  while (symbols.length < targetSymbols) {
    const best = pairs.best();
    if (!best || best.count < (opts.minFrequency ?? 2)) break;
    const { a, b } = best;
    const merged = symbols[a]! + symbols[b]!;
    let id = symbolId.get(merged);
    if (id === undefined) {
      id = symbols.length;
      symbols.push(merged);
      symbolId.set(merged, id);
    }
    merges.push([symbols[a]!, symbols[b]!]);
    for (const wi of pairs.wordsOf(best.key)) {
      pairs.subWord(words[wi]!, freqs[wi]!);
      words[wi] = mergePair(words[wi]!, a, b, id);
      pairs.addWord(words[wi]!, freqs[wi]!, wi);
    }
    pairs.drop(best.key);
  }
  return trainedTokenizer(byteLevelBpeJson(symbols, merges, specials), symbols.length + specials.length, merges.length);
}

/** Word counts of `texts`, pre-tokenized with the very normalizer and pre-tokenizer that will
 * encode; special tokens split the text and are not counted. */
function preTokenizedWords(texts: readonly string[], alphabet: readonly string[], specials: readonly string[]): Map<string, number> {
  const skeleton = HfTokenizer.fromString(byteLevelBpeJson(alphabet, [], specials));
  const normalizer = skeleton.getNormalizer();
  const pre = skeleton.getPreTokenizer();
  if (!normalizer || !pre) throw new Error('tokenizers: the skeleton tokenizer lost its normalizer or pre-tokenizer');
  const counts = new Map<string, number>();
  const specialSplit = new RegExp(specials.map((s) => s.replace(/[|]/g, '\\|')).join('|'), 'g');
  for (const text of texts) {
    for (const part of text.split(specialSplit)) {
      if (part === '') continue;
      for (const [word] of pre.preTokenizeString(normalizer.normalizeString(part))) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  return counts;
}

/** Adjacent symbol pairs: their total frequency and the words they occur in (keys a * PAIR_SHIFT + b). */
class PairTable {
  private readonly count = new Map<number, number>();
  private readonly words = new Map<number, Set<number>>();

  addWord(w: readonly number[], f: number, wi: number): void {
    for (let i = 0; i + 1 < w.length; i++) {
      const k = w[i]! * PAIR_SHIFT + w[i + 1]!;
      this.count.set(k, (this.count.get(k) ?? 0) + f);
      let s = this.words.get(k);
      if (!s) this.words.set(k, (s = new Set()));
      s.add(wi);
    }
  }

  /** Takes a word's pairs out of the counts (its word sets are kept: a stale entry re-merges nothing). */
  subWord(w: readonly number[], f: number): void {
    for (let i = 0; i + 1 < w.length; i++) {
      const k = w[i]! * PAIR_SHIFT + w[i + 1]!;
      const c = (this.count.get(k) ?? 0) - f;
      if (c > 0) this.count.set(k, c);
      else this.count.delete(k);
    }
  }

  /** The most frequent pair, ties to the smaller key; undefined when none is left. */
  best(): { key: number; a: number; b: number; count: number } | undefined {
    let bestKey = -1;
    let bestCount = 0;
    for (const [k, c] of this.count) if (c > bestCount || (c === bestCount && k < bestKey)) [bestKey, bestCount] = [k, c];
    if (bestKey < 0) return undefined;
    return { key: bestKey, a: Math.floor(bestKey / PAIR_SHIFT), b: bestKey % PAIR_SHIFT, count: bestCount };
  }

  /** The words a pair occurs in, in index order. */
  wordsOf(key: number): number[] {
    return [...(this.words.get(key) ?? [])].sort((x, y) => x - y);
  }

  drop(key: number): void {
    this.count.delete(key);
    this.words.delete(key);
  }
}

/** `w` with every non-overlapping (a, b), left to right, replaced by `id`. */
function mergePair(w: readonly number[], a: number, b: number, id: number): number[] {
  const nw: number[] = [];
  for (let i = 0; i < w.length; ) {
    if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
      nw.push(id);
      i += 2;
    } else {
      nw.push(w[i]!);
      i += 1;
    }
  }
  return nw;
}

function trainedTokenizer(json: string, vocabSize: number, numMerges: number): TrainedTokenizer {
  return {
    json,
    vocabSize,
    numMerges,
    load: () => Tokenizer.fromJson(json, '<trained tokenizer>'),
    save: (path: string) => {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, json);
    },
  };
}

/** Every text of a character the tiny tokenizer should know: description, opening, profile,
 * style, dialogues and annotated scenes (with plans and generation instructions), image captions,
 * knowledge QA, VQA, MCQs, probes and T2I prompts. */
export function characterTexts(c: Character): string[] {
  const out: string[] = [c.description, c.opening, c.profile, c.style, c.visualDescription];
  const scenes = [...c.scenes, ...c.dialogue, ...c.tests.dialogue, ...c.tests.heldOutScenes];
  for (const s of scenes) out.push(s.user, s.reply, s.thinkingProcess ?? '', s.generationInstruction ?? '');
  for (const im of [...c.referenceImages, ...c.tests.heldOutImages]) out.push(im.t2iInstruction ?? '');
  for (const q of c.knowledgeQa) out.push(q.question, q.answer, ...q.evidence, ...q.reasoningSteps);
  for (const v of c.vqa) out.push(v.question, v.answer);
  for (const m of [...c.vqaMcq, ...c.tests.knowledgeMcq]) out.push(m.question, m.options.A, m.options.B, m.options.C, m.options.D);
  out.push(...c.tests.memorization, ...c.tests.personality);
  for (const p of c.t2iPrompts) out.push(p.text, ...p.checklist.map((q) => q.question));
  return out.filter((t) => t !== '');
}

/** The text items of every SFT sample of `c` (docs/method.md 2.1 templates filled in): the text the
 * tiny model actually trains on, so the template words get merges of their own. */
export function characterSampleTexts(c: Character): string[] {
  const out: string[] = [];
  for (const task of TASKS) for (const plan of buildTask(c, task)) for (const item of plan.items) if (item.kind === 'text') out.push(item.text);
  return out;
}

/** Default vocabulary of the tiny configs' tokenizer: the sample character's texts fill it exactly
 * (at 2048 they run out of pairs seen twice near 2011). */
export const TINY_VOCAB_SIZE = 1024;

/** The tiny tokenizer trained on the sample character (Tessel): its texts (`characterTexts`) and
 * its SFT samples (`characterSampleTexts`). With few texts, merges stop once no pair is seen
 * `minFrequency` times, so the vocabulary can come out below the requested size. */
export function trainSampleTokenizer(opts: { vocabSize?: number; minFrequency?: number; root?: string } = {}): TrainedTokenizer {
  const { character } = opts.root === undefined ? loadSampleCharacter() : loadSampleCharacter(opts.root);
  const train: TrainTokenizerOptions = { vocabSize: opts.vocabSize ?? TINY_VOCAB_SIZE };
  if (opts.minFrequency !== undefined) train.minFrequency = opts.minFrequency;
  return trainTinyTokenizer([...characterTexts(character), ...characterSampleTexts(character)], train);
}
