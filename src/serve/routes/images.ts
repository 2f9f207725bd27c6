// POST /v1/images/generations (docs/ecosystem.md 4.2: `{created, data: [{b64_json, revised_prompt?}]}`)
// and GET /v1/images/:hash, which serves any stored image (avatars, chat images) by content hash.
import type { FastifyInstance } from 'fastify';
import { abandon, clientSignal, parse, type AppContext } from '../context.js';
import { ApiError } from '../errors.js';
import { imageMime, isImageHash } from '../images.js';
import { ImageGenerationRequestSchema } from '../schemas.js';

// Small models draw small images (the tiny preset 64x64, test models 32x32): the engine says
// which sizes it has; these bounds only keep the numbers sane.
const MIN_SIDE = 16;
const MAX_SIDE = 4096;

export function imageRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.post('/v1/images/generations', async (req, reply) => {
    const body = parse(ImageGenerationRequestSchema, req.body);
    const character = body.model === undefined ? undefined : (await ctx.library.require(body.model, 'model')).character;
    // Absent or "auto": the engine's own size; a size it cannot draw is its 400 (docs/serving.md 3).
    let size: { width: number; height: number } | undefined;
    if (body.size && body.size !== 'auto') {
      const [width, height] = body.size.split('x').map(Number) as [number, number];
      if (width < MIN_SIDE || height < MIN_SIDE || width > MAX_SIDE || height > MAX_SIDE) {
        throw new ApiError(400, `size: each side must be between ${MIN_SIDE} and ${MAX_SIDE}`, 'invalid_request_error', 'size', 'invalid_value');
      }
      size = { width, height };
    }
    const signal = clientSignal(reply);
    const request = { prompt: body.prompt, n: body.n ?? 1, ...(size ? { size } : {}), ...(character ? { character } : {}), ...(body.seed != null ? { seed: body.seed } : {}) };
    let images;
    try {
      ({ images } = await ctx.queue.run(signal, () => ctx.engine.generateImage(request, { signal })));
    } catch (e) {
      if (signal.aborted) return abandon(reply);
      throw e;
    }
    for (const img of images) await ctx.images.put(img.bytes);
    return {
      created: Math.floor(Date.now() / 1000),
      data: images.map((img) => ({ b64_json: Buffer.from(img.bytes).toString('base64'), ...(img.revisedPrompt ? { revised_prompt: img.revisedPrompt } : {}) })),
    };
  });

  app.get<{ Params: { hash: string } }>('/v1/images/:hash', async (req, reply) => {
    const hash = req.params.hash;
    const bytes = isImageHash(hash) ? await ctx.images.get(hash) : undefined;
    if (!bytes) throw new ApiError(404, `no image ${JSON.stringify(hash)}`, 'not_found_error', 'hash', 'image_not_found');
    // Content-addressed: the bytes behind a URL never change.
    reply.header('cache-control', 'private, max-age=31536000, immutable');
    // The type comes from the bytes, and browsers are told not to guess another: stored bytes
    // that are no image (a card may carry anything as an "image") must never render as HTML on
    // this origin.
    const mime = imageMime(bytes);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('content-security-policy', "default-src 'none'; sandbox");
    if (!mime) reply.header('content-disposition', 'attachment');
    reply.type(mime ?? 'application/octet-stream');
    return reply.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
}
