// The web UI (web/, built by `npm run build:web` into web/dist), served at /. Without a build, /
// answers a short page saying how to build it.
//
// The UI's own files are public even when the server has an API key: they hold no secrets, and the
// browser must load the page before it can ask for the key. So they are answered from an onRequest
// hook registered before the key check (app.ts registers this first), not from routes, which the
// key check would guard. Only GET and HEAD of `/`, `/index.html` and files that exist under the
// build folder are answered here; every /v1/* and /health request goes on to the API untouched.
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** web/dist of this checkout: this file runs from dist/src/serve/routes/ (or src/serve/routes/ under a TS loader). */
export function defaultWebRoot(): string {
  if (process.env.UNICHAR_WEB_DIR) return resolve(process.env.UNICHAR_WEB_DIR);
  const here = fileURLToPath(new URL('.', import.meta.url));
  const repo = here.includes(`${sep}dist${sep}src${sep}`) ? resolve(here, '../../../..') : resolve(here, '../../..');
  return join(repo, 'web', 'dist');
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'";

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>UniCharacter</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem">
<h1>UniCharacter</h1>
<p>The web UI is not built. In the project folder run</p>
<pre>npm run build:web</pre>
<p>and reload this page. The API is up: try <a href="/v1/models">/v1/models</a> and <a href="/health">/health</a>.</p>
</body></html>
`;

/** A request path → a file under root, or undefined (API paths, traversal, odd names). */
function fileFor(root: string, urlPath: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (path === '/' || path === '') path = '/index.html';
  if (path.startsWith('/v1/') || path === '/v1' || path === '/health') return undefined;
  if (path.includes('\0') || path.includes('\\') || path.split('/').some((s) => s === '..' || (s.startsWith('.') && s !== ''))) return undefined;
  const file = resolve(root, `.${path}`);
  return file.startsWith(root + sep) ? file : undefined;
}

export function webRoutes(app: FastifyInstance, opts: { root?: string } = {}): void {
  const root = resolve(opts.root ?? defaultWebRoot());
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return;
    const urlPath = req.url.split('?')[0]!;
    const file = fileFor(root, urlPath);
    if (!file) return;
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) {
      if (file !== join(root, 'index.html')) return; // not ours: on to the API's 404
      return reply.code(200).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    }
    const body = await readFile(file);
    const hashed = file.startsWith(join(root, 'assets') + sep);
    reply
      .code(200)
      .type(MIME[extname(file).toLowerCase()] ?? 'application/octet-stream')
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (file.endsWith('.html')) reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    return reply.send(body);
  });
}
