// The ChatEngine that serves customized characters: each character with a character model
// folder under `<modelsDir>/<character id>/` (written by training or `unicharacter customize`)
// is answered by that model, running in a worker thread.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CHARACTER_MODEL_FILES, DEFAULT_PREFIX_CACHE_BYTES, type CharacterModelManifest, type ChatTurn, type SamplingOptions } from '../character/index.js';
import { ApiError } from './errors.js';
import type { ChatEngine, ChatMessage, ChatOptions, ChatRequest, ChatResult, EngineModel, ImageRequestOptions, ImageRequest, GeneratedImage } from './engine.js';
import type { WorkerReply, WorkerRequest } from './model-worker.js';
import type { WorkerMemory } from './model-memory.js';

interface Pending {
  onText?: (piece: string) => void;
  onReasoning?: (piece: string) => void;
  onAccepted?: (p: { promptTokens: number; droppedTurns: number }) => void;
  resolve: (r: Extract<WorkerReply, { type: 'done' | 'memory' }>) => void;
  reject: (e: Error) => void;
}

/** A worker error as the server reports it: refusals of the request are 400s naming the field. */
function workerError(m: Extract<WorkerReply, { type: 'error' }>): Error {
  if (m.refused) return new ApiError(400, m.message, 'invalid_request_error', m.refused.param, m.refused.code);
  const e = new Error(m.message);
  if (m.aborted) e.name = 'AbortError';
  return e;
}

/** Request messages as the character runtime's turns (docs/serving.md 1). */
function turnsOf(messages: ChatMessage[]): ChatTurn[] {
  return messages.map((m) => ({
    role: m.role,
    ...(m.name ? { name: m.name } : {}),
    content: m.content.map((p) => (p.type === 'text' ? { text: p.text } : { image: p.bytes })),
  }));
}

/** The sampling fields of a request, for the worker (docs/serving.md 3). */
function samplingOf(r: ChatRequest): SamplingOptions {
  const o: SamplingOptions = {};
  if (r.maxTokens !== undefined) o.maxTokens = r.maxTokens;
  if (r.temperature !== undefined) o.temperature = r.temperature;
  if (r.topP !== undefined) o.topP = r.topP;
  if (r.topK !== undefined) o.topK = r.topK;
  if (r.seed !== undefined) o.seed = r.seed;
  if (r.stop !== undefined) o.stop = r.stop;
  if (r.frequencyPenalty !== undefined) o.frequencyPenalty = r.frequencyPenalty;
  if (r.presencePenalty !== undefined) o.presencePenalty = r.presencePenalty;
  if (r.repetitionPenalty !== undefined) o.repetitionPenalty = r.repetitionPenalty;
  return o;
}

/** Replies decoded together by default (docs/serving.md 9). */
export const DEFAULT_MAX_BATCH = 16;

export class ModelChatEngine implements ChatEngine {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** Bytes one request's context may take (docs/serving.md 2); default half the machine's memory. */
  readonly requestMemoryBytes: number;

  /**
   * Replies of one model decoded together at most (continuous batching, docs/serving.md 9);
   * 1 decodes one request at a time. Also the requests the server lets generate at once.
   */
  readonly maxBatch: number;

  /** KV bytes of recent prompts each loaded model keeps for reuse (the prompt prefix cache, docs/serving.md 9). */
  readonly prefixCacheBytes: number;

