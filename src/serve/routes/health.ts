// GET /health: liveness, and for a caller allowed to see it, what the engine has loaded. Never
// needs the API key; when the server has one, a caller without it learns only that the server
// is up (the engine's model list names characters).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { memoryJson } from '../model-memory.js';

export function healthRoutes(app: FastifyInstance, ctx: AppContext, authorized: (req: FastifyRequest) => boolean): void {
  app.get('/health', async (req) => {
    if (!authorized(req)) return { status: 'ok' };
    return {
      status: 'ok',
      schema_version: ctx.store.schemaVersion(),
      engine: { models: await ctx.engine.models(), ...(ctx.engine.memory ? { memory: memoryJson(await ctx.engine.memory()) } : {}) },
      queue: ctx.queue.stats,
    };
  });
}
