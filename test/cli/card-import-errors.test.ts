// The CLI's card importer (`unicharacter demo --character <card>`, src/cli/demo.ts) on broken
// card files, as a user runs it: for each kind of damage the command exits non-zero before any
// training, and its stderr is one `error:` line that names the file (docs/ecosystem.md 1.1),
// without a JavaScript stack or internals. importCard's own errors are tested in
// test/data/cards/cards-hostile.test.ts; this runs the real command.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';
import sharp from 'sharp';
import { encodePngChunks, readPngChunks } from '../../src/data/cards/index.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'cli-card-errors-'));
after(() => rmSync(work, { recursive: true, force: true }));

const enc = (s: string) => new TextEncoder().encode(s);
const png = new Uint8Array(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#336699' } }).png().toBuffer());
/** The PNG with one more tEXt chunk before IEND. */
const withText = (keyword: string, text: string): Uint8Array => {
  const chunks = readPngChunks(png);
  chunks.splice(chunks.length - 1, 0, { type: 'tEXt', data: enc(`${keyword}\0${text}`) });
  return encodePngChunks(chunks);
};
const cardJson = (data: unknown) => JSON.stringify({ spec: 'chara_card_v2', spec_version: '2.0', data });
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** File name → bytes, each broken in its own way, and what its error says. */
const CASES: [string, Uint8Array, RegExp][] = [
  ['bad.json', enc('{"spec": "chara_card_v2", "data": {'), /not valid JSON/],
  ['empty.json', new Uint8Array(0), /not valid JSON/],
  ['list.json', enc('[1, 2]'), /must be a JSON object/],
  ['nameless.json', enc(cardJson({ name: 5 })), /field data\.name/],
  ['deep.json', enc(`{"spec":"chara_card_v2","data":{"name":"D","extensions":{"x":${'['.repeat(2000)}${']'.repeat(2000)}}}}`), /nests 2003 levels deep, over the limit/],
  ['truncated.png', png.slice(0, 20), /truncated/],
  ['plain.png', png, /no character card/],
  ['bad-base64.png', withText('chara', '!!!not base64'), /base64/],
  ['bad-inner-json.png', withText('chara', b64('{oops')), /not valid JSON/],
  ['bad.charx', enc('PK\x03\x04 not really a zip'), /not a readable zip archive/],
  ['no-card.charx', zipSync({ 'readme.txt': enc('hello') }), /no card\.json/],
  ['bad-card.charx', zipSync({ 'card.json': enc('{nope') }), /not valid JSON/],
  // The wrong extension: JSON bytes named .png, PNG bytes named .json, text named .txt.
  ['json-named.png', enc('{"spec": "chara_card_v2", "data": {'), /not valid JSON/],
  ['png-named.json', png, /no character card/],
  ['notes.txt', enc('just some text'), /not valid JSON/],
];

type Result = { status: number | null; stderr: string };
function demo(character: string, out: string): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, 'demo', '--quick', '--character', character, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stderr }));
  });
}

/** Exit non-zero, one `error:` line naming `path`, nothing trained. */
function assertRefusedNaming(r: Result, path: string, out: string, re: RegExp): void {
  assert.notEqual(r.status, 0, `${path}: exit status ${r.status}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${path}: one line on stderr, got ${JSON.stringify(r.stderr)}`);
  assert.ok(lines[0]!.startsWith('error: '), r.stderr);
  assert.ok(lines[0]!.includes(path), `${path} is not named in ${JSON.stringify(lines[0])}`);
  assert.match(lines[0]!, re);
  assert.doesNotMatch(lines[0]!, /TypeError|RangeError|undefined|is not a function|Cannot read|\bat .*\.js:\d+/);
  assert.ok(!existsSync(out), `${path}: no run folder was made`);
}

test('every broken card file: non-zero exit, and the error names the file', async () => {
  const files = CASES.map(([name, bytes, re]) => {
    const path = join(work, name);
    writeFileSync(path, bytes);
    return { path, re, out: join(work, `out-${name}`) };
  });
  // Two at a time (each run loads libtorch).
  for (let i = 0; i < files.length; i += 2) {
    const batch = files.slice(i, i + 2);
    const results = await Promise.all(batch.map((f) => demo(f.path, f.out)));
    batch.forEach((f, j) => assertRefusedNaming(results[j]!, f.path, f.out, f.re));
  }
});

test('a missing card file and a folder that is no character are named too', async () => {
  const missing = join(work, 'no-such-card.json');
  assertRefusedNaming(await demo(missing, join(work, 'out-missing')), missing, join(work, 'out-missing'), /no such file or folder/);
  const folder = join(work, 'not-a-character');
  mkdirSync(folder);
  const r = await demo(folder, join(work, 'out-folder'));
  assertRefusedNaming(r, folder, join(work, 'out-folder'), /missing/);
});
