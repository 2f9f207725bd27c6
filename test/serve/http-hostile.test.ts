// The HTTP server under hostile and clumsy input: where it may listen, the error shape of the
// framework's own refusals, what /health tells a caller without the key, how stored bytes are
// served, and that half-sent requests are closed within a bounded time (raw sockets).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';
import { DEFAULT_LIMITS, checkBindHost, startServer, type RunningServer } from '../../src/serve/index.js';
import { FixedReplyEngine, expectErrorShape, rawExchange } from './hostile-fixtures.js';

const MAIN = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../src/cli/main.js');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'unichar-hostile-'));
}

/** Runs `unicharacter serve ...` until it exits, or until `until` appears in stdout (then SIGTERM). */
function runServe(args: string[], until?: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let stopping = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // Once: a second SIGTERM during shutdown is the operator's "quit now".
      if (until && until.test(stdout) && !stopping) {
        stopping = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('where the server may listen', () => {
  test('loopback is fine without a key; a reachable host needs a key or allowRemote; empty never', () => {
    for (const h of ['127.0.0.1', '127.3.4.5', 'localhost', '::1', '[::1]']) assert.deepEqual(checkBindHost(h, {}), [], h);
    for (const h of ['0.0.0.0', '::', '192.168.1.20', '[::]']) {
      assert.throws(() => checkBindHost(h, {}), /no API key is set.*--allow-remote/, h);
      assert.deepEqual(checkBindHost(h, { apiKey: 'k' }), [], h);
      const w = checkBindHost(h, { allowRemote: true });
      assert.equal(w.length, 1);
      assert.match(w[0]!, /^warning: serving on .* without an API key/);
    }
    for (const h of ['', '  ']) {
      assert.throws(() => checkBindHost(h, {}), /--host is empty/);
      assert.throws(() => checkBindHost(h, { apiKey: 'k', allowRemote: true }), /--host is empty/);
    }
  });

  test('startServer refuses 0.0.0.0 without a key before opening anything', async () => {
    const dir = tempDir();
    try {
      await assert.rejects(startServer({ dataDir: dir, engine: new FixedReplyEngine(), host: '0.0.0.0', port: 0 }), /--allow-remote/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('`serve --host=` and `serve --host 0.0.0.0` refuse to start; --allow-remote starts with a warning', async () => {
    const dir = tempDir();
    try {
      const empty = await runServe(['--host=', '--port', '0', '--data-dir', dir]);
      assert.equal(empty.code, 1);
      assert.match(empty.stderr, /--host is empty/);
      const wild = await runServe(['--host', '0.0.0.0', '--port', '0', '--data-dir', dir]);
      assert.equal(wild.code, 1);
      assert.match(wild.stderr, /no API key is set.*--allow-remote/);
      const allowed = await runServe(['--host', '0.0.0.0', '--port', '0', '--data-dir', dir, '--allow-remote'], /is serving on/);
      assert.match(allowed.stdout, /is serving on http:\/\/0\.0\.0\.0:\d+/);
      assert.match(allowed.stderr, /warning: serving on 0\.0\.0\.0 without an API key/);
      assert.equal(allowed.code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hostile HTTP input', () => {
  let server: RunningServer;
  let dir: string;
  before(async () => {
    dir = tempDir();
    server = await startServer({ dataDir: dir, engine: new FixedReplyEngine(), port: 0, limits: { jsonBodyBytes: 4096 } });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the framework's own 404, 414, 400 and 413 answer in the OpenAI error shape", async () => {
    const cases: [string, RequestInit, number, string][] = [
      [`/v1/characters/${'a'.repeat(150)}`, {}, 414, 'url_too_long'],
      ['/v1/chats/%E0%A4%A', {}, 400, 'invalid_url'],
      ['/v1/nowhere', {}, 404, 'unknown_url'],
      ['/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' }, 400, 'invalid_json'],
      ['/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' }, 400, 'invalid_json'],
      ['/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }, 415, 'unsupported_media_type'],
      ['/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(5000) }) }, 413, 'body_too_large'],
    ];
    for (const [path, init, status, code] of cases) {
      const e = await expectErrorShape(await fetch(server.url + path, init), status, path);
      assert.equal(e.code, code, path);
      assert.doesNotMatch(e.message, /FST_|Fastify|content-type is set|\bat \w+ \(/, path);
    }
  });

  test('malformed HTTP and oversized headers get the error shape on the raw socket', async () => {
    const bad = await rawExchange(server.url, 'GARBAGE\r\n\r\n', 5000);
    assert.match(bad.text, /^HTTP\/1\.1 400 /);
    assert.equal(JSON.parse(bad.text.split('\r\n\r\n')[1]!).error.code, 'bad_request');
    const big = await rawExchange(server.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`, 5000);
    assert.match(big.text, /^HTTP\/1\.1 431 /);
    assert.equal(JSON.parse(big.text.split('\r\n\r\n')[1]!).error.code, 'headers_too_large');
  });

  test('stored bytes that are no image are served as octet-stream with nosniff, images with their sniffed type', async () => {
    const html = new TextEncoder().encode('<html><script>alert(1)</script></html>');
    const { hash } = await server.images.put(html);
    const res = await fetch(`${server.url}/v1/images/${hash}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('content-disposition'), 'attachment');
    assert.match(res.headers.get('content-security-policy') ?? '', /sandbox/);
    // GIF magic with a .png-looking story: the type follows the bytes.
    const gif = new Uint8Array([...new TextEncoder().encode('GIF89a'), 1, 0, 1, 0, 0, 0, 0, 0x3b]);
    const g = await fetch(`${server.url}/v1/images/${(await server.images.put(gif)).hash}`);
    assert.equal(g.headers.get('content-type'), 'image/gif');
    assert.equal(g.headers.get('x-content-type-options'), 'nosniff');
  });

  test('a card nested 1000 levels deep is a 400 naming the nesting; the server keeps serving', async () => {
    const deep = `{"spec":"chara_card_v2","data":{"name":"Deep","extensions":{"x":${'['.repeat(1000)}${']'.repeat(1000)}}}}`;
    const e = await expectErrorShape(await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep }), 400);
    assert.equal(e.code, 'invalid_card');
    assert.match(e.message, /^invalid card: upload: card JSON nests 1003 levels deep, over the limit of 100$/);
    assert.equal((await fetch(`${server.url}/v1/characters`)).status, 200);
  });

  test('a CHARX declaring more than the inflated limit is a 400', async () => {
    const zip = zipSync({ 'card.json': new TextEncoder().encode('{"name":"Z"}'), 'assets/x.bin': new Uint8Array(64) });
    const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
    for (let i = 0; i + 4 <= zip.length; i++) {
      if (dv.getUint32(i, true) === 0x04034b50 && dv.getUint32(i + 22, true) === 64) dv.setUint32(i + 22, 200 << 20, true);
      if (dv.getUint32(i, true) === 0x02014b50 && dv.getUint32(i + 24, true) === 64) dv.setUint32(i + 24, 200 << 20, true);
    }
    const e = await expectErrorShape(await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/zip' }, body: zip }), 400);
    assert.match(e.message, new RegExp(`archive expands to more than ${DEFAULT_LIMITS.cardInflatedBytes} bytes`));
  });

  test('PNG export with an avatar that is no decodable image is a 422 naming the avatar; json export still works', async () => {
    const fakeJpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6]).toString('base64');
    const created = await fetch(`${server.url}/v1/characters`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Broken', avatar: `data:image/jpeg;base64,${fakeJpeg}` }) });
    assert.equal(created.status, 201);
    const { id } = (await created.json()) as { id: string };
    const e = await expectErrorShape(await fetch(`${server.url}/v1/characters/${id}/export?format=png`), 422);
    assert.equal(e.param, 'avatar');
    assert.equal(e.code, 'invalid_image');
    assert.match(e.message, new RegExp(`^character ${id} record avatar: is not a readable image \\(.+\\); replace it`));
    assert.equal((await fetch(`${server.url}/v1/characters/${id}/export?format=json`)).status, 200);
  });

  test('/health without a key set shows the engine', async () => {
    const body = (await (await fetch(`${server.url}/health`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['engine', 'queue', 'schema_version', 'status']);
  });
});

describe('/health when the server has a key', () => {
  let server: RunningServer;
  let dir: string;
  before(async () => {
    dir = tempDir();
    server = await startServer({ dataDir: dir, engine: new FixedReplyEngine(['tessel', 'mira']), port: 0, apiKey: 'sk-health' });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('without the key (or with a wrong one): status only; with it: the engine and its models', async () => {
    for (const headers of [{}, { authorization: 'Bearer sk-wrong' }] as Record<string, string>[]) {
      const res = await fetch(`${server.url}/health`, { headers });
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.deepEqual(JSON.parse(text), { status: 'ok' });
      assert.doesNotMatch(text, /tessel|mira/);
    }
    const full = (await (await fetch(`${server.url}/health`, { headers: { authorization: 'Bearer sk-health' } })).json()) as { engine: { models: { id: string }[] } };
    assert.deepEqual(full.engine.models.map((m) => m.id), ['tessel', 'mira']);
  });
});

describe('request timeouts', () => {
  let server: RunningServer;
  let dir: string;
  const timeouts = { headersMs: 400, requestMs: 800, checkIntervalMs: 100 };
  const engine = new FixedReplyEngine();
  before(async () => {
    dir = tempDir();
    server = await startServer({ dataDir: dir, engine, port: 0, timeouts });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('half-sent headers are answered 408 and closed after the headers timeout', async () => {
    const t0 = Date.now();
    const r = await rawExchange(server.url, 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ', 10_000);
    const took = Date.now() - t0;
    assert.equal(r.closedByServer, true);
    assert.match(r.text, /^HTTP\/1\.1 408 /);
    assert.equal(JSON.parse(r.text.split('\r\n\r\n')[1]!).error.code, 'request_timeout');
    // Node checks every checkIntervalMs: closed within headersMs + two checks (+ scheduling slack).
    assert.ok(took >= timeouts.headersMs - 50 && took < timeouts.headersMs + 2 * timeouts.checkIntervalMs + 1500, `closed after ${took} ms`);
  });

  test('100 half-sent bodies are all closed after the request timeout; the server keeps serving', async () => {
    const t0 = Date.now();
    const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":"';
    const all = await Promise.all(Array.from({ length: 100 }, () => rawExchange(server.url, head, 10_000)));
    const took = Date.now() - t0;
    for (const r of all) {
      assert.equal(r.closedByServer, true);
      assert.match(r.text, /^HTTP\/1\.1 408 /);
    }
    assert.ok(took >= timeouts.requestMs - 50 && took < timeouts.requestMs + 2 * timeouts.checkIntervalMs + 3000, `closed after ${took} ms`);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  test('a reply that takes longer than the request timeout still streams to the end (only receiving is bounded)', async () => {
    engine.tokenDelayMs = 300; // 4 tokens: 1.2 s, past requestMs
    const created = await fetch(`${server.url}/v1/characters`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Slow' }) });
    const { id } = (await created.json()) as { id: string };
    const t0 = Date.now();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: id, stream: true, messages: [{ role: 'user', content: 'hello' }] }),
    });
    const text = await res.text();
    engine.tokenDelayMs = 0;
    assert.ok(Date.now() - t0 > timeouts.requestMs, 'the reply took longer than the request timeout');
    assert.match(text, /data: \[DONE\]/);
    assert.equal((text.match(/"content":"[^"]+"/g) ?? []).length, 4);
  });
});
