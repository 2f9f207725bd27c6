// Batched prefill of one loaded model's prompts (docs/serving.md 9): each prompt is still cut into
// the same chunks as alone, but the chunks of the prompts prefilling at the same time run in one
// decoder pass (prefillChunks), up to maxBatch of them: the projections and MLP see one larger
// matrix and their per-operation costs are paid once. Each chunk attends to its own context, so a
// context ends as its prefill alone leaves it. Chunks wait for the next turn of the event loop
// (after the decode batcher's step), so prompts that arrive together share passes.
import { abortError, prefillChunks, type Bagel, type KVCache } from '../model/index.js';

interface Pending {
  ctx: KVCache;
  tokens: readonly number[];
  signal: AbortSignal | undefined;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class PrefillBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  /** Passes run and chunks prefilled (their ratio is the mean number of prompts per pass). */
  readonly stats = { passes: 0, chunks: 0, maxChunks: 0 };

  /** maxBatch: chunks prefilled together at most (1: each alone). */
  constructor(private readonly model: Bagel, public maxBatch = 16) {
    checkMaxBatch(maxBatch);
  }

  setMaxBatch(n: number): void {
    checkMaxBatch(n);
    this.maxBatch = n;
  }

  /**
   * Appends `seq` to `ctx` (causal, from its next position) in chunks of `chunkTokens`, each
   * chunk in a pass shared with other prompts' chunks; rejects with an AbortError once `signal`
   * aborts (checked before each chunk).
   */
  async prefill(ctx: KVCache, seq: readonly number[], o: { chunkTokens: number; signal?: AbortSignal }): Promise<void> {
    const chunk = o.chunkTokens;
    if (!(Number.isInteger(chunk) && chunk >= 1)) throw new Error(`PrefillBatcher: chunkTokens must be an integer >= 1, got ${chunk}`);
    for (let start = 0; start < seq.length; start += chunk) {
      if (o.signal?.aborted) throw abortError();
      await new Promise<void>((resolve, reject) => {
        this.queue.push({ ctx, tokens: seq.slice(start, start + chunk), signal: o.signal, resolve, reject });
        this.schedule();
      });
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pass();
      if (this.queue.length) this.schedule();
    });
  }

  /** One pass over the first maxBatch pending chunks (cancelled ones are dropped). */
  private pass(): void {
    const live: Pending[] = [];
    while (this.queue.length && live.length < this.maxBatch) {
      const p = this.queue.shift()!;
      if (p.signal?.aborted) p.reject(abortError());
      else live.push(p);
    }
    if (!live.length) return;
    try {
      prefillChunks(this.model, live.map((p) => ({ ctx: p.ctx, tokens: p.tokens })));
    } catch (err) {
      for (const p of live) p.reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.stats.passes++;
    this.stats.chunks += live.length;
    this.stats.maxChunks = Math.max(this.stats.maxChunks, live.length);
    for (const p of live) p.resolve();
  }
}

function checkMaxBatch(n: number): void {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`maxBatch must be an integer >= 1, got ${n}`);
}
