// The server's state in SQLite (better-sqlite3): characters, chats, messages, jobs.
// Durability rules (docs/architecture.md "Durability": a crash at any moment never corrupts the
// database or loses a message that was acknowledged):
// - WAL journal: readers never block the writer, and a torn write is rolled back on reopen;
// - synchronous=FULL: a commit is on disk (WAL fsynced) before the call returns, so anything
//   acknowledged after a write call returns survives a crash or power loss;
// - every multi-statement change is one transaction;
// - foreign keys on: a message never points at a missing chat.
// better-sqlite3 is synchronous; each statement here is small, so it never holds the event loop
// for long. Image bytes live on disk (images.ts); rows keep only their sha256 hashes.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** Numbered migrations. Append only: a shipped migration is never edited. */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'characters, chats, messages, jobs',
    sql: `
      CREATE TABLE characters (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        card_json   TEXT NOT NULL CHECK (json_valid(card_json)),
        avatar_hash TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      );
      CREATE TABLE chats (
        id           TEXT PRIMARY KEY,
        character_id TEXT NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
        title        TEXT NOT NULL DEFAULT '',
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
      );
      CREATE INDEX chats_by_character ON chats(character_id, updated_at);
      CREATE TABLE messages (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id      TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        role         TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content      TEXT NOT NULL,
        image_hashes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(image_hashes)),
        created_at   INTEGER NOT NULL
      );
      CREATE INDEX messages_by_chat ON messages(chat_id, id);
      CREATE TABLE jobs (
        id           TEXT PRIMARY KEY,
        kind         TEXT NOT NULL CHECK (kind IN ('train', 'eval')),
        status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        character_id TEXT REFERENCES characters(id) ON DELETE SET NULL,
        config       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
        progress     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(progress)),
        error        TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
      );
      CREATE INDEX jobs_by_status ON jobs(status, created_at);
    `,
  },
  {
    // Jobs run by the server (jobs.ts): customization, GRPO and evaluation kinds, and the
    // 'interrupted' status a restart gives a job that was running when the server died. SQLite
    // cannot change a CHECK in place, so the table is rebuilt (nothing references jobs).
    version: 2,
    name: 'job kinds customize, grpo; status interrupted',
    sql: `
      CREATE TABLE jobs_v2 (
        id           TEXT PRIMARY KEY,
        kind         TEXT NOT NULL CHECK (kind IN ('train', 'eval', 'customize', 'grpo')),
        status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        character_id TEXT REFERENCES characters(id) ON DELETE SET NULL,
        config       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
        progress     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(progress)),
        error        TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
      );
      INSERT INTO jobs_v2 (id, kind, status, character_id, config, progress, error, created_at, updated_at)
        SELECT id, kind, status, character_id, config, progress, error, created_at, updated_at FROM jobs;
      DROP TABLE jobs;
      ALTER TABLE jobs_v2 RENAME TO jobs;
      CREATE INDEX jobs_by_status ON jobs(status, created_at);
    `,
  },
];

export type Role = 'system' | 'user' | 'assistant';
export type JobKind = 'train' | 'eval' | 'customize' | 'grpo';
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export interface CharacterRow {
  id: string;
  name: string;
  cardJson: string;
  avatarHash: string | null;
  createdAt: number;
  updatedAt: number;
}
export interface ChatRow {
  id: string;
  characterId: string;
  title: string;
  createdAt: number;
  updatedAt: number;
}
export interface MessageRow {
  id: number;
  chatId: string;
  role: Role;
  content: string;
  imageHashes: string[];
  createdAt: number;
}
export interface JobRow {
  id: string;
  kind: JobKind;
  status: JobStatus;
  characterId: string | null;
  config: unknown;
  progress: unknown;
  error: string | null;
  createdAt: number;
  updatedAt: number;
}
export interface NewMessage {
  role: Role;
  content: string;
  imageHashes?: string[];
}

type Raw = Record<string, unknown>;
const characterOf = (r: Raw): CharacterRow => ({
  id: r.id as string,
  name: r.name as string,
  cardJson: r.card_json as string,
  avatarHash: (r.avatar_hash as string | null) ?? null,
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
});
const chatOf = (r: Raw): ChatRow => ({ id: r.id as string, characterId: r.character_id as string, title: r.title as string, createdAt: r.created_at as number, updatedAt: r.updated_at as number });
const messageOf = (r: Raw): MessageRow => ({
  id: r.id as number,
  chatId: r.chat_id as string,
  role: r.role as Role,
  content: r.content as string,
  imageHashes: JSON.parse(r.image_hashes as string) as string[],
  createdAt: r.created_at as number,
});
const jobOf = (r: Raw): JobRow => ({
  id: r.id as string,
  kind: r.kind as JobKind,
  status: r.status as JobStatus,
  characterId: (r.character_id as string | null) ?? null,
  config: JSON.parse(r.config as string),
  progress: JSON.parse(r.progress as string),
  error: (r.error as string | null) ?? null,
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
});

/** Applies the migrations not yet recorded in `schema_version`, each in its own transaction.
 * Running it again is a no-op; a database from a newer build is refused rather than guessed at. */
export function migrate(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const current = (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_version').get() as { v: number }).v;
  const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
  if (current > latest) throw new Error(`database schema version ${current} is newer than this build knows (${latest})`);
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    })();
  }
  return latest;
}

