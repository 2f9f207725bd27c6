// The base a LoRA character folder is applied over (docs/architecture.md, "The character
// runtime"; docs/serving.md 10): the weight files it was customized from, each with its size and
// SHA-256, so a folder is never loaded over a base it was not trained on.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

export interface BaseFileRef {
  /** Absolute path (a relative one is read from the character folder). */
  path: string;
  bytes: number;
  sha256: string;
}

/** The shared part of a LoRA character: the model weights (published key names) and its VAE. */
export interface BaseReference {
  model: BaseFileRef;
  vae: BaseFileRef;
}

// Hashes by path, size and modification time: a server hashes each base file once.
const hashes = new Map<string, string>();

/** SHA-256 of a file, read in 4 MiB blocks (about 1 s per GiB). */
export function fileSha256(path: string): string {
  const st = statSync(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  const known = hashes.get(key);
  if (known) return known;
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  const digest = h.digest('hex');
  hashes.set(key, digest);
  return digest;
}

/** The reference a folder records for one base file. */
export function describeBaseFile(path: string): BaseFileRef {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new Error(`base file ${abs} does not exist`);
  return { path: abs, bytes: statSync(abs).size, sha256: fileSha256(abs) };
}

export function describeBase(modelPath: string, vaePath: string): BaseReference {
  return { model: describeBaseFile(modelPath), vae: describeBaseFile(vaePath) };
}

/**
 * The file a reference names, checked: it exists, has the recorded size, then the recorded
 * SHA-256. Errors name the character folder, the expected base and what was found.
 */
export function checkBaseFile(ref: BaseFileRef, what: string, characterDir: string): string {
  const path = isAbsolute(ref.path) ? ref.path : resolve(characterDir, ref.path);
  const expected = `${path} (${ref.bytes} bytes, sha256 ${ref.sha256})`;
  const refuse = (found: string): never => {
    throw new Error(`${characterDir}: this LoRA character needs the base ${what} ${expected}, but ${found}; point base.${what}.path in its unicharacter.json at the base it was customized from`);
  };
  if (!existsSync(path)) refuse(`${path} does not exist`);
  const size = statSync(path).size;
  if (size !== ref.bytes) refuse(`${path} has ${size} bytes`);
  const sha = fileSha256(path);
  if (sha !== ref.sha256) refuse(`${path} has sha256 ${sha} (a different base of the same size)`);
  return path;
}

/** Validates the shape of a manifest's `base` field (errors name the folder and the field). */
export function parseBaseReference(v: unknown, characterDir: string): BaseReference {
  const file = (x: unknown, what: string): BaseFileRef => {
    const f = x as Partial<BaseFileRef> | undefined;
    if (!f || typeof f.path !== 'string' || typeof f.bytes !== 'number' || typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) {
      throw new Error(`${characterDir}: unicharacter.json base.${what} must be { path, bytes, sha256 } (got ${JSON.stringify(x)})`);
    }
    return { path: f.path, bytes: f.bytes, sha256: f.sha256 };
  };
  const b = v as { model?: unknown; vae?: unknown };
  return { model: file(b?.model, 'model'), vae: file(b?.vae, 'vae') };
}
