// Makes sure web/dist holds a build of the current web/ sources before a browser test: when
// web/dist/index.html is missing or older than any source file, it runs what `npm run build:web`
// runs (type check, then vite build) with this Node, so `npm test` needs no separate UI build step.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout root (this file runs from dist/test/web/). */
export const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const WEB = join(REPO, 'web');
export const WEB_DIST = join(WEB, 'dist');

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export function uiBuildIsFresh(): boolean {
  const index = join(WEB_DIST, 'index.html');
  return existsSync(index) && statSync(index).mtimeMs >= newestSource(WEB);
}

export function ensureUiBuilt(): void {
  if (uiBuildIsFresh()) return;
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, args, { cwd: REPO, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`UI build failed: node ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  };
  run([join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(WEB, 'tsconfig.json')]);
  run([join(REPO, 'node_modules/vite/bin/vite.js'), 'build', WEB, '--logLevel', 'warn']);
}
