// GET /health: liveness and what the engine has loaded. Never needs the API key.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';

export function healthRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/health', async () => ({
    status: 'ok',
    schema_version: ctx.store.schemaVersion(),
    engine: { models: await ctx.engine.models() },
    queue: ctx.queue.stats,
  }));
}
