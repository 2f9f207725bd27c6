// Images on disk by content: `<root>/<aa>/<sha256>` where aa is the hash's first two hex digits.
// A file appears under its final name only complete (written to `<root>/tmp/`, fsynced, then
// renamed; rename is atomic within one filesystem), so a crash leaves at most a stray temp file,
// never a truncated image under a valid name. The same bytes are stored once.
// Paths are built only from a validated hash: nothing from a request reaches a path unchecked.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sniffImageFormat } from '../data/index.js';

const HASH = /^[0-9a-f]{64}$/;

export function isImageHash(s: string): boolean {
  return HASH.test(s);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const MIME = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif' } as const;

/** `image/png` etc. from the bytes themselves (never from a client's claim); undefined when the
 * bytes are no image format we accept. */
export function imageMime(bytes: Uint8Array): string | undefined {
  const f = sniffImageFormat(bytes);
  return f === 'unknown' ? undefined : MIME[f];
}

export interface PutResult {
  hash: string;
  /** False when the same bytes were already stored. */
  created: boolean;
}

export class ImageStore {
  readonly tmpDir: string;

  constructor(readonly root: string) {
    this.tmpDir = join(root, 'tmp');
    mkdirSync(this.tmpDir, { recursive: true });
    // Temp files are leftovers of writes that never finished (crash): never valid images.
    for (const name of readdirSync(this.tmpDir)) rmSync(join(this.tmpDir, name), { force: true });
  }

  pathOf(hash: string): string {
    if (!isImageHash(hash)) throw new Error(`not an image hash: ${JSON.stringify(hash)}`);
    return join(this.root, hash.slice(0, 2), hash);
  }

  async has(hash: string): Promise<boolean> {
    if (!isImageHash(hash)) return false;
    try {
      return (await stat(this.pathOf(hash))).isFile();
    } catch {
      return false;
    }
  }

  async put(bytes: Uint8Array): Promise<PutResult> {
    const hash = sha256Hex(bytes);
    const final = this.pathOf(hash);
    if (await this.has(hash)) return { hash, created: false };
    mkdirSync(join(this.root, hash.slice(0, 2)), { recursive: true });
    const tmp = join(this.tmpDir, `${hash}.${randomBytes(6).toString('hex')}`);
    try {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // Two writers of the same bytes both rename complete, identical files: either wins.
      await rename(tmp, final);
      await syncDir(join(this.root, hash.slice(0, 2)));
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return { hash, created: true };
  }

  /** The bytes, or undefined when absent. */
  async get(hash: string): Promise<Uint8Array | undefined> {
    if (!(await this.has(hash))) return undefined;
    return new Uint8Array(await readFile(this.pathOf(hash)));
  }

  /** Re-hashes a stored file: true when its bytes still match its name. */
  async verify(hash: string): Promise<boolean> {
    const b = await this.get(hash);
    return b !== undefined && sha256Hex(b) === hash;
  }
}

/** Makes a rename durable: the directory entry itself is fsynced (POSIX). */
async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await fh?.close();
  }
}
