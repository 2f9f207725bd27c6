// `startServer`: opens the state under `dataDir` (`unicharacter.db` and `images/`), builds the
// app around the given engine and listens, on 127.0.0.1 unless told otherwise (issue 8,
// "Security").
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { ChatSettings, ServeLimits } from './context.js';
import { Store } from './db.js';
import { RequestQueue, type ChatEngine } from './engine.js';
import { ImageStore } from './images.js';

export interface ServerOptions {
  dataDir: string;
  engine: ChatEngine;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  apiKey?: string;
  /** Requests waiting beyond the running ones before 429 (default 16). */
  queueCapacity?: number;
  /** Requests generating at once (default 1: one loaded model). */
  concurrency?: number;
  limits?: Partial<ServeLimits>;
  /** Stateless chats and image links (docs/serving.md 4-5). */
  chats?: Partial<ChatSettings>;
  logger?: boolean;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  store: Store;
  images: ImageStore;
  queue: RequestQueue;
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8000;

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const store = new Store(join(opts.dataDir, 'unicharacter.db'));
  const images = new ImageStore(join(opts.dataDir, 'images'));
  const queue = new RequestQueue(opts.queueCapacity ?? 16, opts.concurrency ?? 1);
  const { app } = buildApp({
    store,
    images,
    engine: opts.engine,
    queue,
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.chats ? { chats: opts.chats } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
  });
  const host = opts.host ?? DEFAULT_HOST;
  try {
    await app.listen({ host, port: opts.port ?? DEFAULT_PORT });
  } catch (e) {
    store.close();
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? DEFAULT_PORT);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed = false;
  return {
    url: `http://${urlHost}:${port}`,
    app,
    store,
    images,
    queue,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
      await opts.engine.close?.();
      store.close();
    },
  };
}
