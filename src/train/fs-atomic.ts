// Crash-safe file operations for run directories: write to a temporary name, fsync, rename, and
// fsync the parent directory, so after a crash at any moment a path holds either its old
// content or its new content, never a torn mix (POSIX rename is atomic within a filesystem).
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** fsyncs a directory so a rename or a new entry in it survives a power loss (best effort off Linux). */
export function fsyncDir(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms (Windows) cannot open or sync a directory; the rename is still atomic.
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** fsyncs one file by path. */
export function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes the whole buffer (writeSync may write less than asked). */
export function writeAllSync(fd: number, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/** Replaces `path` with `data` atomically: temp file in the same folder, fsync, rename, fsync folder. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    writeAllSync(fd, data);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** Every regular file under dir (relative paths, '/'-separated, sorted) with its size in bytes. */
export function listFiles(dir: string, prefix = ''): { path: string; bytes: number }[] {
  const out: { path: string; bytes: number }[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(full, rel));
    else if (e.isFile()) out.push({ path: rel, bytes: statSync(full).size });
  }
  return out;
}

/** fsyncs every file under dir and every folder (deepest first), before dir is renamed into place. */
export function fsyncTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) fsyncTree(full);
    else if (e.isFile()) fsyncFile(full);
  }
  fsyncDir(dir);
}
