// The prompt prefix cache of one character model (docs/serving.md 9): the KV rows of recently
// prefilled prompts, most recently used last, bounded in bytes. A new prompt reuses the longest
// cached prefix it shares with one of them and prefills only the rest. Every prompt is prefilled
// in blocks of `blockTokens` from its first token, and a prefix is reused only up to a block
// boundary (or whole, for the very same prompt): the rows after it are then computed from the
// same rows by the same chunks as without the cache, so a reply is the same bit for bit.
import { newContext, prefillTokens, type Bagel, type KVCache } from '../model/index.js';
import type { PrefillBatcher } from './prefill-batcher.js';

/** Bytes of KV rows a character model keeps for prompt prefixes by default (docs/serving.md 9). */
export const DEFAULT_PREFIX_CACHE_BYTES = 32 * 2 ** 20;
/** Tokens per prefill chunk of a prompt's leading text, and the granularity of reuse. */
export const PREFIX_BLOCK_TOKENS = 64;

interface Entry {
  /** The prompt's leading text tokens, markers included, as prefilled from position 0. */
  seq: number[];
  kv: KVCache;
  bytes: number;
}

export interface PrefixPrefill {
  ctx: KVCache;
  /** Leading tokens taken from the cache (OpenAI's usage.prompt_tokens_details.cached_tokens). */
  cachedTokens: number;
}

export class PrefixCache {
  private readonly entries: Entry[] = [];
  private held = 0;
  /** Prefills through the cache, those that reused a prefix, and the tokens reused. */
  readonly stats = { prefills: 0, hits: 0, cachedTokens: 0, evictions: 0 };

  /** maxBytes: KV bytes kept at most (0: nothing kept); blockTokens: the prefill chunk and reuse granularity. */
  constructor(public maxBytes = DEFAULT_PREFIX_CACHE_BYTES, readonly blockTokens = PREFIX_BLOCK_TOKENS) {
    checkBytes(maxBytes);
    if (!(Number.isInteger(blockTokens) && blockTokens >= 1)) throw new Error(`prefix cache: blockTokens must be an integer >= 1, got ${blockTokens}`);
  }

  /** Bytes of KV buffers held now (each entry's whole buffer capacity). */
  get bytes(): number {
    return this.held;
  }

  /** Prompts held, least recently used first. */
  get size(): number {
    return this.entries.length;
  }

  /** Changes the bound, evicting the least recently used prompts beyond it. */
  setMaxBytes(n: number): void {
    checkBytes(n);
    this.maxBytes = n;
    this.evictTo(n);
  }

  /**
   * A fresh context holding `seq` (a prompt's leading text tokens, markers included): the longest
   * reusable cached prefix forked, the rest prefilled in blocks (through `batcher`, when given,
   * in passes shared with other prompts' blocks: the same rows); the prompt is then kept.
   */
  async prefill(model: Bagel, seq: readonly number[], signal?: AbortSignal, batcher?: PrefillBatcher): Promise<PrefixPrefill> {
    this.stats.prefills++;
    const hit = this.longest(seq);
    const ctx = hit ? hit.entry.kv.forkPrefix(hit.tokens) : newContext(model);
    ctx.nextPosition = ctx.length;
    try {
      const o = { chunkTokens: this.blockTokens, ...(signal ? { signal } : {}) };
      if (batcher) await batcher.prefill(ctx, seq.slice(ctx.length), o);
      else await prefillTokens(model, ctx, seq.slice(ctx.length), o);
    } catch (e) {
      ctx.dispose();
      throw e;
    }
    if (hit) {
      this.stats.hits++;
      this.stats.cachedTokens += hit.tokens;
    }
    if (hit?.tokens !== seq.length) this.store([...seq], ctx);
    return { ctx, cachedTokens: hit?.tokens ?? 0 };
  }

  /**
   * The entry sharing the longest reusable prefix with `seq` and that prefix's length: whole
   * blocks of their common prefix, or all of `seq` when the entry is the same prompt. Marks it
   * most recently used.
   */
  private longest(seq: readonly number[]): { entry: Entry; tokens: number } | null {
    let best: { entry: Entry; tokens: number } | null = null;
    for (const entry of this.entries) {
      const common = commonPrefix(entry.seq, seq);
      const same = common === seq.length && common === entry.seq.length;
      const tokens = same ? common : common - (common % this.blockTokens);
      if (tokens > 0 && tokens > (best?.tokens ?? 0)) best = { entry, tokens };
    }
    if (best) this.touch(best.entry);
    return best;
  }

  /** Keeps a fork of `ctx` (it holds exactly `seq`) as the most recently used entry, if it fits the bound. */
  private store(seq: number[], ctx: KVCache): void {
    const kv = ctx.forkPrefix(ctx.length);
    const bytes = kv.bytes;
    if (bytes > this.maxBytes) {
      kv.dispose();
      return;
    }
    this.evictTo(this.maxBytes - bytes);
    this.entries.push({ seq, kv, bytes });
    this.held += bytes;
  }

  private touch(entry: Entry): void {
    this.entries.splice(this.entries.indexOf(entry), 1);
    this.entries.push(entry);
  }

  private evictTo(limit: number): void {
    while (this.held > limit && this.entries.length) {
      const e = this.entries.shift()!;
      e.kv.dispose();
      this.held -= e.bytes;
      this.stats.evictions++;
    }
  }

  /** Frees every entry. */
  clear(): void {
    this.evictTo(-1);
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function checkBytes(n: number): void {
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`prefix cache: maxBytes must be an integer >= 0, got ${n}`);
}
