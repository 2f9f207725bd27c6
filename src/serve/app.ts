// The HTTP app: one Fastify instance, routes declared in routes/*, errors in one shape
// (errors.ts), an optional API key, and body limits. `buildApp` does not listen: server.ts does.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { timingSafeEqual, createHash } from 'node:crypto';
import { CharacterLibrary } from './characters.js';
import { DEFAULT_CHAT_SETTINGS, DEFAULT_LIMITS, type AppContext, type ChatSettings, type ServeLimits } from './context.js';
import type { Store } from './db.js';
import { RequestQueue, type ChatEngine } from './engine.js';
import { ApiError, clientErrorResponse, errorBody, toApiError } from './errors.js';
import { isSignedImageUrl } from './image-links.js';
import type { ImageStore } from './images.js';
import { characterRoutes } from './routes/characters.js';
import { chatRoutes } from './routes/chat.js';
import { chatStoreRoutes } from './routes/chats.js';
import { healthRoutes } from './routes/health.js';
import { imageRoutes } from './routes/images.js';
import { jobRoutes } from './routes/jobs.js';
import { modelRoutes } from './routes/models.js';
import { webRoutes } from './routes/web.js';

export interface AppOptions {
  store: Store;
  images: ImageStore;
  engine: ChatEngine;
  /** Default: one request generating at a time, 16 waiting. */
  queue?: RequestQueue;
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  limits?: Partial<ServeLimits>;
  /** Stateless chats and image links (docs/serving.md 4-5). */
  chats?: Partial<ChatSettings>;
  timeouts?: Partial<ServeTimeouts>;
  logger?: boolean;
}

/** How long a client may take to send a request. A connection that sends its headers or its
 * body too slowly is answered 408 and closed, so half-sent requests cannot pile up and hold
 * sockets and memory. Only receiving is bounded: a long generation streams as long as it needs. */
export interface ServeTimeouts {
  /** From connect (or the previous response) to the end of the request headers. */
  headersMs: number;
  /** From connect to the end of the whole request, body included (a 64 MiB card on loopback
   * takes well under a second). */
  requestMs: number;
  /** How often Node checks connections against the two limits above. */
  checkIntervalMs: number;
}

export const DEFAULT_TIMEOUTS: ServeTimeouts = { headersMs: 10_000, requestMs: 30_000, checkIntervalMs: 1_000 };

/** Paths open without the key: a liveness probe carries no secrets. */
const PUBLIC_PATHS = new Set(['/health']);

function sameSecret(a: string, b: string): boolean {
  // Compare digests: constant time whatever the lengths.
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

export function buildApp(opts: AppOptions): { app: FastifyInstance; ctx: AppContext } {
  const limits: ServeLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const ctx: AppContext = {
    store: opts.store,
    images: opts.images,
    library: new CharacterLibrary(opts.store, opts.images, limits.cardInflatedBytes),
    engine: opts.engine,
    queue: opts.queue ?? new RequestQueue(16, 1),
    limits,
    chats: { ...DEFAULT_CHAT_SETTINGS, ...opts.chats },
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
  };
  const timeouts: ServeTimeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  if (!(timeouts.headersMs > 0 && timeouts.requestMs >= timeouts.headersMs && timeouts.checkIntervalMs > 0)) {
    throw new Error(`timeouts: need 0 < headersMs <= requestMs and checkIntervalMs > 0, got ${JSON.stringify(timeouts)}`);
  }
  // forceCloseConnections: closing the server drops every connection at once (in-flight
  // generations see their client go and are cancelled) instead of waiting out keep-alives.
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: limits.jsonBodyBytes,
    forceCloseConnections: true,
    requestTimeout: timeouts.requestMs,
    http: { headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs, connectionsCheckingInterval: timeouts.checkIntervalMs },
    // The framework's own refusals (bad percent-encoding, over-long ids, malformed HTTP,
    // timeouts) in the same error shape as everything else.
    frameworkErrors: (err, _req, reply) => {
      const e = toApiError(err);
      void (reply as FastifyReply).code(e.status).send(errorBody(e));
    },
    clientErrorHandler: (err, socket) => {
      if ((err as { code?: string }).code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.write(clientErrorResponse(err));
      socket.destroy(err);
    },
  });

  // Every API body is JSON (card uploads have their own scope in routes/characters.ts).
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err, req, reply) => {
    const e = toApiError(err);
    if (e.status >= 500) req.log.error(err);
    void reply.code(e.status).send(errorBody(e));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new ApiError(404, `unknown request URL: ${req.method} ${req.url.split('?')[0]}`, 'invalid_request_error', null, 'unknown_url');
    void reply.code(404).send(errorBody(e));
  });

  webRoutes(app); // the UI's files: public, so answered before the key check

  const key = opts.apiKey;
  const bearer = (req: FastifyRequest) => /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
  /** Whether the request may see more than a liveness answer: always without a key. */
  const authorized = (req: FastifyRequest): boolean => {
    const given = bearer(req);
    return !key || (given !== undefined && sameSecret(given, key));
  };
  if (key) {
    app.addHook('onRequest', async (req) => {
      if (PUBLIC_PATHS.has(req.url.split('?')[0]!)) return;
      // A reply image's markdown link opens that one image (docs/serving.md 4).
      if (req.method === 'GET' && isSignedImageUrl(req.url, key)) return;
      if (!authorized(req)) {
        throw new ApiError(401, bearer(req) !== undefined ? 'incorrect API key provided' : 'missing API key: send Authorization: Bearer <key>', 'authentication_error', null, 'invalid_api_key');
      }
    });
  }

  healthRoutes(app, ctx, authorized);
  modelRoutes(app, ctx);
  chatRoutes(app, ctx);
  imageRoutes(app, ctx);
  characterRoutes(app, ctx);
  chatStoreRoutes(app, ctx);
  jobRoutes(app, ctx);
  return { app, ctx };
}
