// Characters: list, get, create, update, delete; import a card (PNG, JSON or CHARX, as the raw
// body or a multipart `file` field, answered with `warnings`); export as ?format=png|json|charx
// [&held_out=include|omit] (docs/ecosystem.md 1.1, 1.2).
import type { FastifyInstance } from 'fastify';
import { characterJson } from '../characters.js';
import { parse, type AppContext } from '../context.js';
import { decodeImageDataUri } from '../data-uri.js';
import { ApiError } from '../errors.js';
import { CharacterCreateSchema, CharacterUpdateSchema, ExportQuerySchema, type CharacterInput } from '../schemas.js';

type IdParams = { Params: { id: string } };

function fields(b: CharacterInput) {
  const { avatar: _a, visual_description, reply_images, ...rest } = b;
  return {
    ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
    ...(visual_description !== undefined ? { visualDescription: visual_description } : {}),
    ...(reply_images !== undefined ? { replyImages: reply_images } : {}),
  };
}

/** The uploaded card's bytes: a multipart form's `file` (or only) file, else the raw body. */
async function uploadedBytes(contentType: string | undefined, body: Buffer): Promise<Uint8Array> {
  if (contentType && /^multipart\/form-data/i.test(contentType)) {
    let form: FormData;
    try {
      form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    } catch {
      throw new ApiError(400, 'the multipart form could not be read', 'invalid_request_error', null, 'invalid_body');
    }
    const file = form.get('file') ?? [...form.values()].find((v) => typeof v !== 'string');
    if (!file || typeof file === 'string') throw new ApiError(400, 'file: the multipart form has no file field', 'invalid_request_error', 'file', 'missing_file');
    return new Uint8Array(await file.arrayBuffer());
  }
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

export function characterRoutes(app: FastifyInstance, ctx: AppContext): void {
  const avatarOf = (b: CharacterInput) => (b.avatar === undefined ? undefined : decodeImageDataUri(b.avatar, 'avatar', ctx.limits.imageBytes).bytes);

  app.get('/v1/characters', async () => ({ object: 'list', data: ctx.store.listCharacters().map((r) => characterJson(r)) }));

  app.get<IdParams>('/v1/characters/:id', async (req) => {
    const { row, character } = await ctx.library.require(req.params.id);
    const { cardJson: _c, ...rest } = row;
    return characterJson(rest, character);
  });

  app.post('/v1/characters', async (req, reply) => {
    const body = parse(CharacterCreateSchema, req.body);
    const row = await ctx.library.create({ ...fields(body), name: body.name }, avatarOf(body));
    const { character } = await ctx.library.require(row.id);
    reply.code(201);
    return characterJson(row, character);
  });

  app.patch<IdParams>('/v1/characters/:id', async (req) => {
    const body = parse(CharacterUpdateSchema, req.body);
    const row = await ctx.library.update(req.params.id, fields(body), avatarOf(body));
    const { character } = await ctx.library.require(row.id);
    return characterJson(row, character);
  });

  app.delete<IdParams>('/v1/characters/:id', async (req) => {
    if (!ctx.library.delete(req.params.id)) throw new ApiError(404, `no character with id ${JSON.stringify(req.params.id)}`, 'not_found_error', 'id', 'character_not_found');
    return { id: req.params.id, object: 'character', deleted: true };
  });

  app.get<IdParams & { Querystring: Record<string, unknown> }>('/v1/characters/:id/export', async (req, reply) => {
    const { format, held_out } = parse(ExportQuerySchema, req.query);
    const out = await ctx.library.exportCard(req.params.id, format, held_out);
    reply.type(out.mime);
    // The file name is the validated id: nothing else from the request reaches it.
    reply.header('content-disposition', `attachment; filename="${out.filename}"`);
    return reply.send(Buffer.from(out.bytes.buffer, out.bytes.byteOffset, out.bytes.byteLength));
  });

  // Card upload: in its own scope so every content type arrives as raw bytes (a JSON card must
  // reach the card reader as bytes, not as the app's parsed JSON), under the card size limit.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.limits.cardBodyBytes }, (_req, body, done) => done(null, body));
    scope.post('/v1/characters/import', { bodyLimit: ctx.limits.cardBodyBytes }, async (req, reply) => {
      const body = req.body;
      if (!Buffer.isBuffer(body) || body.length === 0) throw new ApiError(400, 'the request has no card: send a PNG, JSON or CHARX card as the body or as a multipart "file"', 'invalid_request_error', 'file', 'missing_file');
      const bytes = await uploadedBytes(req.headers['content-type'], body);
      const { row, warnings } = await ctx.library.importCard(bytes);
      const { character } = await ctx.library.require(row.id);
      reply.code(201);
      return { ...characterJson(row, character), warnings };
    });
  });
}