export class Store {
  readonly db: Database.Database;

  constructor(readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  schemaVersion(): number {
    return (this.db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number }).v;
  }

  integrityCheck(): string {
    return this.db.pragma('integrity_check', { simple: true }) as string;
  }

  // ---- characters ----
  insertCharacter(c: { id: string; name: string; cardJson: string; avatarHash: string | null }): CharacterRow {
    const now = Date.now();
    this.db.prepare('INSERT INTO characters (id, name, card_json, avatar_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(c.id, c.name, c.cardJson, c.avatarHash, now, now);
    return { ...c, createdAt: now, updatedAt: now };
  }

  updateCharacter(id: string, c: { name: string; cardJson: string; avatarHash: string | null }): CharacterRow | undefined {
    const r = this.db.prepare('UPDATE characters SET name = ?, card_json = ?, avatar_hash = ?, updated_at = ? WHERE id = ?').run(c.name, c.cardJson, c.avatarHash, Date.now(), id);
    return r.changes ? this.getCharacter(id) : undefined;
  }

  getCharacter(id: string): CharacterRow | undefined {
    const r = this.db.prepare('SELECT * FROM characters WHERE id = ?').get(id) as Raw | undefined;
    return r && characterOf(r);
  }

  hasCharacter(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM characters WHERE id = ?').get(id) !== undefined;
  }

  /** Without the card JSON: listings stay small however large the cards are. */
  listCharacters(): Omit<CharacterRow, 'cardJson'>[] {
    const rows = this.db.prepare('SELECT id, name, avatar_hash, created_at, updated_at FROM characters ORDER BY created_at, id').all() as Raw[];
    return rows.map((r) => {
      const { cardJson: _c, ...rest } = characterOf({ ...r, card_json: '' });
      return rest;
    });
  }

  deleteCharacter(id: string): boolean {
    return this.db.prepare('DELETE FROM characters WHERE id = ?').run(id).changes > 0;
  }

  // ---- chats and messages ----
  createChat(characterId: string, title = ''): ChatRow {
    const now = Date.now();
    const id = `chat-${randomUUID()}`;
    this.db.prepare('INSERT INTO chats (id, character_id, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run(id, characterId, title, now, now);
    return { id, characterId, title, createdAt: now, updatedAt: now };
  }

  getChat(id: string): ChatRow | undefined {
    const r = this.db.prepare('SELECT * FROM chats WHERE id = ?').get(id) as Raw | undefined;
    return r && chatOf(r);
  }

  listChats(characterId?: string): ChatRow[] {
    const rows = characterId
      ? (this.db.prepare('SELECT * FROM chats WHERE character_id = ? ORDER BY updated_at DESC, id').all(characterId) as Raw[])
      : (this.db.prepare('SELECT * FROM chats ORDER BY updated_at DESC, id').all() as Raw[]);
    return rows.map(chatOf);
  }

  deleteChat(id: string): boolean {
    return this.db.prepare('DELETE FROM chats WHERE id = ?').run(id).changes > 0;
  }

  /** Appends messages in one transaction; when this returns they are on disk. */
  appendMessages(chatId: string, messages: readonly NewMessage[]): MessageRow[] {
    const insert = this.db.prepare('INSERT INTO messages (chat_id, role, content, image_hashes, created_at) VALUES (?, ?, ?, ?, ?)');
    const touch = this.db.prepare('UPDATE chats SET updated_at = ? WHERE id = ?');
    return this.db.transaction(() => {
      const now = Date.now();
      const out = messages.map((m) => {
        const hashes = m.imageHashes ?? [];
        const r = insert.run(chatId, m.role, m.content, JSON.stringify(hashes), now);
        return { id: Number(r.lastInsertRowid), chatId, role: m.role, content: m.content, imageHashes: hashes, createdAt: now };
      });
      touch.run(now, chatId);
      return out;
    })();
  }

  listMessages(chatId: string): MessageRow[] {
    return (this.db.prepare('SELECT * FROM messages WHERE chat_id = ? ORDER BY id').all(chatId) as Raw[]).map(messageOf);
  }

  // ---- jobs ----
  createJob(kind: JobKind, config: unknown = {}, characterId: string | null = null): JobRow {
    const now = Date.now();
    const id = `job-${randomUUID()}`;
    this.db
      .prepare("INSERT INTO jobs (id, kind, status, character_id, config, progress, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?, '{}', ?, ?)")
      .run(id, kind, characterId, JSON.stringify(config), now, now);
    return this.getJob(id)!;
  }

  updateJob(id: string, change: { status?: JobStatus; progress?: unknown; error?: string | null }): JobRow | undefined {
    const cur = this.getJob(id);
    if (!cur) return undefined;
    this.db
      .prepare('UPDATE jobs SET status = ?, progress = ?, error = ?, updated_at = ? WHERE id = ?')
      .run(change.status ?? cur.status, JSON.stringify(change.progress ?? cur.progress), change.error === undefined ? cur.error : change.error, Date.now(), id);
    return this.getJob(id);
  }

  getJob(id: string): JobRow | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Raw | undefined;
    return r && jobOf(r);
  }

  listJobs(): JobRow[] {
    return (this.db.prepare('SELECT * FROM jobs ORDER BY created_at DESC, id').all() as Raw[]).map(jobOf);
  }
}
