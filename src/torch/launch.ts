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

/** LaunchOptions checked, with their defaults filled in. */
interface LaunchSettings {
  nproc: number;
  script: string;
  args: string[];
  nodeArgs: string[];
  env: Record<string, string | undefined>;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  cwd: string | undefined;
  graceMs: number;
  killAfterMs: number;
  onLine: (rank: number, stream: 'stdout' | 'stderr', line: string) => void;
  signal: AbortSignal | undefined;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((a) => typeof a === 'string');
}

function writePrefixedLine(rank: number, stream: 'stdout' | 'stderr', line: string): void {
  (stream === 'stdout' ? process.stdout : process.stderr).write(`[rank ${rank}] ${line}\n`);
}

/** Every option checked (a TypeError naming the first bad one), defaults filled in. */
function checkedOptions(options: LaunchOptions): LaunchSettings {
  const fn = 'launch()';
  if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options must be an object`);
  const { nproc, script } = options;
  if (!isInt(nproc) || nproc < 1) throw new TypeError(`${fn}: nproc must be an integer >= 1 (got ${String(nproc)})`);
  if (typeof script !== 'string' || script === '') throw new TypeError(`${fn}: script must be a non-empty path`);
  const args = options.args ?? [];
  if (!isStringArray(args)) throw new TypeError(`${fn}: args must be an array of strings`);
  const nodeArgs = options.nodeArgs ?? [];
  if (!isStringArray(nodeArgs)) throw new TypeError(`${fn}: nodeArgs must be an array of strings`);
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
  return {
    nproc, script, args, nodeArgs, env: options.env ?? {}, nnodes, nodeRank, masterAddr: masterAddr.trim(),
    cwd: options.cwd, graceMs, killAfterMs, onLine: options.onLine ?? writePrefixedLine, signal: options.signal,
  };
}

/** The environment of local rank `rank`: torchrun's static-rendezvous variables over `base`. */
function rankEnv(s: LaunchSettings, base: Record<string, string | undefined>, masterPort: number, rank: number): Record<string, string | undefined> {
  const global = s.nodeRank * s.nproc + rank;
  const world = String(s.nproc * s.nnodes);
  return {
    ...base,
    MASTER_ADDR: s.masterAddr,
    MASTER_PORT: String(masterPort),
    RANK: String(global),
    LOCAL_RANK: String(rank),
    WORLD_SIZE: world,
    LOCAL_WORLD_SIZE: String(s.nproc),
    GROUP_RANK: String(s.nodeRank),
    GROUP_WORLD_SIZE: String(s.nnodes),
    ROLE_RANK: String(global),
    ROLE_WORLD_SIZE: world,
  };
}

/** The ranks of one launch: starts them, follows their exits, and stops the others when one fails. */
class RankSupervisor {
  private readonly children: (ChildProcess | undefined)[] = [];
  private readonly exits: (RankExit | null)[];
  private readonly killed: boolean[];
  private readonly timers: NodeJS.Timeout[] = [];
  private failedRank: number | null = null;
  private failure: string | null = null;
  private aborted = false;
  private remaining: number;
  private stopping = false;
  private readonly onAbort = (): void => {
    this.aborted = true;
    this.terminateAll();
  };

  constructor(
    private readonly s: LaunchSettings,
    private readonly base: Record<string, string | undefined>,
    private readonly masterPort: number,
    private readonly resolve: (r: LaunchResult) => void,
  ) {
    this.exits = new Array(s.nproc).fill(null);
    this.killed = new Array<boolean>(s.nproc).fill(false);
    this.remaining = s.nproc;
  }

  startAll(): void {
    for (let rank = 0; rank < this.s.nproc; rank++) this.start(rank);
    const signal = this.s.signal;
    if (signal) {
      if (signal.aborted) this.onAbort();
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  private global(rank: number): number {
    return this.s.nodeRank * this.s.nproc + rank;
  }

  private start(rank: number): void {
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...this.s.nodeArgs, this.s.script, ...this.s.args], {
        env: rankEnv(this.s, this.base, this.masterPort, rank),
        cwd: this.s.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      // Synchronous spawn failure (bad cwd and the like): count as this rank failing.
      this.children.push(undefined);
      this.s.onLine(this.global(rank), 'stderr', `launch: could not start: ${err instanceof Error ? err.message : String(err)}`);
      this.onExit(rank, 127, null);
      return;
    }
    this.children.push(child);
    this.follow(rank, child);
  }

  /** Forwards the child's lines and settles the rank once its streams have closed and it has exited. */
  private follow(rank: number, child: ChildProcess): void {
    let pending = 3; // stdout end, stderr end, process exit
    let status: [number | null, NodeJS.Signals | null] = [null, null];
    const done = (): void => {
      if (--pending === 0) this.onExit(rank, status[0], status[1]);
    };
    for (const stream of ['stdout', 'stderr'] as const) {
      const s = child[stream]!;
      s.setEncoding('utf8');
      const split = lineSplitter((line) => this.s.onLine(this.global(rank), stream, line));
      s.on('data', (chunk: string) => split.push(chunk));
      s.on('close', () => {
        split.end();
        done();
      });
    }
    child.on('error', (err) => {
      this.s.onLine(this.global(rank), 'stderr', `launch: ${err.message}`);
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

  private onExit(rank: number, code: number | null, sig: NodeJS.Signals | null): void {
    if (this.exits[rank] !== null) return;
    const e: RankExit = { rank, code, signal: sig, killed: this.killed[rank]! };
    this.exits[rank] = e;
    this.remaining--;
    if (this.failedRank === null && !e.killed && code !== 0) {
      this.failedRank = this.global(rank);
      this.failure = `rank ${this.global(rank)} failed (${describe(e)})`;
      if (this.remaining > 0) this.timers.push(setTimeout(() => this.terminateAll(), this.s.graceMs));
    }
    if (this.remaining === 0) this.finish();
  }

  private terminateAll(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (let r = 0; r < this.s.nproc; r++) {
      const c = this.children[r];
      if (c && this.exits[r] === null) {
        this.killed[r] = true;
        c.kill('SIGTERM');
      }
    }
    const t = setTimeout(() => {
      for (let r = 0; r < this.s.nproc; r++) if (this.exits[r] === null) this.children[r]?.kill('SIGKILL');
    }, this.s.killAfterMs);
    t.unref();
    this.timers.push(t);
  }

  private finish(): void {
    for (const t of this.timers) clearTimeout(t);
    this.s.signal?.removeEventListener('abort', this.onAbort);
    const ranks = this.exits as RankExit[];
    this.resolve({
      ok: !this.aborted && ranks.every((e) => e.code === 0),
      exitCodes: ranks.map((e) => e.code),
      ranks,
      failedRank: this.failedRank,
      error: this.failure ?? (this.aborted ? 'launch aborted' : null),
      masterPort: this.masterPort,
      aborted: this.aborted,
    });
  }
}

/** Starts `nproc` ranks of `script` and resolves when all have exited. */
export async function launch(options: LaunchOptions): Promise<LaunchResult> {
  const s = checkedOptions(options);
  const masterPort = options.masterPort ?? (s.nnodes > 1 ? 29500 : await freePort());
  const base: Record<string, string | undefined> = { ...process.env, ...s.env };
  // As torchrun does, keep N ranks from oversubscribing the cores unless told otherwise.
  if (base['OMP_NUM_THREADS'] === undefined && s.nproc > 1) {
    base['OMP_NUM_THREADS'] = String(Math.max(1, Math.floor(availableParallelism() / s.nproc)));
  }
  return new Promise<LaunchResult>((resolve) => new RankSupervisor(s, base, masterPort, resolve).startAll());
}
