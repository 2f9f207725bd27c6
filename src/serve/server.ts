// `startServer`: opens the state under `dataDir` (`unicharacter.db` and `images/`), builds the
// app around the given engine and listens, on 127.0.0.1 unless told otherwise (docs/architecture.md
// "Security").
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type ServeTimeouts } from './app.js';
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
  /** Listen on an address other machines can reach (a wildcard such as 0.0.0.0 or ::, or a
   * network address) although no API key is set; see `checkBindHost`. */
  allowRemote?: boolean;
  /** Requests waiting beyond the running ones before 429 (default 16). */
  queueCapacity?: number;
  /** Requests generating at once (default: the engine's concurrency, e.g. ModelChatEngine's maxBatch; else 1). */
  concurrency?: number;
  limits?: Partial<ServeLimits>;
  /** Stateless chats and image links (docs/serving.md 4-5). */
  chats?: Partial<ChatSettings>;
  timeouts?: Partial<ServeTimeouts>;
  logger?: boolean;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  store: Store;
  images: ImageStore;
  queue: RequestQueue;
  /** What the operator must hear about this server (e.g. it is open to the network without a key). */
  warnings: string[];
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8000;

/** Addresses only this machine can reach. */
function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The listen address, checked before anything is opened. Without an API key the server is open
 * to whoever can reach it, so an address other machines can reach (a wildcard such as 0.0.0.0 or
 * ::, or a network address) is refused unless `allowRemote` says it is meant, and then comes with
 * a warning. An empty host is always refused: Node would read it as "every interface", which is
 * never what an empty `--host=` meant. Returns the warnings to show.
 */
export function checkBindHost(host: string, o: { apiKey?: string; allowRemote?: boolean }): string[] {
  if (host.trim() === '') throw new Error(`--host is empty: give the address to listen on (${DEFAULT_HOST}, the default, for this machine only; 0.0.0.0 for every interface, with --api-key)`);
  if (isLoopback(host) || o.apiKey) return [];
  if (!o.allowRemote) {
    throw new Error(`--host ${host} would let other machines reach the server, and no API key is set: set --api-key (or UNICHARACTER_API_KEY), or pass --allow-remote to serve without one`);
  }
  return [`warning: serving on ${host} without an API key: anyone who can reach this address can read and change every character and chat (--allow-remote)`];
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? DEFAULT_HOST;
  const warnings = checkBindHost(host, opts);
  const store = new Store(join(opts.dataDir, 'unicharacter.db'));
  const images = new ImageStore(join(opts.dataDir, 'images'));
  const queue = new RequestQueue(opts.queueCapacity ?? 16, opts.concurrency ?? opts.engine.concurrency ?? 1);
  const { app } = buildApp({
    store,
    images,
    engine: opts.engine,
    queue,
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.chats ? { chats: opts.chats } : {}),
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
  });
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
    warnings,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
      await opts.engine.close?.();
      store.close();
    },
  };
}
