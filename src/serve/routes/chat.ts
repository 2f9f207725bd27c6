// POST /v1/chat/completions (docs/ecosystem.md 4.1, 4.3). Order of work: validate everything (images
// decoded) → take a queue slot (429 before any byte is sent) → the engine measures the prompt
// (a prompt that cannot fit is a 400 and nothing is stored, docs/serving.md 2) → generate →
// store the turn and the reply together → answer. A reply is acknowledged (body sent, or
// `[DONE]` streamed) only after it is committed. Only chats are stored: a request with chat_id,
// `store: true`, or any request when the server keeps stateless chats (docs/serving.md 5).
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { repliesWithImages } from '../characters.js';
import { abandon, clientSignal, parse, type AppContext } from '../context.js';
import { decodeImageDataUri } from '../data-uri.js';
import { toDataUri } from '../../data/index.js';
import type { ChatMessage, ChatRequest, ChatResult, GeneratedImage, Modality, ReplyReasoning } from '../engine.js';
import { ApiError, errorBody, toApiError } from '../errors.js';
import { imageLinkMarkdown, stripImageLinks } from '../image-links.js';
import { ChatCompletionRequestSchema, type ChatCompletionRequest } from '../schemas.js';
import { SseWriter } from '../sse.js';
import { requestThinks } from '../thinking.js';
import type { ChatRow, NewMessage } from '../db.js';

/** Request messages → engine messages; image parts decoded and checked. */
export function toEngineMessages(messages: ChatCompletionRequest['messages'], maxImageBytes: number): ChatMessage[] {
  return messages.map((m, i) => {
    const role = m.role === 'developer' ? 'system' : m.role;
    // This server's own image links in earlier replies are not fed back as text (docs/serving.md 4).
    const text = (t: string): string => (role === 'assistant' ? stripImageLinks(t) : t);
    const named = m.name ? { name: m.name } : {};
    if (m.content === null) return { role, ...named, content: [] };
    if (typeof m.content === 'string') return { role, ...named, content: [{ type: 'text', text: text(m.content) }] };
    return {
      role,
      ...named,
      content: m.content.map((p, j) => {
        if (p.type === 'text') return { type: 'text' as const, text: text(p.text) };
        const { bytes, mime } = decodeImageDataUri(p.image_url.url, `messages[${i}].content[${j}].image_url.url`, maxImageBytes);
        return { type: 'image' as const, bytes, mime, ...(p.image_url.detail ? { detail: p.image_url.detail } : {}) };
      }),
    };
  });
}

const usageJson = (u: ChatResult['usage']) => ({
  prompt_tokens: u.promptTokens,
  completion_tokens: u.completionTokens,
  total_tokens: u.promptTokens + u.completionTokens,
  // OpenAI's field: prompt tokens served from the prompt prefix cache (docs/serving.md 9).
  ...(u.cachedTokens !== undefined ? { prompt_tokens_details: { cached_tokens: u.cachedTokens } } : {}),
  // Extension: messages cut from the oldest to fit the context (docs/serving.md 2).
  ...(u.droppedMessages !== undefined ? { truncated_messages: u.droppedMessages } : {}),
});
/** The image's plan (thinking mode): DeepSeek's `reasoning_content`, which SillyTavern and other
 * clients show as the reasoning, and its two parts (extension). */
const reasoningJson = (r: ReplyReasoning | undefined) =>
  r ? { reasoning_content: r.text, image_plan: { thinking_process: r.thinkingProcess, generation_instruction: r.generationInstruction, missing: r.missing } } : {};
const imagesJson = (images: GeneratedImage[]) => images.map((img) => ({ type: 'image_url', image_url: { url: toDataUri(img.bytes, img.mime) } }));

/** The engine request: the conversation and every sampling field (docs/serving.md 3). */
function engineRequest(body: ChatCompletionRequest, character: ChatRequest['character'], messages: ChatMessage[], modalities: Modality[], thinking: boolean): ChatRequest {
  const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  return {
    character,
    messages,
    modalities,
    ...(thinking ? { thinking } : {}),
    ...(maxTokens != null ? { maxTokens } : {}),
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    ...(body.top_p != null ? { topP: body.top_p } : {}),
    ...(body.top_k != null && body.top_k > 0 ? { topK: body.top_k } : {}),
    ...(body.seed != null ? { seed: body.seed } : {}),
    ...(stop ? { stop } : {}),
    ...(body.frequency_penalty != null ? { frequencyPenalty: body.frequency_penalty } : {}),
    ...(body.presence_penalty != null ? { presencePenalty: body.presence_penalty } : {}),
    ...(body.repetition_penalty != null ? { repetitionPenalty: body.repetition_penalty } : {}),
  };
}

