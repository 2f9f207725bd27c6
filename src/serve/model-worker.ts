// The worker thread that runs the model for the server, so generation never blocks the event
// loop that serves other requests. It keeps each loaded character model loaded, and cancels a
// generation when the main thread says its client went away.
import { parentPort } from 'node:worker_threads';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { CharacterModel, CHARACTER_MODEL_FILES } from '../character/index.js';

export type WorkerRequest =
  | { type: 'chat'; id: number; modelDir: string; user: string; history: { role: string; text: string }[]; withImage: boolean; maxTokens?: number; temperature?: number; seed?: number }
  | { type: 'image'; id: number; modelDir: string; prompt: string; n: number; seed?: number }
  | { type: 'cancel'; id: number };

export type WorkerReply =
  | { type: 'text'; id: number; piece: string }
  | { type: 'done'; id: number; text: string; images: Uint8Array[]; promptTokens: number; completionTokens: number; finishReason: 'stop' | 'length' }
  | { type: 'error'; id: number; message: string; aborted: boolean };

// Loaded models stay loaded, keyed by folder; a folder whose manifest changed (a job installed a
// new model there) is loaded again and the old model freed.
const loaded = new Map<string, { stamp: number; model: Promise<CharacterModel> }>();
const running = new Map<number, AbortController>();

function modelAt(dir: string): Promise<CharacterModel> {
  const stamp = statSync(join(dir, CHARACTER_MODEL_FILES.manifest)).mtimeMs;
  const entry = loaded.get(dir);
  if (entry && entry.stamp === stamp) return entry.model;
  if (entry) entry.model.then((m) => m.dispose(), () => {});
  const model = CharacterModel.load(dir);
  loaded.set(dir, { stamp, model });
  model.catch(() => loaded.delete(dir));
  return model;
}

async function handle(req: Exclude<WorkerRequest, { type: 'cancel' }>, signal: AbortSignal): Promise<WorkerReply> {
  const model = await modelAt(req.modelDir);
  if (req.type === 'image') {
    const images: Uint8Array[] = [];
    for (let k = 0; k < req.n; k++) {
      images.push(await model.image(req.prompt, { signal, seed: req.seed === undefined ? undefined : req.seed + k }));
    }
    return { type: 'done', id: req.id, text: '', images, promptTokens: (await model.encode(req.prompt)).length, completionTokens: 0, finishReason: 'stop' };
  }
  const maxTokens = req.maxTokens ?? 500;
  const onText = (piece: string): void => parentPort!.postMessage({ type: 'text', id: req.id, piece } satisfies WorkerReply);
  const usage = { promptTokens: 0, completionTokens: 0, hitLimit: false };
  const opts = { history: req.history, maxTokens, temperature: req.temperature, onText, signal, usage };
  let text: string;
  const images: Uint8Array[] = [];
  if (req.withImage) {
    const r = await model.rolePlay(req.user, { ...opts, image: { seed: req.seed, signal } });
    text = r.reply;
    images.push(r.image);
  } else {
    text = await model.reply(req.user, opts);
  }
  return {
    type: 'done', id: req.id, text, images, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
    finishReason: usage.hitLimit ? 'length' : 'stop',
  };
}

parentPort!.on('message', (req: WorkerRequest) => {
  if (req.type === 'cancel') {
    running.get(req.id)?.abort();
    return;
  }
  const ac = new AbortController();
  running.set(req.id, ac);
  handle(req, ac.signal).then(
    (reply) => parentPort!.postMessage(reply),
    (e: unknown) => parentPort!.postMessage({ type: 'error', id: req.id, message: e instanceof Error ? e.message : String(e), aborted: ac.signal.aborted } satisfies WorkerReply),
  ).finally(() => running.delete(req.id));
});
