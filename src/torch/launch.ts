// A launcher in the manner of torchrun: starts N Node processes on this machine with
// the environment ProcessGroup.fromEnv() reads (MASTER_ADDR, MASTER_PORT, RANK, LOCAL_RANK,
// WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE, ROLE_RANK, ROLE_WORLD_SIZE as
// torchrun's static rendezvous sets them: node R of M runs global ranks R*N .. R*N+N-1; one node
// gets 127.0.0.1 and a free port), prefixes every output line with `[rank i]` (the global rank), and resolves with every rank's exit status. When a rank fails, the others
// get a grace period to finish (or fail on their own, as their collectives time out or see
// the closed connection), then are terminated. Backs `unicharacter launch --nproc N`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

export interface LaunchOptions {
  /** Number of processes (ranks), >= 1. */
  nproc: number;
  /** The JS file each rank runs with this Node (process.execPath). */
  script: string;
  /** Arguments after the script. */
  args?: string[];
  /** Extra environment, over process.env (the launcher's own variables win). */
  env?: Record<string, string | undefined>;
  /** Port of the rendezvous store; default: a free port chosen by binding port 0 on one node,
   * 29500 (torchrun's) with several. */
  masterPort?: number;
  /** Nodes (machines) of the run, each running its own launch() (default 1). */
  nnodes?: number;
  /** This node's index in [0, nnodes) (default 0); node 0 hosts rank 0 and the store. */
  nodeRank?: number;
  /** Address of node 0 (default 127.0.0.1; other nodes must be told it). */
  masterAddr?: string;
  /** Options for Node itself, before the script (e.g. ['--enable-source-maps']). */
  nodeArgs?: string[];
  cwd?: string;
  /** After a rank fails, how long the others may keep running before SIGTERM (default 5000). */
  graceMs?: number;
  /** After SIGTERM, how long before SIGKILL (default 3000). */
  killAfterMs?: number;
  /** Every output line with its global rank; default writes `[rank i] line` to this process's stdout/stderr. */
  onLine?: (rank: number, stream: 'stdout' | 'stderr', line: string) => void;
  /** Aborting terminates every rank (then the promise resolves as usual). */
  signal?: AbortSignal;
}

export interface RankExit {
  rank: number;
  /** Exit code, or null when the process ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the launcher terminated it (after another rank failed, or on abort). */
  killed: boolean;
}

export interface LaunchResult {
  /** True when every rank exited with code 0. */
  ok: boolean;
  /** Exit codes by rank (null where a signal ended the process). */
  exitCodes: (number | null)[];
  ranks: RankExit[];
  /** The first rank that failed on its own (not killed by the launcher), or null. */
  failedRank: number | null;
  /** A one-line account of the failure, or null. */
  error: string | null;
  masterPort: number;
  aborted: boolean;
}

/** A TCP port that is free on 127.0.0.1 now (bind to port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('freePort: could not read the bound port'))));
    });
  });
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function describe(e: RankExit): string {
  return e.code !== null ? `exit code ${e.code}` : `signal ${e.signal}`;
}

/** Splits a stream into lines, calling emit for each (the last partial line on end). */
function lineSplitter(emit: (line: string) => void): { push(chunk: string): void; end(): void } {
  let buf = '';
  return {
    push(chunk: string) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        let line = buf.slice(0, i);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        buf = buf.slice(i + 1);
        emit(line);
      }
    },
    end() {
      if (buf.length > 0) emit(buf);
      buf = '';
    },
  };
}

