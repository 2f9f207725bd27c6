// Stored conversations (read and delete). Chats are written by /v1/chat/completions; jobs have
// their own routes (routes/jobs.ts).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parse, type AppContext } from '../context.js';
import type { ChatRow } from '../db.js';
import { ApiError } from '../errors.js';

type IdParams = { Params: { id: string } };
const sec = (ms: number) => Math.floor(ms / 1000);
const chatJson = (c: ChatRow) => ({ id: c.id, object: 'chat', character_id: c.characterId, title: c.title, created_at: sec(c.createdAt), updated_at: sec(c.updatedAt) });

export function chatStoreRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get<{ Querystring: Record<string, unknown> }>('/v1/chats', async (req) => {
    const q = parse(z.object({ character_id: z.string().min(1).optional() }), req.query);
    return { object: 'list', data: ctx.store.listChats(q.character_id).map(chatJson) };
  });

  app.get<IdParams>('/v1/chats/:id', async (req) => {
    const chat = ctx.store.getChat(req.params.id);
    if (!chat) throw new ApiError(404, `no chat with id ${JSON.stringify(req.params.id)}`, 'not_found_error', 'id', 'chat_not_found');
    const messages = ctx.store.listMessages(chat.id).map((m) => ({
      id: m.id,
      role: m.role,
      content: m.content,
      images: m.imageHashes.map((h) => ({ url: `/v1/images/${h}` })),
      created_at: sec(m.createdAt),
    }));
    return { ...chatJson(chat), messages };
  });

  app.delete<IdParams>('/v1/chats/:id', async (req) => {
    if (!ctx.store.deleteChat(req.params.id)) throw new ApiError(404, `no chat with id ${JSON.stringify(req.params.id)}`, 'not_found_error', 'id', 'chat_not_found');
    return { id: req.params.id, object: 'chat', deleted: true };
  });
}