/** This server as the client reached it, for absolute image links. */
function baseUrl(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? 'localhost'}`;
}

export function chatRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.post('/v1/chat/completions', async (req, reply) => {
    const body = parse(ChatCompletionRequestSchema, req.body);
    const { character } = await ctx.library.require(body.model, 'model');
    const messages = toEngineMessages(body.messages, ctx.limits.imageBytes);
    const existing = body.chat_id === undefined ? undefined : ctx.store.getChat(body.chat_id);
    if (body.chat_id !== undefined && !existing) throw new ApiError(404, `no chat with id ${JSON.stringify(body.chat_id)}`, 'not_found_error', 'chat_id', 'chat_not_found');
    if (existing && existing.characterId !== character.id) throw new ApiError(400, `chat ${existing.id} belongs to ${existing.characterId}, not ${character.id}`, 'invalid_request_error', 'chat_id', 'chat_model_mismatch');
    // Text only unless the request or the character's setting asks for images (docs/serving.md 4).
    const modalities: Modality[] = body.modalities ?? (repliesWithImages(character) ? ['text', 'image'] : ['text']);
    const keep = existing !== undefined || body.store === true || ctx.chats.keepStateless;
    const request = engineRequest(body, character, messages, modalities, requestThinks(body, character, modalities));

    const signal = clientSignal(reply);
    let lease;
    try {
      lease = await ctx.queue.acquire(signal);
    } catch (e) {
      if (signal.aborted) return abandon(reply);
      throw e;
    }
    // The chat row is made once the engine accepts the prompt; a failed generation removes a
    // row it made, so a refused or failed request leaves nothing behind.
    let chat: ChatRow | undefined = existing;
    let createdChat = false;
    const openChat = (): ChatRow | undefined => {
      if (keep && !chat) {
        chat = ctx.store.createChat(character.id);
        createdChat = true;
      }
      return chat;
    };
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    /** Stores the new turn(s) and the reply in one transaction; returns the images to send. */
    const commit = async (result: ChatResult): Promise<{ images: GeneratedImage[]; links: string }> => {
      const images = modalities.includes('image') ? (result.images ?? []) : [];
      const hashes: string[] = [];
      for (const img of images) hashes.push((await ctx.images.put(img.bytes)).hash);
      const c = openChat();
      if (c) {
        // A new chat stores the whole conversation it was given; a continued one, the new turn.
        const rows: NewMessage[] = [];
        for (const m of existing ? messages.slice(-1) : messages) {
          const h: string[] = [];
          for (const p of m.content) if (p.type === 'image') h.push((await ctx.images.put(p.bytes)).hash);
          rows.push({ role: m.role, content: m.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n'), imageHashes: h });
        }
        rows.push({ role: 'assistant', content: result.text, imageHashes: hashes });
        ctx.store.appendMessages(c.id, rows);
      }
      const links = ctx.chats.imageLinks ? hashes.map((h) => `\n\n${imageLinkMarkdown(baseUrl(req), h, ctx.apiKey)}`).join('') : '';
      return { images, links };
    };
    const forget = (): void => {
      if (createdChat && chat) ctx.store.deleteChat(chat.id);
    };

    try {
      if (!body.stream) {
        let result: ChatResult;
        try {
          result = await ctx.engine.chat(request, { signal, onAccepted: () => openChat() });
        } catch (e) {
          forget();
          if (signal.aborted) return abandon(reply);
          throw e;
        }
        const { images, links } = await commit(result);
        if (chat) reply.header('x-chat-id', chat.id);
        return {
          id,
          object: 'chat.completion',
          created,
          model: character.id,
          ...(chat ? { chat_id: chat.id } : {}),
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: result.text + links, ...reasoningJson(result.reasoning), ...(images.length ? { images: imagesJson(images) } : {}) },
              finish_reason: result.finishReason ?? 'stop',
            },
          ],
          usage: usageJson(result.usage),
        };
      }

      const sse = new SseWriter(reply.raw, req.raw);
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
        id,
        object: 'chat.completion.chunk',
        created,
        model: character.id,
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
      // Headers go out once the prompt is accepted, so a refused prompt is still a plain 400.
      const open = (): void => {
        if (sse.opened) return;
        const c = openChat();
        reply.hijack();
        sse.open(c ? { 'x-chat-id': c.id } : {});
        sse.data(chunk({ role: 'assistant', content: '' }));
      };
      try {
        const result = await ctx.engine.chat(request, {
          signal,
          onAccepted: open,
          onToken: (t) => {
            open();
            sse.data(chunk({ content: t }));
          },
          onReasoning: (t) => {
            open();
            sse.data(chunk({ reasoning_content: t }));
          },
        });
        open();
        const { images, links } = await commit(result);
        if (links) sse.data(chunk({ content: links }));
        if (result.reasoning) sse.data(chunk({ image_plan: reasoningJson(result.reasoning).image_plan }));
        if (images.length) sse.data(chunk({ images: imagesJson(images) }));
        sse.data(chunk({}, result.finishReason ?? 'stop'));
        if (body.stream_options?.include_usage) sse.data({ id, object: 'chat.completion.chunk', created, model: character.id, choices: [], usage: usageJson(result.usage) });
        sse.done();
      } catch (e) {
        forget();
        if (signal.aborted) {
          if (!sse.opened) return abandon(reply);
          return reply.raw.destroy();
        }
        if (!sse.opened) throw e;
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