/** Starts `nproc` ranks of `script` and resolves when all have exited. */
export async function launch(options: LaunchOptions): Promise<LaunchResult> {
  const fn = 'launch()';
  if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options must be an object`);
  const { nproc, script } = options;
  if (!isInt(nproc) || nproc < 1) throw new TypeError(`${fn}: nproc must be an integer >= 1 (got ${String(nproc)})`);
  if (typeof script !== 'string' || script === '') throw new TypeError(`${fn}: script must be a non-empty path`);
  const args = options.args ?? [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) throw new TypeError(`${fn}: args must be an array of strings`);
  const nodeArgs = options.nodeArgs ?? [];
  if (!Array.isArray(nodeArgs) || nodeArgs.some((a) => typeof a !== 'string')) throw new TypeError(`${fn}: nodeArgs must be an array of strings`);
  if (options.env !== undefined && (options.env === null || typeof options.env !== 'object')) throw new TypeError(`${fn}: env must be an object`);
  if (options.masterPort !== undefined && (!isInt(options.masterPort) || options.masterPort < 1 || options.masterPort > 65535)) {
    throw new TypeError(`${fn}: masterPort must be an integer in 1-65535 (got ${String(options.masterPort)})`);
  }
  const nnodes = options.nnodes ?? 1;
  if (!isInt(nnodes) || nnodes < 1) throw new TypeError(`${fn}: nnodes must be an integer >= 1 (got ${String(nnodes)})`);
  const nodeRank = options.nodeRank ?? 0;
  if (!isInt(nodeRank) || nodeRank < 0 || nodeRank >= nnodes) throw new TypeError(`${fn}: nodeRank must be an integer in [0, nnodes=${nnodes}) (got ${String(nodeRank)})`);
  const masterAddr = options.masterAddr ?? '127.0.0.1';
  if (typeof masterAddr !== 'string' || masterAddr.trim() === '' || /\s/.test(masterAddr)) throw new TypeError(`${fn}: masterAddr must be a host name or IP address (got ${JSON.stringify(masterAddr)})`);
  const graceMs = options.graceMs ?? 5000;
  if (!isInt(graceMs) || graceMs < 0) throw new TypeError(`${fn}: graceMs must be an integer >= 0`);
  const killAfterMs = options.killAfterMs ?? 3000;
  if (!isInt(killAfterMs) || killAfterMs < 0) throw new TypeError(`${fn}: killAfterMs must be an integer >= 0`);
  const onLine =
    options.onLine ??
    ((rank: number, stream: 'stdout' | 'stderr', line: string) => {
      (stream === 'stdout' ? process.stdout : process.stderr).write(`[rank ${rank}] ${line}\n`);
    });
  const signal = options.signal;

  const masterPort = options.masterPort ?? (nnodes > 1 ? 29500 : await freePort());
  const base: Record<string, string | undefined> = { ...process.env, ...(options.env ?? {}) };
  // As torchrun does, keep N ranks from oversubscribing the cores unless told otherwise.
  if (base['OMP_NUM_THREADS'] === undefined && nproc > 1) {
    base['OMP_NUM_THREADS'] = String(Math.max(1, Math.floor(availableParallelism() / nproc)));
  }

  return new Promise<LaunchResult>((resolve) => {
    const children: ChildProcess[] = [];
    const exits: (RankExit | null)[] = new Array(nproc).fill(null);
    const killed = new Array<boolean>(nproc).fill(false);
    const timers: NodeJS.Timeout[] = [];
    let failedRank: number | null = null;
    let failure: string | null = null;
    let aborted = false;
    let remaining = nproc;
    let stopping = false;

    const terminateAll = (): void => {
      if (stopping) return;
      stopping = true;
      for (let r = 0; r < nproc; r++) {
        const c = children[r];
        if (c && exits[r] === null) {
          killed[r] = true;
          c.kill('SIGTERM');
        }
      }
      const t = setTimeout(() => {
        for (let r = 0; r < nproc; r++) if (exits[r] === null) children[r]?.kill('SIGKILL');
      }, killAfterMs);
      t.unref();
      timers.push(t);
    };

    const onAbort = (): void => {
      aborted = true;
      terminateAll();
    };

    const finish = (): void => {
      for (const t of timers) clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
      const ranks = exits as RankExit[];
      resolve({
        ok: !aborted && ranks.every((e) => e.code === 0),
        exitCodes: ranks.map((e) => e.code),
        ranks,
        failedRank,
        error: failure ?? (aborted ? 'launch aborted' : null),
        masterPort,
        aborted,
      });
    };

    const onExit = (rank: number, code: number | null, sig: NodeJS.Signals | null): void => {
      if (exits[rank] !== null) return;
      const e: RankExit = { rank, code, signal: sig, killed: killed[rank]! };
      exits[rank] = e;
      remaining--;
      if (failedRank === null && !e.killed && code !== 0) {
        failedRank = nodeRank * nproc + rank;
        failure = `rank ${nodeRank * nproc + rank} failed (${describe(e)})`;
        if (remaining > 0) {
          const t = setTimeout(terminateAll, graceMs);
          timers.push(t);
        }
      }
      if (remaining === 0) finish();
    };

    for (let rank = 0; rank < nproc; rank++) {
      const global = nodeRank * nproc + rank;
      const env: Record<string, string | undefined> = {
        ...base,
        MASTER_ADDR: masterAddr.trim(),
        MASTER_PORT: String(masterPort),
        RANK: String(global),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(nproc * nnodes),
        LOCAL_WORLD_SIZE: String(nproc),
        GROUP_RANK: String(nodeRank),
        GROUP_WORLD_SIZE: String(nnodes),
        ROLE_RANK: String(global),
        ROLE_WORLD_SIZE: String(nproc * nnodes),
      };
      let child: ChildProcess;
      try {
        child = spawn(process.execPath, [...nodeArgs, script, ...args], {
          env,
          cwd: options.cwd,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (err) {
        // Synchronous spawn failure (bad cwd and the like): count as this rank failing.
        children.push(undefined as unknown as ChildProcess);
        onLine(nodeRank * nproc + rank, 'stderr', `launch: could not start: ${err instanceof Error ? err.message : String(err)}`);
        onExit(rank, 127, null);
        continue;
      }
      children.push(child);
      let pending = 3; // stdout end, stderr end, process exit
      let status: [number | null, NodeJS.Signals | null] = [null, null];
      const done = (): void => {
        if (--pending === 0) onExit(rank, status[0], status[1]);
      };
      for (const stream of ['stdout', 'stderr'] as const) {
        const s = child[stream]!;
        s.setEncoding('utf8');
        const split = lineSplitter((line) => onLine(nodeRank * nproc + rank, stream, line));
        s.on('data', (chunk: string) => split.push(chunk));
        s.on('close', () => {
          split.end();
          done();
        });
      }
      child.on('error', (err) => {
        onLine(nodeRank * nproc + rank, 'stderr', `launch: ${err.message}`);
        if (child.exitCode === null && child.signalCode === null && child.pid === undefined) {
          status = [127, null];
          // No process: neither 'exit' nor the streams may report; settle this rank now.
          pending = 1;
          done();
        }
      });
      child.on('exit', (code, sig) => {
        status = [code, sig];
        done();
      });
    }

    if (signal) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}
