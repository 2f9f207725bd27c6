// The seam between serving and the model. model-engine.ts implements `ChatEngine` over the
// character runtime (src/character); the server only validates, queues, persists and formats. The server never builds prompts: it
// hands the engine the character and the conversation, and the engine applies the templates
// (docs/method.md 2.5) with its own tokenizer.
//
// Contract for implementers:
// - `chat` and `generateImage` must not block the event loop (run the model in a worker thread
//   or through asynchronous native calls), so other requests, health checks and cancellations
//   keep flowing while a generation runs (docs/architecture.md "Scheduling").
// - When `signal` aborts, stop as soon as possible and reject with `signal.reason`.
// - `onToken` is called with each decoded text fragment, in order; the concatenation of all
//   fragments equals the returned `text`.
import type { Character } from '../data/index.js';
import type { SamplingOptions } from '../character/index.js';
import { ApiError } from './errors.js';
import type { WorkerMemory } from './model-memory.js';

export type Modality = 'text' | 'image';

export type ContentPart = { type: 'text'; text: string } | { type: 'image'; bytes: Uint8Array; mime: string; detail?: 'auto' | 'low' | 'high' };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  /** The speaker's name, shown as the turn's label (docs/serving.md 1). */
  name?: string;
  content: ContentPart[];
}

/** A chat request as the engine receives it; its sampling fields are the character runtime's. */
export interface ChatRequest extends SamplingOptions {
  /** The model named in the request: each character is a model (docs/ecosystem.md 4.1). */
  character: Character;
  messages: ChatMessage[];
  /** Which outputs the client accepts; `image` allows (does not force) an image in the reply. */
  modalities: Modality[];
  /** Thinking mode (docs/serving.md 4): plan the reply's image before drawing it. Only with `image`. */
  thinking?: boolean;
}

/** The plan of a reply's image in thinking mode (docs/method.md 4.3 step 2). */
export interface ReplyReasoning {
  /** What the model wrote for the plan (`<think>...</think>` and `<gen>...</gen>`). */
  text: string;
  thinkingProcess: string;
  generationInstruction: string;
  /** Tags without a complete pair in the plan (their part is empty). */
  missing: ('think' | 'gen')[];
}

export interface Usage {
  promptTokens: number;
  /** Leading prompt tokens whose KV rows came from the model's prompt prefix cache (docs/serving.md 9). */
  cachedTokens?: number;
  completionTokens: number;
  /** Messages cut from the oldest to fit the model's context (docs/serving.md 2). */
  droppedMessages?: number;
}

export interface GeneratedImage {
  /** Encoded image (PNG unless `mime` says otherwise). */
  bytes: Uint8Array;
  mime: string;
  revisedPrompt?: string;
}

export interface ChatResult {
  text: string;
  images?: GeneratedImage[];
  usage: Usage;
  finishReason?: 'stop' | 'length';
  /** Thinking mode: the image's plan, never part of `text`. */
  reasoning?: ReplyReasoning;
}

export interface ChatOptions {
  signal: AbortSignal;
  onToken?: (fragment: string) => void;
  /** Fragments of the image's plan in thinking mode, in order, after the reply's tokens. */
  onReasoning?: (fragment: string) => void;
  /** Called at most once, synchronously, when the prompt has been measured and fits, before
   * any model work and before the first onToken (docs/serving.md 2). A refused prompt rejects
   * instead, without calling it. */
  onAccepted?: (prompt: { promptTokens: number; droppedMessages: number }) => void;
}

export interface ImageRequest {
  prompt: string;
  /** Present when the request named a character: the image is of that character. */
  character?: Character;
  n: number;
  /** Absent: the model's own size ("auto"). An engine that cannot make this size refuses it. */
  size?: { width: number; height: number };
  seed?: number;
}

export interface ImageRequestOptions {
  signal: AbortSignal;
}

/** A base model the engine has loaded (e.g. `bagel-tiny`); characters are served on top of it. */
export interface EngineModel {
  id: string;
  ready: boolean;
}

export interface ChatEngine {
  models(): EngineModel[] | Promise<EngineModel[]>;
  chat(request: ChatRequest, opts: ChatOptions): Promise<ChatResult>;
  generateImage(request: ImageRequest, opts: ImageRequestOptions): Promise<{ images: GeneratedImage[] }>;
  /** What the loaded models hold in memory, per character and per shared base (docs/serving.md 10). */
  memory?(): Promise<WorkerMemory>;
  /** Requests it serves well at once (a batching engine: its batch size); the server's default concurrency. */
  readonly concurrency?: number;
  /** Frees the model; called once when the server closes. */
  close?(): void | Promise<void>;
}

export class QueueFullError extends ApiError {
  constructor(capacity: number) {
    super(429, `the server is busy: ${capacity} requests are already waiting; retry later`, 'rate_limit_error', null, 'rate_limit_exceeded');
    this.name = 'QueueFullError';
  }
}

/** Why a request stopped early: its client went away. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGoneError';
  }
}

export interface Lease {
  release(): void;
}

interface Waiter {
  resolve: (lease: Lease) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/**
 * A bounded FIFO in front of the engine. `concurrency` requests run at once (1: one loaded model
 * generating at a time); at most `capacity` more wait; the next one is refused at once with
 * 429 (`QueueFullError`) instead of piling up. A waiter whose signal aborts (its client
 * disconnected) leaves the queue without ever reaching the engine.
 */
export class RequestQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    readonly capacity: number,
    readonly concurrency = 1,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 0)) throw new Error(`queue capacity must be an integer >= 0, got ${capacity}`);
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error(`queue concurrency must be an integer >= 1, got ${concurrency}`);
  }

  get stats(): { running: number; waiting: number; capacity: number; concurrency: number } {
    return { running: this.running, waiting: this.waiting.length, capacity: this.capacity, concurrency: this.concurrency };
  }

  /** Resolves with a lease when it is this request's turn; rejects at once when full. */
  acquire(signal: AbortSignal): Promise<Lease> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve(this.lease());
    }
    if (this.waiting.length >= this.capacity) return Promise.reject(new QueueFullError(this.capacity));
    return new Promise<Lease>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
      this.waiting.push(w);
    });
  }

  /** acquire → fn → release, whatever fn does. */
  async run<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const lease = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      lease.release();
    }
  }

  private lease(): Lease {
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        this.running--;
        this.next();
      },
    };
  }

  private next(): void {
    while (this.running < this.concurrency && this.waiting.length) {
      const w = this.waiting.shift()!;
      w.signal.removeEventListener('abort', w.onAbort);
      this.running++;
      w.resolve(this.lease());
    }
  }
}