  constructor(
    readonly modelsDir: string,
    o: { requestMemoryBytes?: number; maxBatch?: number; prefixCacheBytes?: number } = {},
  ) {
    this.prefixCacheBytes = o.prefixCacheBytes ?? DEFAULT_PREFIX_CACHE_BYTES;
    if (!(Number.isInteger(this.prefixCacheBytes) && this.prefixCacheBytes >= 0)) throw new Error(`prefixCacheBytes must be an integer >= 0, got ${String(o.prefixCacheBytes)}`);
    this.requestMemoryBytes = o.requestMemoryBytes ?? Math.floor(totalmem() / 2);
    this.maxBatch = o.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!(Number.isInteger(this.maxBatch) && this.maxBatch >= 1)) throw new Error(`maxBatch must be an integer >= 1, got ${String(o.maxBatch)}`);
  }

  /** Requests this engine serves at once: the server's queue lets this many generate. */
  get concurrency(): number {
    return this.maxBatch;
  }

  /** The folder of a character's model, or null when it has none. */
  modelDirOf(characterId: string): string | null {
    const dir = join(this.modelsDir, characterId);
    return existsSync(join(dir, CHARACTER_MODEL_FILES.manifest)) ? dir : null;
  }

  models(): EngineModel[] {
    if (!existsSync(this.modelsDir)) return [];
    return readdirSync(this.modelsDir)
      .filter((name) => this.modelDirOf(name) !== null)
      .sort()
      .map((id) => ({ id, ready: true }));
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./model-worker.js', import.meta.url));
    w.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === 'text') p.onText?.(m.piece);
      else if (m.type === 'reasoning') p.onReasoning?.(m.piece);
      else if (m.type === 'accepted') p.onAccepted?.(m);
      else {
        this.pending.delete(m.id);
        if (m.type === 'done' || m.type === 'memory') p.resolve(m);
        else p.reject(workerError(m));
      }
    });
    w.on('error', (e) => this.failAll(e));
    w.on('exit', (code) => {
      this.worker = null;
      this.failAll(new Error(`the model worker exited (code ${code})`));
    });
    this.worker = w;
    return w;
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private run(
    req: Exclude<WorkerRequest, { type: 'cancel' }>,
    signal: AbortSignal,
    onText?: (piece: string) => void,
    onAccepted?: (p: { promptTokens: number; droppedTurns: number }) => void,
    onReasoning?: (piece: string) => void,
  ): Promise<Extract<WorkerReply, { type: 'done' }>> {
    return this.send(req, signal, onText, onAccepted, onReasoning) as Promise<Extract<WorkerReply, { type: 'done' }>>;
  }

  private send(
    req: Exclude<WorkerRequest, { type: 'cancel' }>,
    signal: AbortSignal,
    onText?: (piece: string) => void,
    onAccepted?: (p: { promptTokens: number; droppedTurns: number }) => void,
    onReasoning?: (piece: string) => void,
  ): Promise<Extract<WorkerReply, { type: 'done' | 'memory' }>> {
    const w = this.start();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => w.postMessage({ type: 'cancel', id: req.id } satisfies WorkerRequest);
      signal.addEventListener('abort', onAbort, { once: true });
      const done = <T>(f: (v: T) => void) => (v: T): void => {
        signal.removeEventListener('abort', onAbort);
        f(v);
      };
      this.pending.set(req.id, { onText, onAccepted, onReasoning, resolve: done(resolve), reject: done(reject) });
      w.postMessage(req);
    });
  }

  private requireModel(characterId: string): string {
    const dir = this.modelDirOf(characterId);
    if (!dir) {
      throw new ApiError(409, `character '${characterId}' has no customized model yet: train one (unicharacter customize) before chatting`, 'invalid_request_error', 'model', 'model_not_ready');
    }
    return dir;
  }

  async chat(request: ChatRequest, opts: ChatOptions): Promise<ChatResult> {
    const modelDir = this.requireModel(request.character.id);
    const r = await this.run(
      {
        type: 'chat', id: this.nextId++, modelDir, turns: turnsOf(request.messages), withImage: request.modalities.includes('image'), sampling: samplingOf(request), memoryBytes: this.requestMemoryBytes,
        maxBatch: this.maxBatch, prefixCacheBytes: this.prefixCacheBytes, ...(request.thinking ? { thinking: true } : {}),
      },
      opts.signal,
      opts.onToken,
      opts.onAccepted && ((p) => opts.onAccepted!({ promptTokens: p.promptTokens, droppedMessages: p.droppedTurns })),
      opts.onReasoning,
    );
    const images: GeneratedImage[] = r.images.map((bytes) => ({ bytes, mime: 'image/png', ...(r.plan ? { revisedPrompt: r.plan.imagePrompt } : {}) }));
    const reasoning = r.plan && { text: r.plan.text, thinkingProcess: r.plan.thinkingProcess, generationInstruction: r.plan.generationInstruction, missing: r.plan.missing };
    return { text: r.text, images, usage: { promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: r.completionTokens, droppedMessages: r.droppedTurns }, finishReason: r.finishReason, ...(reasoning ? { reasoning } : {}) };
  }

  async generateImage(request: ImageRequest, opts: ImageRequestOptions): Promise<{ images: GeneratedImage[] }> {
    if (!request.character) {
      throw new ApiError(400, "image generation needs a character: pass its id as 'model'", 'invalid_request_error', 'model', null);
    }
    const modelDir = this.requireModel(request.character.id);
    // The model draws one size, the one it was trained on (docs/serving.md 3).
    const side = (JSON.parse(readFileSync(join(modelDir, CHARACTER_MODEL_FILES.manifest), 'utf8')) as CharacterModelManifest).imageSize;
    if (request.size && (request.size.width !== side || request.size.height !== side)) {
      throw new ApiError(400, `size: this model draws ${side}x${side} images only (or "auto")`, 'invalid_request_error', 'size', 'unsupported_size');
    }
    const r = await this.run({ type: 'image', id: this.nextId++, modelDir, prompt: request.prompt, n: request.n, ...(request.seed !== undefined ? { seed: request.seed } : {}) }, opts.signal);
    return { images: r.images.map((bytes) => ({ bytes, mime: 'image/png' })) };
  }

  /** What the worker's loaded characters and shared bases hold (docs/serving.md 10); empty before any model is loaded. */
  async memory(): Promise<WorkerMemory> {
    if (!this.worker) return { characters: [], bases: [] };
    const r = await this.send({ type: 'memory', id: this.nextId++ }, new AbortController().signal);
    return (r as Extract<WorkerReply, { type: 'memory' }>).memory;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
