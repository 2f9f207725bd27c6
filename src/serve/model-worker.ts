// The worker thread that runs the model for the server, so generation never blocks the event
// loop that serves other requests. It keeps each loaded character model loaded, and cancels a
// generation when the main thread says its client went away (also during a long prefill, which
// runs in chunks: docs/serving.md 2). Requests are handled concurrently: each prefills on its own,
// then its reply joins the model's decode batch (continuous batching, docs/serving.md 9).
import { parentPort } from 'node:worker_threads';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { CharacterModel, CHARACTER_MODEL_FILES, ChatRequestError, SharedBases, type ChatTurn, type ImagePlan, type SamplingOptions } from '../character/index.js';
import { memoryReport, type WorkerMemory } from './model-memory.js';

export type WorkerRequest =
  | { type: 'chat'; id: number; modelDir: string; turns: ChatTurn[]; withImage: boolean; sampling: SamplingOptions; memoryBytes?: number; thinking?: boolean; maxBatch: number; prefixCacheBytes: number }
  | { type: 'image'; id: number; modelDir: string; prompt: string; n: number; seed?: number }
  | { type: 'memory'; id: number }
  | { type: 'cancel'; id: number };

export type WorkerReply =
  | { type: 'accepted'; id: number; promptTokens: number; droppedTurns: number }
  | { type: 'text'; id: number; piece: string }
  | { type: 'reasoning'; id: number; piece: string }
  | { type: 'done'; id: number; text: string; images: Uint8Array[]; promptTokens: number; cachedTokens: number; completionTokens: number; finishReason: 'stop' | 'length'; droppedTurns: number; plan?: ImagePlan }
  | { type: 'memory'; id: number; memory: WorkerMemory }
  | { type: 'error'; id: number; message: string; aborted: boolean; refused?: { code: string; param: string } };

// Loaded models stay loaded, keyed by folder; a folder whose manifest changed (a job installed a
// new model there) is loaded again and the old model freed. LoRA folders over one base share it
// (docs/serving.md 10).
const loaded = new Map<string, { stamp: number; model: Promise<CharacterModel> }>();
const bases = new SharedBases();
const running = new Map<number, AbortController>();

function modelAt(dir: string): Promise<CharacterModel> {
  const stamp = statSync(join(dir, CHARACTER_MODEL_FILES.manifest)).mtimeMs;
  const entry = loaded.get(dir);
  if (entry && entry.stamp === stamp) return entry.model;
  if (entry) entry.model.then((m) => m.dispose(), () => {});
  const model = CharacterModel.load(dir, { bases });
  loaded.set(dir, { stamp, model });
  model.catch(() => loaded.delete(dir));
  return model;
}

const post = (m: WorkerReply): void => parentPort!.postMessage(m);

async function handle(req: Exclude<WorkerRequest, { type: 'cancel' }>, signal: AbortSignal): Promise<WorkerReply> {
  if (req.type === 'memory') return { type: 'memory', id: req.id, memory: await memoryReport(loaded, bases) };
  const model = await modelAt(req.modelDir);
  if (req.type === 'image') {
    const images: Uint8Array[] = [];
    for (let k = 0; k < req.n; k++) {
      images.push(await model.image(req.prompt, { signal, ...(req.seed === undefined ? {} : { seed: req.seed + k }) }));
    }
    return { type: 'done', id: req.id, text: '', images, promptTokens: (await model.encode(req.prompt)).length + 2, cachedTokens: 0, completionTokens: 0, finishReason: 'stop', droppedTurns: 0 };
  }
  // Replies of one model decode together, maxBatch at most (docs/serving.md 9).
  model.batcher.setMaxBatch(req.maxBatch);
  model.prefills.setMaxBatch(req.maxBatch);
  model.prefixes.setMaxBytes(req.prefixCacheBytes);
  const r = await model.chat(req.turns, {
    ...req.sampling,
    signal,
    image: req.withImage,
    ...(req.memoryBytes !== undefined ? { memoryBytes: req.memoryBytes } : {}),
    onAccepted: (p) => post({ type: 'accepted', id: req.id, ...p }),
    onText: (piece) => post({ type: 'text', id: req.id, piece }),
    ...(req.thinking ? { thinking: { onText: (piece: string) => post({ type: 'reasoning', id: req.id, piece }) } } : {}),
  });
  return {
    type: 'done', id: req.id, text: r.text, images: r.image ? [r.image] : [], promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: r.completionTokens,
    finishReason: r.finishReason, droppedTurns: r.droppedTurns, ...(r.plan ? { plan: r.plan } : {}),
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
    (reply) => post(reply),
    (e: unknown) => post({
      type: 'error', id: req.id, message: e instanceof Error ? e.message : String(e), aborted: ac.signal.aborted,
      ...(e instanceof ChatRequestError ? { refused: { code: e.code, param: e.param } } : {}),
    }),
  ).finally(() => running.delete(req.id));
});
