// The hostile-input row of `npm run bench:serve`: N bad requests of each kind against the running
// server (malformed and wrongly typed bodies, oversized bodies and URLs, broken images and cards,
// nesting and archive bombs, half-sent bodies), counted by status. Target: no 5xx, every answer
// the expected 4xx, and the server's peak RSS bounded (stated in the notes). The server reports
// its own peak RSS over IPC (serve.bench.ts, `peak-rss`).
import { connect } from 'node:net';
import { deflateRawSync } from 'node:zlib';

export interface HostileKind {
  name: string;
  /** Status every answer should have. */
  expect: number;
  /** Sends one request; resolves to the status (0: the connection ended without one). */
  send: (url: string, model: string, i: number) => Promise<number>;
}

export interface HostileResult {
  name: string;
  expect: number;
  requests: number;
  byStatus: Map<number, number>;
  fiveXx: number;
  wallS: number;
  peakRssBytes: number;
}

const post = async (url: string, body: string | Uint8Array, type = 'application/json'): Promise<number> => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
  await res.arrayBuffer();
  return res.status;
};
const get = async (url: string): Promise<number> => {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
};
const chat = (model: string, content: unknown) => JSON.stringify({ model, messages: [{ role: 'user', content }], max_tokens: 4 });

/** A zip with card.json and one stored entry whose directory claims `claimed` bytes. */
function charxClaiming(claimed: number): Uint8Array {
  const name = Buffer.from('assets/x.bin');
  const data = deflateRawSync(Buffer.alloc(64));
  const card = Buffer.from('{"name":"Bomb"}');
  const entries: { name: Buffer; comp: Buffer; size: number; method: number; offset: number }[] = [];
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [n, comp, size, method] of [[Buffer.from('card.json'), card, card.length, 0], [name, data, claimed, 8]] as const) {
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(0, 14); // CRC left 0: the size check refuses before any CRC is read
    local.writeUInt32LE(comp.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(n.length, 26);
    entries.push({ name: n, comp, size, method, offset });
    parts.push(local, n, comp);
    offset += 30 + n.length + comp.length;
  }
  const cdStart = offset;
  for (const e of entries) {
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(e.method, 10);
    cd.writeUInt32LE(e.comp.length, 20);
    cd.writeUInt32LE(e.size, 24);
    cd.writeUInt16LE(e.name.length, 28);
    cd.writeUInt32LE(e.offset, 42);
    parts.push(cd, e.name);
    offset += 46 + e.name.length;
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(offset - cdStart, 12);
  end.writeUInt32LE(cdStart, 16);
  parts.push(end);
  return new Uint8Array(Buffer.concat(parts));
}

/** Headers and the start of a body, then silence: the server's request timeout must close it. */
function halfSentBody(url: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((done) => {
    const sock = connect(Number(port), hostname);
    let text = '';
    sock.on('connect', () => sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":"'));
    sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => done(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

/** Headers announcing a body over the limit: the server must answer 413 without waiting for it
 * (sending the 32 MiB would measure the load generator, and a server that answers early resets
 * the upload, which fetch reports as a failure rather than the status). */
function oversizedBody(url: string, bytes: number): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((done) => {
    const sock = connect(Number(port), hostname);
    let text = '';
    sock.on('connect', () => sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${bytes}\r\n\r\n{"model":`));
    sock.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (/\r\n\r\n/.test(text)) sock.destroy();
    });
    sock.on('error', () => {});
    sock.on('close', () => done(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

const DEEP_CARD = `{"spec":"chara_card_v2","data":{"name":"Deep","extensions":{"x":${'['.repeat(1000)}${']'.repeat(1000)}}}}`;
const FAKE_JPEG_URI = `data:image/jpeg;base64,${Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4]).toString('base64')}`;
const HTML_URI = `data:image/png;base64,${Buffer.from('<html><script>alert(1)</script></html>').toString('base64')}`;
const PNG_SIG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 1, 2, 3]);

/** The kinds, each with the status a correct server answers. `bigBody` is over the JSON limit. */
export function hostileKinds(bigBodyBytes: number): HostileKind[] {
  return [
    { name: 'malformed JSON body', expect: 400, send: (u, m) => post(`${u}/v1/chat/completions`, `{"model":"${m}","messages":[`) },
    { name: 'chat body with wrongly typed fields', expect: 400, send: (u, m, i) => post(`${u}/v1/chat/completions`, JSON.stringify({ model: m, messages: i % 2 ? 'hi' : [{ role: 7, content: {} }], max_tokens: '4' })) },
    { name: 'unknown model', expect: 404, send: (u, _m, i) => post(`${u}/v1/chat/completions`, chat(`nobody-${i}`, 'hi')) },
    { name: 'image part that is no image', expect: 400, send: (u, m) => post(`${u}/v1/chat/completions`, chat(m, [{ type: 'image_url', image_url: { url: HTML_URI } }])) },
    { name: `Content-Length over the limit (${(bigBodyBytes / 2 ** 20).toFixed(0)} MiB)`, expect: 413, send: (u) => oversizedBody(u, bigBodyBytes) },
    { name: 'image request with a bad size', expect: 400, send: (u) => post(`${u}/v1/images/generations`, JSON.stringify({ prompt: 'x', size: '99999x3' })) },
    { name: 'id over 100 characters (414)', expect: 414, send: (u, _m, i) => get(`${u}/v1/characters/${'a'.repeat(150 + i)}`) },
    { name: 'bad percent-encoding', expect: 400, send: (u) => get(`${u}/v1/chats/%E0%A4%A`) },
    { name: 'card nested 1000 levels', expect: 400, send: (u) => post(`${u}/v1/characters/import`, DEEP_CARD) },
    { name: 'PNG card that is no PNG', expect: 400, send: (u) => post(`${u}/v1/characters/import`, PNG_SIG, 'image/png') },
    { name: 'CHARX claiming 200 MiB inflated', expect: 400, send: (u) => post(`${u}/v1/characters/import`, charxClaiming(200 << 20), 'application/zip') },
    {
      name: 'PNG export of a broken avatar',
      expect: 422,
      send: async (u, _m, i) => {
        const res = await fetch(`${u}/v1/characters`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `Broken ${i}`, avatar: FAKE_JPEG_URI }) });
        const { id } = (await res.json()) as { id: string };
        const status = await get(`${u}/v1/characters/${id}/export?format=png`);
        await fetch(`${u}/v1/characters/${id}`, { method: 'DELETE' });
        return status;
      },
    },
    { name: 'half-sent body (all at once; closed by the request timeout)', expect: 408, send: (u) => halfSentBody(u) },
  ];
}

/** Runs every kind: `n` requests each, 8 at a time (the half-sent bodies all at once). */
export async function hostileRound(url: string, model: string, n: number, kinds: HostileKind[], peakRss: () => Promise<number>): Promise<HostileResult[]> {
  const out: HostileResult[] = [];
  for (const k of kinds) {
    await peakRss(); // reset the server's peak to now
    const byStatus = new Map<number, number>();
    const t0 = performance.now();
    const width = k.expect === 408 ? n : 8;
    let next = 0;
    await Promise.all(
      Array.from({ length: width }, async () => {
        while (next < n) {
          const i = next++;
          const status = await k.send(url, model, i).catch(() => 0);
          byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
        }
      }),
    );
    const fiveXx = [...byStatus].filter(([s]) => s >= 500).reduce((a, [, c]) => a + c, 0);
    out.push({ name: k.name, expect: k.expect, requests: n, byStatus, fiveXx, wallS: (performance.now() - t0) / 1000, peakRssBytes: await peakRss() });
  }
  return out;
}

/** The table and the pass line for bench/README.md. */
export function hostileReport(results: HostileResult[], rssBeforeBytes: number, boundBytes: number): { table: string[]; notes: string[]; pass: boolean } {
  const mib = (b: number) => (b / 2 ** 20).toFixed(0);
  const table = [
    '| bad request | requests | answers (status x count) | expected | 5xx | wall | server peak RSS |',
    '|---|---:|---|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.name} | ${r.requests} | ${[...r.byStatus].sort(([a], [b]) => a - b).map(([s, c]) => `${s || 'none'} x ${c}`).join(', ')} | ${r.expect} | ${r.fiveXx} | ${r.wallS.toFixed(1)} s | ${mib(r.peakRssBytes)} MiB |`),
  ];
  const fiveXx = results.reduce((a, r) => a + r.fiveXx, 0);
  const unexpected = results.reduce((a, r) => a + r.requests - (r.byStatus.get(r.expect) ?? 0), 0);
  const peak = Math.max(...results.map((r) => r.peakRssBytes));
  const pass = fiveXx === 0 && unexpected === 0 && peak - rssBeforeBytes < boundBytes;
  const notes = [
    `Hostile input: ${results.reduce((a, r) => a + r.requests, 0)} bad requests, ${fiveXx} answered 5xx (target 0), ${unexpected} with another status than expected (target 0); server RSS ${mib(rssBeforeBytes)} MiB before, peak ${mib(peak)} MiB (target: under ${mib(rssBeforeBytes + boundBytes)} MiB, i.e. less than ${mib(boundBytes)} MiB of growth) — ${pass ? 'pass' : 'FAIL'}.`,
    'The half-sent bodies are all open at once and wait for the default 30 s request timeout (`DEFAULT_TIMEOUTS` in src/serve/app.ts), which answers 408 and closes them.',
  ];
  return { table, notes, pass };
}
