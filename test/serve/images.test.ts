// The content-addressed image store (src/serve/images.ts): dedup, paths only from hashes, and
// no incomplete file under a valid name even when the writer is killed mid-write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, sha256Hex } from '../../src/serve/index.js';
import { runAndKill } from './crash.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'unichar-img-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function storedFiles(root: string): string[] {
  return readdirSync(root)
    .filter((d) => d !== 'tmp')
    .flatMap((d) => readdirSync(join(root, d)).map((f) => join(root, d, f)));
}

test('the same bytes are stored once, under their sha256', async (t) => {
  const root = tempDir(t);
  const store = new ImageStore(root);
  const bytes = new Uint8Array([137, 80, 78, 71, 1, 2, 3]);
  const a = await store.put(bytes);
  const b = await store.put(bytes.slice());
  assert.equal(a.hash, sha256Hex(bytes));
  assert.deepEqual([a.created, b.created], [true, false]);
  assert.equal(b.hash, a.hash);
  assert.deepEqual(storedFiles(root), [join(root, a.hash.slice(0, 2), a.hash)]);
  assert.deepEqual(await store.get(a.hash), bytes);
  assert.equal(await store.verify(a.hash), true);
});

test('concurrent puts of the same bytes all succeed and leave one complete file', async (t) => {
  const root = tempDir(t);
  const store = new ImageStore(root);
  const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
  const results = await Promise.all(Array.from({ length: 8 }, () => store.put(bytes)));
  assert.equal(new Set(results.map((r) => r.hash)).size, 1);
  assert.equal(storedFiles(root).length, 1);
  assert.equal(await store.verify(results[0]!.hash), true);
  assert.deepEqual(readdirSync(join(root, 'tmp')), []);
});

test('only a 64-digit hex hash becomes a path', async (t) => {
  const store = new ImageStore(tempDir(t));
  assert.throws(() => store.pathOf('../../etc/passwd'), /not an image hash/);
  assert.throws(() => store.pathOf('A'.repeat(64)), /not an image hash/);
  assert.equal(await store.get('../x'), undefined);
  assert.equal(await store.has('0'.repeat(64)), false);
});

test('leftover temp files (a write cut short) are removed on open and never readable as images', (t) => {
  const root = tempDir(t);
  new ImageStore(root);
  const partial = join(root, 'tmp', `${'a'.repeat(64)}.123456`);
  writeFileSync(partial, 'half an image');
  const store = new ImageStore(root);
  assert.equal(existsSync(partial), false);
  assert.equal(storedFiles(store.root).length, 0);
});

test('SIGKILL during writes leaves only complete images under valid names', async (t) => {
  const root = tempDir(t);
  const acked = await runAndKill(['images', root], 12);
  const store = new ImageStore(root);
  for (const hash of acked) assert.equal(await store.verify(hash), true, `acknowledged image ${hash} is intact`);
  for (const file of storedFiles(root)) {
    const name = file.split('/').pop()!;
    assert.equal(await store.verify(name), true, `${name} matches its content`);
    assert.equal(statSync(file).size, 256 * 1024);
  }
  assert.deepEqual(readdirSync(join(root, 'tmp')), []);
});
