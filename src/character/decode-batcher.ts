// Continuous batching of one loaded model's replies (docs/serving.md 9): replies join the running
// batch between two steps and leave it when done, cancelled or failed; each step advances every
// active reply by one token through one batched decoder step (decodeBatchStep). Prefill is done
// before a reply joins (its prompt head's chunks batched across requests by PrefillBatcher).
// Replies beyond maxBatch wait, in arrival order, for a free row.
import { abortError, decodeBatchStep, type Bagel } from '../model/index.js';
import type { ReplyDecoding } from './reply-decoding.js';

interface Entry {
  reply: ReplyDecoding;
  signal: AbortSignal | undefined;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class DecodeBatcher {
  private readonly active: Entry[] = [];
  private readonly waiting: Entry[] = [];
  private running = false;
  /** Steps run and rows stepped (their ratio is the mean batch size). */
  readonly stats = { steps: 0, rows: 0, maxRows: 0 };

  /** maxBatch: replies stepped together at most (1: one at a time, the batch-1 path). */
  constructor(private readonly model: Bagel, public maxBatch = 16) {
    checkMaxBatch(maxBatch);
  }

  setMaxBatch(n: number): void {
    checkMaxBatch(n);
    this.maxBatch = n;
  }

  /** Decodes a reply to its end alongside the others; rejects with an AbortError once `signal` aborts. */
  decode(reply: ReplyDecoding, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError());
    if (reply.done) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ reply, signal, resolve, reject });
      if (!this.running) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.active.length || this.waiting.length) {
        this.admit();
        if (this.active.length) this.step();
        // Between steps: cancellations, new replies and other requests' prefill chunks run.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.running = false;
    }
  }

  /** Drops cancelled replies and fills free rows from the waiting ones. */
  private admit(): void {
    for (const list of [this.active, this.waiting]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const e = list[i]!;
        if (e.signal?.aborted) {
          list.splice(i, 1);
          e.reject(abortError());
        }
      }
    }
    while (this.active.length < this.maxBatch && this.waiting.length) this.active.push(this.waiting.shift()!);
  }

  private step(): void {
    const rows = this.active.slice();
    let choices: (number | null)[];
    try {
      choices = decodeBatchStep(this.model, rows.map((e) => e.reply.seq));
    } catch (err) {
      // A failing step fails the replies in it (the others go on).
      this.active.length = 0;
      for (const e of rows) e.reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.stats.steps++;
    this.stats.rows += rows.length;
    this.stats.maxRows = Math.max(this.stats.maxRows, rows.length);
    rows.forEach((e, b) => {
      try {
        e.reply.accept(choices[b]!);
      } catch (err) {
        this.remove(e);
        e.reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (e.reply.done) {
        this.remove(e);
        e.resolve();
      }
    });
  }

  private remove(e: Entry): void {
    const i = this.active.indexOf(e);
    if (i >= 0) this.active.splice(i, 1);
  }
}

function checkMaxBatch(n: number): void {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`maxBatch must be an integer >= 1, got ${n}`);
}
