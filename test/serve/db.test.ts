// The SQLite state (src/serve/db.ts): migrations, pragmas, foreign keys, and durability of
// acknowledged writes across reopen and across a SIGKILL in the middle of writing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate, Store } from '../../src/serve/index.js';
import { runAndKill } from './crash.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'unichar-db-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const card = JSON.stringify({ spec: 'chara_card_v3', spec_version: '3.0', data: { name: 'A' } });

test('migrations apply once and are idempotent across reopen', (t) => {
  const path = join(tempDir(t), 'state.db');
  const a = new Store(path);
  const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
  assert.equal(a.schemaVersion(), latest);
  assert.equal(migrate(a.db), latest);
  a.insertCharacter({ id: 'a', name: 'A', cardJson: card, avatarHash: null });
  a.close();
  const b = new Store(path);
  assert.equal(b.schemaVersion(), latest);
  assert.equal((b.db.prepare('SELECT COUNT(*) AS n FROM schema_version').get() as { n: number }).n, MIGRATIONS.length);
  assert.equal(b.getCharacter('a')?.name, 'A');
  b.close();
});

test('a database from a newer build is refused', (t) => {
  const path = join(tempDir(t), 'state.db');
  new Store(path).close();
  const raw = new Database(path);
  raw.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (999, ?, 0)').run('future');
  raw.close();
  assert.throws(() => new Store(path), /newer than this build/);
});

test('WAL, synchronous=FULL and foreign keys are on', (t) => {
  const s = new Store(join(tempDir(t), 'state.db'));
  t.after(() => s.close());
  assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(s.db.pragma('synchronous', { simple: true }), 2);
  assert.equal(s.db.pragma('foreign_keys', { simple: true }), 1);
});

test('foreign keys are enforced and deleting a character removes its chats and messages', (t) => {
  const s = new Store(join(tempDir(t), 'state.db'));
  t.after(() => s.close());
  assert.throws(() => s.appendMessages('chat-missing', [{ role: 'user', content: 'hi' }]), { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
  assert.throws(() => s.createChat('nobody'), { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
  s.insertCharacter({ id: 'a', name: 'A', cardJson: card, avatarHash: null });
  const chat = s.createChat('a');
  s.appendMessages(chat.id, [{ role: 'user', content: 'hi' }]);
  const job = s.createJob('train', { steps: 3 }, 'a');
  assert.equal(s.deleteCharacter('a'), true);
  assert.equal(s.getChat(chat.id), undefined);
  assert.equal((s.db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n, 0);
  assert.equal(s.getJob(job.id)?.characterId, null, 'a job outlives its character');
});

test('check constraints refuse bad roles and invalid JSON', (t) => {
  const s = new Store(join(tempDir(t), 'state.db'));
  t.after(() => s.close());
  s.insertCharacter({ id: 'a', name: 'A', cardJson: card, avatarHash: null });
  const chat = s.createChat('a');
  assert.throws(() => s.appendMessages(chat.id, [{ role: 'tool' as 'user', content: 'x' }]), { code: 'SQLITE_CONSTRAINT_CHECK' });
  assert.throws(() => s.insertCharacter({ id: 'b', name: 'B', cardJson: '{not json', avatarHash: null }), { code: 'SQLITE_CONSTRAINT_CHECK' });
});

test('a message acknowledged before close survives reopening; a batch is all or nothing', (t) => {
  const path = join(tempDir(t), 'state.db');
  const a = new Store(path);
  a.insertCharacter({ id: 'a', name: 'A', cardJson: card, avatarHash: null });
  const chat = a.createChat('a');
  const [m] = a.appendMessages(chat.id, [{ role: 'user', content: 'remember me', imageHashes: ['ab'.repeat(32)] }]);
  // A failing batch (second row violates the role check) leaves nothing behind.
  assert.throws(() => a.appendMessages(chat.id, [{ role: 'user', content: 'one' }, { role: 'bad' as 'user', content: 'two' }]));
  a.close();
  const b = new Store(path);
  t.after(() => b.close());
  const rows = b.listMessages(chat.id);
  assert.deepEqual(
    rows.map((r) => [r.id, r.role, r.content, r.imageHashes]),
    [[m!.id, 'user', 'remember me', ['ab'.repeat(32)]]],
  );
});

test('jobs record status and progress', (t) => {
  const s = new Store(join(tempDir(t), 'state.db'));
  t.after(() => s.close());
  const job = s.createJob('eval', { suite: 'rolescape-20' });
  assert.equal(job.status, 'queued');
  s.updateJob(job.id, { status: 'running', progress: { step: 5, loss: 0.5 } });
  const j = s.getJob(job.id)!;
  assert.deepEqual([j.status, j.progress, j.config], ['running', { step: 5, loss: 0.5 }, { suite: 'rolescape-20' }]);
  assert.equal(s.listJobs().length, 1);
});

test('SIGKILL during writes never corrupts the database nor loses an acknowledged message', async (t) => {
  const path = join(tempDir(t), 'state.db');
  const setup = new Store(path);
  setup.insertCharacter({ id: 'a', name: 'A', cardJson: card, avatarHash: null });
  const chat = setup.createChat('a');
  setup.close();

  const acked: string[] = [];
  for (let round = 0; round < 3; round++) {
    acked.push(...(await runAndKill(['messages', path, chat.id], 40 + Math.floor(Math.random() * 40))));
    const s = new Store(path);
    assert.equal(s.integrityCheck(), 'ok', `integrity after kill ${round + 1}`);
    const contents = new Set(s.listMessages(chat.id).map((m) => m.content));
    const count = s.listMessages(chat.id).length;
    s.close();
    assert.equal(count % 3, 0, 'each three-message transaction is all or nothing');
    for (const i of acked) assert.ok(contents.has(`batch ${i} end`), `acknowledged batch ${i} is present after kill ${round + 1}`);
  }
  assert.ok(acked.length >= 120);
});
