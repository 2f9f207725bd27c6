// Stored conversations (read and delete) and jobs (read). Chats are written by
// /v1/chat/completions; jobs will be created by the training and evaluation layers.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parse, type AppContext } from '../context.js';
import type { ChatRow, JobRow } from '../db.js';
import { ApiError } from '../errors.js';

type IdParams = { Params: { id: string } };
const sec = (ms: number) => Math.floor(ms / 1000);
const chatJson = (c: ChatRow) => ({ id: c.id, object: 'chat', character_id: c.characterId, title: c.title, created_at: sec(c.createdAt), updated_at: sec(c.updatedAt) });
const jobJson = (j: JobRow) => ({
  id: j.id,
  object: 'job',
  kind: j.kind,
  status: j.status,
  character_id: j.characterId,
  config: j.config,
  progress: j.progress,
  error: j.error,
  created_at: sec(j.createdAt),
  updated_at: sec(j.updatedAt),
});

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

  app.get('/v1/jobs', async () => ({ object: 'list', data: ctx.store.listJobs().map(jobJson) }));

  app.get<IdParams>('/v1/jobs/:id', async (req) => {
    const job = ctx.store.getJob(req.params.id);
    if (!job) throw new ApiError(404, `no job with id ${JSON.stringify(req.params.id)}`, 'not_found_error', 'id', 'job_not_found');
    return jobJson(job);
  });
}
