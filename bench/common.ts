// Helpers shared by the benchmarks in bench/ (engine, train, model, grpo, serve): statistics, how
// a bench names the machine and its threads, running a part in a child process, and writing a
// bench's section of bench/README.md. Kept in one place so that every bench measures, prints and
// records these the same way. Nothing here loads libtorch: a bench may import this file before it
// sets the thread variables that libtorch reads when it loads.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench when compiled
/** The repository root (this file runs from dist/bench). */
export const root = resolve(here, '..', '..');
/** Cores the benches count with and default their thread counts to. */
export const cores = availableParallelism();

// ---------------------------------------------------------------- statistics
/** Median (mean of the middle two for an even count): the benches' robust central figure. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Quantile q in [0, 1] with linear interpolation between ranks (p50/p95 of latencies); NaN when empty. */
export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

// ---------------------------------------------------------------- the machine
/** The CPU model from /proc/cpuinfo ('unknown' where there is none): figures depend on it. */
export function cpuName(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {}
  return 'unknown';
}

/**
 * The BLAS libraries libtorch loaded (matmul speed depends on them), read from this process's
 * own memory map: call it after libtorch has loaded.
 */
export function blasLibs(): string {
  try {
    const libs = new Set<string>();
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const p = line.split(/\s+/)[5];
      if (p && /blas|mkl_rt|libmkl/i.test(p)) libs.add(p);
    }
    if (libs.size) return [...libs].join(', ');
  } catch {}
  return 'unknown';
}

/** The time a table was measured, in UTC to the second. */
export function utcStamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * The "- machine: ..." line of a README section, so that results from different benches can be
 * told apart by machine; `memory` adds the total memory, `libtorch` the version after a ';'.
 */
export function machineLine(cpu: string, o: { memory?: boolean; libtorch?: string } = {}): string {
  const memory = o.memory ? `, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory` : '';
  const libtorch = o.libtorch !== undefined ? `; libtorch ${o.libtorch}` : '';
  return `- machine: ${cpu}, ${cores} cores (${process.platform}/${process.arch})${memory}, Node ${process.version}${libtorch}`;
}

/**
 * The "- threads per part: ..." line of benches that run one part per thread count, with the
 * 1-minute load average around each part (a shared machine makes every figure slower).
 */
export function threadsPerPartLine(counts: number[], loads: [number, number][]): string {
  return `- threads per part: ${counts.join(', ')} (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and set_num_threads alike); 1-minute load average during the parts: ${loads.map((l) => `${l[0].toFixed(1)} -> ${l[1].toFixed(1)}`).join(', ')} (above ${cores} the machine was shared)`;
}

/** Backticks dropped: README lines printed as plain text on the terminal. */
export function plain(s: string): string {
  return s.replace(/`/g, '');
}

// ---------------------------------------------------------------- threads and parts
/**
 * The thread variables of OpenMP, OpenBLAS and MKL for `threads` threads. They are read once,
 * when libtorch and its BLAS load, so they must be in the environment before that (a child's
 * environment, or process.env before the dynamic import of torch).
 */
export function threadEnv(threads: number): Record<string, string> {
  return { OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
}

/** The distinct positive thread counts of `variable` (default BENCH_THREAD_COUNTS; "a,b,..."), or of `fallback`. */
export function threadCounts(fallback: string, variable = 'BENCH_THREAD_COUNTS'): number[] {
  return [...new Set((process.env[variable] ?? fallback).split(',').map(Number).filter((n) => n > 0))];
}

/**
 * Runs `script` again as the child part `part` (BENCH_PART) with `threads` threads
 * (BENCH_THREADS and threadEnv), so thread settings are fixed before libtorch loads and each
 * part's peak RSS is its own. The child's last stdout line starting with `RESULT ` carries its
 * answer as JSON; `name` begins the error message when the part fails.
 */
export function runPart<T>(script: string, part: string, threads: number, extra: Record<string, string> = {}, name = `bench part ${part}`): Promise<T> {
  const env = { ...process.env, ...extra, BENCH_PART: part, BENCH_THREADS: String(threads), ...threadEnv(threads) };
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      const line = out.split('\n').reverse().find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) rej(new Error(`${name} (threads ${threads}) exited with ${code}:\n${out}`));
      else res(JSON.parse(line.slice(7)) as T);
    });
  });
}

// ---------------------------------------------------------------- bench/README.md
/** False under BENCH_NO_README=1 (print only, for smoke runs that must not touch the README). */
export function readmeWanted(): boolean {
  return process.env.BENCH_NO_README !== '1';
}

/**
 * Replaces the lines between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in
 * bench/README.md with `body`, leaving other benches' sections as they are; where the markers are
 * missing the section is appended after `intro` (a heading and text, ending in a blank line).
 * The file is read just before writing, as another bench may have rewritten its own section
 * meanwhile. Returns the README's path.
 */
export function writeReadmeSection(name: string, body: string[], intro = ''): string {
  const readme = join(root, 'bench', 'README.md');
  const START = `<!-- bench:${name}:start -->`;
  const END = `<!-- bench:${name}:end -->`;
  const section = [START, ...body, END].join('\n');
  let text = existsSync(readme) ? readFileSync(readme, 'utf8') : '# Benchmarks\n\n';
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  text = a >= 0 && b > a ? text.slice(0, a) + section + text.slice(b + END.length) : text.trimEnd() + '\n\n' + intro + section + '\n';
  writeFileSync(readme, text);
  return readme;
}
