// Serving the web UI (src/serve/routes/web.ts) without a browser: the built index and assets at /
// with their types, a how-to-build page when there is no build, public even with an API key,
// and nothing outside the build folder reachable.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type ChatEngine, type RunningServer } from '../../src/serve/index.js';

const engine: ChatEngine = {
  models: () => [],
  chat: async () => ({ text: '', usage: { promptTokens: 0, completionTokens: 0 } }),
  generateImage: async () => ({ images: [] }),
};

async function withWebDir<T>(webDir: string, f: () => Promise<T>): Promise<T> {
  const old = process.env.UNICHAR_WEB_DIR;
  process.env.UNICHAR_WEB_DIR = webDir;
  try {
    return await f();
  } finally {
    if (old === undefined) delete process.env.UNICHAR_WEB_DIR;
    else process.env.UNICHAR_WEB_DIR = old;
  }
}

describe('with a build', () => {
  let dir: string;
  let server: RunningServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'web-static-'));
    const web = join(dir, 'web');
    mkdirSync(join(web, 'assets'), { recursive: true });
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>ui</title><script type="module" src="./assets/app-1.js"></script>');
    writeFileSync(join(web, 'assets', 'app-1.js'), 'console.log(1)');
    writeFileSync(join(dir, 'secret.txt'), 'SECRET-CONTENT');
    server = await withWebDir(web, () => startServer({ dataDir: join(dir, 'data'), engine, port: 0, apiKey: 'k-123' }));
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('/ and /index.html serve the UI, without the API key', async () => {
    for (const path of ['/', '/index.html']) {
      const res = await fetch(server.url + path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      assert.match(await res.text(), /<title>ui<\/title>/);
    }
  });

  test('assets are served with their type and a long cache life', async () => {
    const res = await fetch(`${server.url}/assets/app-1.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(await res.text(), 'console.log(1)');
  });

  test('the API still needs the key', async () => {
    assert.equal((await fetch(`${server.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer k-123' } })).status, 200);
  });

  test('nothing outside the build folder, and unknown files fall through to the API 404', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/.hidden', '/nope.js']) {
      const res = await fetch(server.url + path, { headers: { authorization: 'Bearer k-123' } });
      assert.equal(res.status, 404, path);
      assert.ok(!(await res.text()).includes('SECRET-CONTENT'), path);
    }
  });

  test('other methods are the API\'s business', async () => {
    const res = await fetch(`${server.url}/`, { method: 'POST', headers: { authorization: 'Bearer k-123', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unknown_url');
  });
});

describe('without a build', () => {
  let dir: string;
  let server: RunningServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'web-static-'));
    server = await withWebDir(join(dir, 'no-such-dist'), () => startServer({ dataDir: join(dir, 'data'), engine, port: 0 }));
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('/ says how to build the UI', async () => {
    const res = await fetch(`${server.url}/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /npm run build:web/);
    assert.equal((await fetch(`${server.url}/assets/x.js`)).status, 404);
  });
});
