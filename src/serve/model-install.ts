// Installing a character model folder at `<modelsDir>/<id>`, where ModelChatEngine serves it, so
// that a crash (kill -9, power loss) at any moment leaves a complete model folder: the previous
// one or the new one, never none and never a half-copied one. The folder names in the staging
// folder (same filesystem as modelsDir, so renames are atomic) are the journal:
//
//   1. copy     src -> <staging>/<id>.copying-<tag>, then every file and folder fsync'd
//   2. ready    rename to <id>.ready-<tag>: from here the new copy is complete ('copied')
//   3. aside    rename <models>/<id> -> <staging>/<id>.old-<tag>, if a model is installed ('moved-aside')
//   4. commit   rename <id>.ready-<tag> -> <models>/<id> ('committed')
//   5. clean    remove <id>.old-<tag> ('cleaned')
//
// Each rename is followed by an fsync of both folders. recoverInstalls, run at server start,
// finishes or undoes an install a crash cut short, keeping the newest complete copy: a ready copy
// is committed (steps 3-5 done now), else an old copy whose place is empty is put back; copies
// still being written (.copying-) and anything else in the staging folder are removed.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CHARACTER_MODEL_FILES } from '../character/index.js';
import { fsyncDir, fsyncTree } from '../train/index.js';

/** The moments between the steps above, after which `onPhase` is called (crash tests stop there). */
export type InstallPhase = 'copied' | 'moved-aside' | 'committed' | 'cleaned';

export interface InstallOptions {
  /** Called after each step; the crash tests kill the process inside it. */
  onPhase?: (phase: InstallPhase) => void;
}

const STAGED = /^(.+)\.(copying|ready|old)-([0-9a-f]{12})$/;

/** Renames and makes the rename durable in both folders. */
function durableRename(from: string, to: string, dirs: string[]): void {
  renameSync(from, to);
  for (const d of dirs) fsyncDir(d);
}

/** Installs the character model folder `src` as `<modelsDir>/<id>` (steps above). Readers see
 * the old folder or the new one; on an error the previous model stays (or is put back). */
export async function installModel(src: string, modelsDir: string, id: string, stagingDir: string, o: InstallOptions = {}): Promise<string> {
  if (!existsSync(join(src, CHARACTER_MODEL_FILES.manifest))) throw new Error(`${src} is not a character model folder`);
  mkdirSync(stagingDir, { recursive: true });
  mkdirSync(modelsDir, { recursive: true });
  const tag = randomBytes(6).toString('hex');
  const copying = join(stagingDir, `${id}.copying-${tag}`);
  const ready = join(stagingDir, `${id}.ready-${tag}`);
  const old = join(stagingDir, `${id}.old-${tag}`);
  const final = join(modelsDir, id);
  const both = [stagingDir, modelsDir];
  try {
    await cp(src, copying, { recursive: true });
    fsyncTree(copying);
    durableRename(copying, ready, [stagingDir]);
  } catch (e) {
    rmSync(copying, { recursive: true, force: true });
    throw e;
  }
  o.onPhase?.('copied');
  let moved = false;
  try {
    if (existsSync(final)) {
      durableRename(final, old, both);
      moved = true;
      o.onPhase?.('moved-aside');
    }
    durableRename(ready, final, both);
  } catch (e) {
    if (moved && !existsSync(final)) durableRename(old, final, both); // put the previous model back
    rmSync(ready, { recursive: true, force: true });
    throw e;
  }
  o.onPhase?.('committed');
  rmSync(old, { recursive: true, force: true });
  o.onPhase?.('cleaned');
  return final;
}

export interface RecoveryReport {
  /** Ids whose ready copy was installed now (the crash came after step 2). */
  completed: string[];
  /** Ids whose previous model was put back (an old copy with no model in its place). */
  restored: string[];
  /** Names removed from the staging folder (incomplete copies, superseded copies, leftovers). */
  removed: string[];
}

/** Server start: finishes or undoes the installs a crash cut short (see the steps above), then
 * empties the staging folder. */
export function recoverInstalls(modelsDir: string, stagingDir: string): RecoveryReport {
  const report: RecoveryReport = { completed: [], restored: [], removed: [] };
  if (!existsSync(stagingDir)) return report;
  mkdirSync(modelsDir, { recursive: true });
  const both = [stagingDir, modelsDir];
  const byId = new Map<string, { ready: string[]; old: string[] }>();
  for (const name of readdirSync(stagingDir).sort()) {
    const m = STAGED.exec(name);
    if (!m || m[2] === 'copying') continue; // removed below
    const e = byId.get(m[1]!) ?? { ready: [], old: [] };
    (m[2] === 'ready' ? e.ready : e.old).push(name);
    byId.set(m[1]!, e);
  }
  for (const [id, e] of byId) {
    const final = join(modelsDir, id);
    const ready = e.ready[0];
    if (ready) {
      // Complete new copy: the install goes through (steps 3 and 4 now; step 5 below).
      if (existsSync(final)) durableRename(final, join(stagingDir, `${id}.old-${randomBytes(6).toString('hex')}`), both);
      durableRename(join(stagingDir, ready), final, both);
      report.completed.push(id);
    } else if (!existsSync(final) && e.old.length > 0) {
      durableRename(join(stagingDir, e.old.at(-1)!), final, both);
      report.restored.push(id);
    }
  }
  for (const name of readdirSync(stagingDir)) {
    rmSync(join(stagingDir, name), { recursive: true, force: true });
    report.removed.push(name);
  }
  fsyncDir(stagingDir);
  return report;
}
