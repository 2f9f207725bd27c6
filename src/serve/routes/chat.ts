// POST /v1/chat/completions (ecosystem.md 4.1, 4.3). Order of work, chosen for durability and
// fairness: validate everything (images decoded) → take a queue slot (429 before any byte is
// sent) → persist the request's messages → generate → persist the reply → answer. A reply is
// acknowledged (body sent, or `[DONE]` streamed) only after it is committed.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { abandon, clientSignal, parse, type AppContext } from '../context.js';
import { decodeImageDataUri, toDataUri } from '../data-uri.js';
import type { ChatMessage, ChatResult, GeneratedImage, Modality } from '../engine.js';
import { ApiError, errorBody, toApiError } from '../errors.js';
import { ChatCompletionRequestSchema, type ChatCompletionRequest } from '../schemas.js';
import { SseWriter } from '../sse.js';
import type { NewMessage } from '../db.js';

/** Request messages → engine messages; image parts decoded and checked. */
export function toEngineMessages(messages: ChatCompletionRequest['messages'], maxImageBytes: number): ChatMessage[] {
  return messages.map((m, i) => {
    const role = m.role === 'developer' ? 'system' : m.role;
    if (m.content === null) return { role, content: [] };
    if (typeof m.content === 'string') return { role, content: [{ type: 'text', text: m.content }] };
    return {
      role,
      content: m.content.map((p, j) => {
        if (p.type === 'text') return { type: 'text' as const, text: p.text };
        const { bytes, mime } = decodeImageDataUri(p.image_url.url, `messages[${i}].content[${j}].image_url.url`, maxImageBytes);
        return { type: 'image' as const, bytes, mime, ...(p.image_url.detail ? { detail: p.image_url.detail } : {}) };
      }),
    };
  });
}

const usageJson = (u: ChatResult['usage']) => ({ prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens });
const imagesJson = (images: GeneratedImage[]) => images.map((img) => ({ type: 'image_url', image_url: { url: toDataUri(img.bytes, img.mime) } }));

export function chatRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.post('/v1/chat/completions', async (req, reply) => {
    const body = parse(ChatCompletionRequestSchema, req.body);
    const { character } = await ctx.library.require(body.model, 'model');
    const messages = toEngineMessages(body.messages, ctx.limits.imageBytes);
    const existing = body.chat_id === undefined ? undefined : ctx.store.getChat(body.chat_id);
    if (body.chat_id !== undefined && !existing) throw new ApiError(404, `no chat with id ${JSON.stringify(body.chat_id)}`, 'not_found_error', 'chat_id', 'chat_not_found');
    if (existing && existing.characterId !== character.id) throw new ApiError(400, `chat ${existing.id} belongs to ${existing.characterId}, not ${character.id}`, 'invalid_request_error', 'chat_id', 'chat_model_mismatch');
    const modalities: Modality[] = body.modalities ?? ['text', 'image'];
    const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;

    const signal = clientSignal(reply);
    let lease;
    try {
      lease = await ctx.queue.acquire(signal);
    } catch (e) {
      if (signal.aborted) return abandon(reply);
      throw e;
    }
    try {
      // A new chat stores the whole conversation it was given; a continued one, the new turn.
      const chat = existing ?? ctx.store.createChat(character.id);
      const toStore = existing ? messages.slice(-1) : messages;
      const rows: NewMessage[] = [];
      for (const m of toStore) {
        const hashes: string[] = [];
        for (const p of m.content) if (p.type === 'image') hashes.push((await ctx.images.put(p.bytes)).hash);
        rows.push({ role: m.role, content: m.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n'), imageHashes: hashes });
      }
      ctx.store.appendMessages(chat.id, rows);

      const request = {
        character,
        messages,
        modalities,
        ...(maxTokens != null ? { maxTokens } : {}),
        ...(body.temperature != null ? { temperature: body.temperature } : {}),
        ...(body.top_p != null ? { topP: body.top_p } : {}),
        ...(body.seed != null ? { seed: body.seed } : {}),
        ...(stop ? { stop } : {}),
      };
      const id = `chatcmpl-${randomUUID()}`;
      const created = Math.floor(Date.now() / 1000);
      const persistReply = async (result: ChatResult): Promise<GeneratedImage[]> => {
        const images = modalities.includes('image') ? (result.images ?? []) : [];
        const hashes: string[] = [];
        for (const img of images) hashes.push((await ctx.images.put(img.bytes)).hash);
        ctx.store.appendMessages(chat.id, [{ role: 'assistant', content: result.text, imageHashes: hashes }]);
        return images;
      };

      if (!body.stream) {
        let result: ChatResult;
        try {
          result = await ctx.engine.chat(request, { signal });
        } catch (e) {
          if (signal.aborted) return abandon(reply);
          throw e;
        }
        const images = await persistReply(result);
        reply.header('x-chat-id', chat.id);
        return {
          id,
          object: 'chat.completion',
          created,
          model: character.id,
          chat_id: chat.id,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: result.text, ...(images.length ? { images: imagesJson(images) } : {}) },
              finish_reason: result.finishReason ?? 'stop',
            },
          ],
          usage: usageJson(result.usage),
        };
      }

      reply.hijack();
      const sse = new SseWriter(reply.raw);
      sse.open({ 'x-chat-id': chat.id });
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
        id,
        object: 'chat.completion.chunk',
        created,
        model: character.id,
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
      sse.data(chunk({ role: 'assistant', content: '' }));
      try {
        const result = await ctx.engine.chat(request, { signal, onToken: (t) => sse.data(chunk({ content: t })) });
        const images = await persistReply(result);
        if (images.length) sse.data(chunk({ images: imagesJson(images) }));
        sse.data(chunk({}, result.finishReason ?? 'stop'));
        if (body.stream_options?.include_usage) sse.data({ id, object: 'chat.completion.chunk', created, model: character.id, choices: [], usage: usageJson(result.usage) });
        sse.done();
      } catch (e) {
        if (signal.aborted) return reply.raw.destroy();
        const err = toApiError(e);
        if (err.status >= 500) req.log.error(e);
        // Headers are gone: the error travels as one more event (OpenAI does the same).
        sse.data(errorBody(err));
        sse.end();
      }
    } finally {
      lease.release();
    }
  });
}
