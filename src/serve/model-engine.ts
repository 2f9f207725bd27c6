// The ChatEngine that serves customized characters: each character with a character model
// folder under `<modelsDir>/<character id>/` (written by training or `unicharacter customize`)
// is answered by that model, running in a worker thread.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CHARACTER_MODEL_FILES } from '../character/index.js';
import { ApiError } from './errors.js';
import type { ChatEngine, ChatOptions, ChatRequest, ChatResult, EngineModel, ImageOptions, ImageRequest, GeneratedImage } from './engine.js';
import type { WorkerReply, WorkerRequest } from './model-worker.js';

interface Pending {
  onText?: (piece: string) => void;
  resolve: (r: Extract<WorkerReply, { type: 'done' }>) => void;
  reject: (e: Error) => void;
}

export class ModelChatEngine implements ChatEngine {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(readonly modelsDir: string) {}

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
      else {
        this.pending.delete(m.id);
        if (m.type === 'done') p.resolve(m);
        else {
          const e = new Error(m.message);
          if (m.aborted) e.name = 'AbortError';
          p.reject(e);
        }
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

  private run(req: Exclude<WorkerRequest, { type: 'cancel' }>, signal: AbortSignal, onText?: (piece: string) => void): Promise<Extract<WorkerReply, { type: 'done' }>> {
    const w = this.start();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => w.postMessage({ type: 'cancel', id: req.id } satisfies WorkerRequest);
      signal.addEventListener('abort', onAbort, { once: true });
      const done = <T>(f: (v: T) => void) => (v: T): void => {
        signal.removeEventListener('abort', onAbort);
        f(v);
      };
      this.pending.set(req.id, { onText, resolve: done(resolve), reject: done(reject) });
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
    const text = (m: ChatRequest['messages'][number]): string => m.content.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text).join('\n');
    const turns = request.messages.filter((m) => m.role !== 'system');
    const last = turns[turns.length - 1];
    if (!last || last.role !== 'user') throw new ApiError(400, 'the last message must come from the user', 'invalid_request_error', 'messages', null);
    const name = request.character.names.display;
    const history = turns.slice(0, -1).map((m) => ({ role: m.role === 'user' ? 'User' : name, text: text(m) }));
    const r = await this.run(
      {
        type: 'chat', id: this.nextId++, modelDir, user: text(last), history, withImage: request.modalities.includes('image'),
        maxTokens: request.maxTokens, temperature: request.temperature, seed: request.seed,
      },
      opts.signal,
      opts.onToken,
    );
    const images: GeneratedImage[] = r.images.map((bytes) => ({ bytes, mime: 'image/png' }));
    return { text: r.text, images, usage: { promptTokens: r.promptTokens, completionTokens: r.completionTokens }, finishReason: r.finishReason };
  }

  async generateImage(request: ImageRequest, opts: ImageOptions): Promise<{ images: GeneratedImage[] }> {
    if (!request.character) {
      throw new ApiError(400, "image generation needs a character: pass its id as 'model'", 'invalid_request_error', 'model', null);
    }
    const modelDir = this.requireModel(request.character.id);
    const r = await this.run({ type: 'image', id: this.nextId++, modelDir, prompt: request.prompt, n: request.n, seed: request.seed }, opts.signal);
    return { images: r.images.map((bytes) => ({ bytes, mime: 'image/png' })) };
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
