// Shared by the train tests: temporary run directories and child processes watched line by line.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** A fresh temporary folder, removed after fn (also when it throws). */
export async function withTempDir<T>(fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'uc-train-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Child {
  proc: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first stdout line matching re (rejects if the child exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or signal name) and stderr. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts `node fixtures/<script> ...args`. */
export function startChild(script: string, args: string[]): Child {
  const proc = spawn(process.execPath, [join(FIXTURES, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let buf = '';
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    proc.on('exit', (code, signal) => {
      // let the pipes drain before reporting
      setImmediate(() => resolve({ code, signal, stderr }));
    });
  });
  return {
    proc,
    lines,
    exited,
    waitFor(re: RegExp, timeoutMs = 20_000): Promise<string> {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(timer); resolve(l); } });
        void exited.then((e) => {
          clearTimeout(timer);
          reject(new Error(`child exited (${e.code ?? e.signal}) before a line matching ${re}; stderr: ${e.stderr}`));
        });
      });
    },
  };
}
