// CLIP's byte-level BPE tokenizer, loaded from the Hugging Face folder layout (vocab.json +
// merges.txt), following OpenAI's simple_tokenizer.py / transformers' CLIPTokenizer: clean the
// text (HTML entities, runs of whitespace), lower-case, split with the CLIP regex, map bytes to
// unicode, merge by rank with `</w>` marking the end of a word, then wrap in
// <|startoftext|> ... <|endoftext|> (49406 / 49407 in the real vocabulary).
// Difference: OpenAI's cleaner runs ftfy.fix_text first; we do not (it only repairs mojibake).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, type Tensor } from '../../torch/index.js';

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;
export const BOS_TOKEN = '<|startoftext|>';
export const EOS_TOKEN = '<|endoftext|>';

/** GPT-2's reversible byte -> printable unicode character map. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const map: string[] = new Array(256);
  for (const b of bs) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCharCode(256 + n++);
  return map;
}

function unescapeHtml(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, body: string) => {
    if (body[0] === '#') {
      const cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(cp) && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return named[body.toLowerCase()] ?? m;
  });
}

/** basic_clean + whitespace_clean + lower(), as CLIP does before splitting. */
export function cleanText(text: string): string {
  return unescapeHtml(unescapeHtml(text)).trim().replace(/\s+/g, ' ').trim().toLowerCase();
}

export class ClipTokenizer {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  private readonly byteMap = bytesToUnicode();
  readonly bosId: number;
  readonly eosId: number;

  constructor(readonly vocab: ReadonlyMap<string, number>, merges: readonly [string, string][]) {
    merges.forEach(([a, b], i) => this.ranks.set(`${a} ${b}`, i));
    const id = (tok: string): number => {
      const v = vocab.get(tok);
      if (v === undefined) throw new Error(`CLIP tokenizer: vocabulary has no '${tok}'`);
      return v;
    };
    this.bosId = id(BOS_TOKEN);
    this.eosId = id(EOS_TOKEN);
  }

  /**
   * Reads vocab.json and merges.txt. As CLIPTokenizer, the first line of merges.txt (a version
   * header) is skipped and at most 49152 - 256 - 2 merges are used.
   */
  static load(dir: string): ClipTokenizer {
    const vocabJson = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
    const lines = readFileSync(join(dir, 'merges.txt'), 'utf8').trim().split('\n').slice(1, 49152 - 256 - 2 + 1);
    const merges = lines.map((l, i) => {
      const parts = l.trim().split(/\s+/);
      if (parts.length !== 2) throw new Error(`${join(dir, 'merges.txt')}: line ${i + 2} is not 'a b': '${l}'`);
      return parts as [string, string];
    });
    return new ClipTokenizer(new Map(Object.entries(vocabJson)), merges);
  }

  /** BPE of one pre-token (already byte-mapped): the merged symbols. */
  private bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    if (token === BOS_TOKEN || token === EOS_TOKEN) return [token];
    const chars = [...token];
    let word = [...chars.slice(0, -1), chars[chars.length - 1]! + '</w>'];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best]!;
      const second = word[best + 1]!;
      // Merge every occurrence of the pair, left to right (as the reference's while loop).
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          next.push(first + second);
          i++;
        } else next.push(word[i]!);
      }
      word = next;
    }
    this.cache.set(token, word);
    return word;
  }

  /** Token ids of a text without the bos/eos wrapper. */
  encodeText(text: string): number[] {
    const out: number[] = [];
    for (const m of cleanText(text).matchAll(PATTERN)) {
      const mapped = [...new TextEncoder().encode(m[0])].map((b) => this.byteMap[b]!).join('');
      const pieces = m[0] === BOS_TOKEN || m[0] === EOS_TOKEN ? [m[0]] : this.bpe(mapped);
      for (const p of pieces) {
        const id = this.vocab.get(p);
        if (id === undefined) throw new Error(`CLIP tokenizer: no id for BPE symbol '${p}'`);
        out.push(id);
      }
    }
    return out;
  }

  /** [bos, ...text, eos], truncated to maxLength keeping the eos (CLIPTokenizer with truncation). */
  encode(text: string, maxLength = 77): number[] {
    const body = this.encodeText(text).slice(0, Math.max(0, maxLength - 2));
    return [this.bosId, ...body, this.eosId];
  }

  /**
   * A batch as int64 ids [B, T], T the longest sequence, padded with eos (the pad token of the
   * published tokenizer). Padding follows the EOS, so under the causal mask it changes nothing.
   */
  encodeBatch(texts: readonly string[], maxLength = 77): Tensor {
    const seqs = texts.map((t) => this.encode(t, maxLength));
    const T = Math.max(...seqs.map((s) => s.length));
    const flat = new BigInt64Array(seqs.length * T).fill(BigInt(this.eosId));
    seqs.forEach((s, i) => s.forEach((id, j) => { flat[i * T + j] = BigInt(id); }));
    return tensor(flat, { shape: [seqs.length, T] });
  }
}
