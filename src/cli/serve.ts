// `unicharacter serve`: the OpenAI-compatible API (and web UI when built) over a data folder.
import { join } from 'node:path';
import { ModelChatEngine, checkBindHost, startServer } from '../serve/index.js';

export interface ServeOptions {
  host: string;
  port: number;
  dataDir: string;
  apiKey?: string;
  /** Stateless chats and image links (docs/serving.md 4-5). */
  chats?: { keepStateless: boolean; imageLinks: boolean };
  allowRemote?: boolean;
  /** Replies decoded together (docs/serving.md 9). */
  maxBatch?: number;
  /** KV bytes of recent prompts each loaded model keeps (docs/serving.md 9). */
  prefixCacheBytes?: number;
}

export async function runServe(o: ServeOptions): Promise<number> {
  // Refused before any model is opened (server.ts checkBindHost).
  checkBindHost(o.host, o);
  const engine = new ModelChatEngine(join(o.dataDir, 'models'), {
    ...(o.maxBatch !== undefined ? { maxBatch: o.maxBatch } : {}), ...(o.prefixCacheBytes !== undefined ? { prefixCacheBytes: o.prefixCacheBytes } : {}),
  });
  const server = await startServer({ dataDir: o.dataDir, engine, host: o.host, port: o.port, ...(o.apiKey ? { apiKey: o.apiKey } : {}), ...(o.allowRemote ? { allowRemote: true } : {}), ...(o.chats ? { chats: o.chats } : {}) });
  // Listening for the stop signals before saying where it serves: whoever reads that line may stop it at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  for (const w of server.warnings) console.error(w);
  console.log(`UniCharacter is serving on ${server.url} (data in ${o.dataDir})`);
  console.log(`  OpenAI-compatible API: ${server.url}/v1  (models: ${engine.models().map((m) => m.id).join(', ') || 'none yet'})`);
  await stopped;
  console.log('\nshutting down');
  await server.close();
  return 0;
}
