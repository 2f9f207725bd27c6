// GET /v1/models: each character is a model; its id is the character id (docs/ecosystem.md 4).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { ApiError } from '../errors.js';
import { isCharacterId } from '../characters.js';

const modelJson = (r: { id: string; createdAt: number }) => ({ id: r.id, object: 'model', created: Math.floor(r.createdAt / 1000), owned_by: 'unicharacter' });

export function modelRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/v1/models', async () => ({ object: 'list', data: ctx.store.listCharacters().map(modelJson) }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const row = isCharacterId(req.params.id) ? ctx.store.getCharacter(req.params.id) : undefined;
    if (!row) throw new ApiError(404, `the model ${JSON.stringify(req.params.id)} does not exist`, 'not_found_error', 'model', 'model_not_found');
    return modelJson(row);
  });
}
