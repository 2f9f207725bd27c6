// What every route needs, passed explicitly (no globals): the store, the image store, the
// character library, the engine and its queue, and the limits.
import type { FastifyReply } from 'fastify';
import type { ZodType, ZodTypeDef } from 'zod';
import type { CharacterLibrary } from './characters.js';
import type { Store } from './db.js';
import { ClientGoneError, type ChatEngine, type RequestQueue } from './engine.js';
import { fromZod } from './errors.js';
import type { ImageStore } from './images.js';

export interface ServeLimits {
  /** Largest JSON body (chat requests carry images as data URIs). */
  jsonBodyBytes: number;
  /** Largest card upload (a CHARX with its reference images). */
  cardBodyBytes: number;
  /** Largest single image, decoded, in a request. */
  imageBytes: number;
  /** Largest total a CHARX upload may inflate to (its assets are images, which zip does not
   * shrink, so a real card inflates to about its own size). */
  cardInflatedBytes: number;
}

export const DEFAULT_LIMITS: ServeLimits = { jsonBodyBytes: 32 << 20, cardBodyBytes: 64 << 20, imageBytes: 16 << 20, cardInflatedBytes: 96 << 20 };

/** What the chat route keeps and how it shows images (docs/serving.md 4-5). */
export interface ChatSettings {
  /** Store a request without chat_id (or `store: true`) as a chat. Default false. */
  keepStateless: boolean;
  /** Also put each reply image into `content` as a markdown image link. Default false. */
  imageLinks: boolean;
}

export const DEFAULT_CHAT_SETTINGS: ChatSettings = { keepStateless: false, imageLinks: false };

export interface AppContext {
  store: Store;
  images: ImageStore;
  library: CharacterLibrary;
  engine: ChatEngine;
  queue: RequestQueue;
  limits: ServeLimits;
  chats: ChatSettings;
  /** The server's API key, if any (signs image links). */
  apiKey?: string;
}

/** Validates at the edge; a failure is a 400 naming the field. */
export function parse<O>(schema: ZodType<O, ZodTypeDef, unknown>, value: unknown): O {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw fromZod(r.error);
  return r.data;
}

/** Aborts when the client disconnects before the response has been fully written. */
export function clientSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort(new ClientGoneError());
  });
  return ac.signal;
}

/** After a client has gone there is nobody to answer: drop the socket quietly. */
export function abandon(reply: FastifyReply): void {
  if (!reply.sent) reply.hijack();
  reply.raw.destroy();
}
