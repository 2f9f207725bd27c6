// Process groups over PyTorch's c10d: a TCPStore rendezvous (rank 0 hosts the store) and
// Gloo (CPU tensors) or NCCL (CUDA tensors) collectives.
//
// Every call is synchronous: it blocks the calling thread until the collective has
// completed on every rank, or fails with a JS Error when a peer goes away (connection
// closed) or the group's timeout expires. A collective never hangs past `timeoutMs`.
//
// Configure from torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE,
// LOCAL_RANK) with ProcessGroup.fromEnv(), which is what launch() (launch.ts) and
// `torchrun` set up, or explicitly with ProcessGroup.create().
import { native } from './native.js';
import { Tensor, checkLiveTensor, isTensor } from './tensor.js';
import { isFloatingDType } from './dtype.js';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min' | 'product';

export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min', 'product'];
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface ProcessGroupOptions {
  /** Address of rank 0, which hosts the TCPStore. */
  host: string;
  /** TCP port of the store on `host` (1-65535). */
  port: number;
  rank: number;
  worldSize: number;
  /** Rank on this machine (defaults to `rank`); picks the CUDA device for NCCL. */
  localRank?: number;
  /** 'gloo' (CPU, default) or 'nccl' (CUDA; needs a libtorch built with CUDA). */
  backend?: Backend;
  /** Rendezvous and per-collective timeout in milliseconds (default 60000). */
  timeoutMs?: number;
}

export interface FromEnvOptions {
  backend?: Backend;
  timeoutMs?: number;
  /** Where to read the variables from (default process.env). */
  env?: Record<string, string | undefined>;
}

/** The torchrun configuration read (and validated) from environment variables. */
export interface DistEnv {
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  localRank: number;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function envInt(
  env: Record<string, string | undefined>,
  name: string,
  min: number,
  max: number,
  what: string,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') {
    throw new Error(`distributed: environment variable ${name} is not set (expected ${what}); start with launch() or torchrun`);
  }
  const s = raw.trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`distributed: environment variable ${name}=${JSON.stringify(raw)} is invalid (expected ${what})`);
  }
  return n;
}

/**
 * Reads MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and LOCAL_RANK. Throws an Error naming
 * the variable when one is missing or invalid.
 */
export function readDistEnv(env: Record<string, string | undefined> = process.env): DistEnv {
  if (env === null || typeof env !== 'object') throw new TypeError('readDistEnv(env): env must be an object');
  const addr = env['MASTER_ADDR']?.trim();
  if (!addr) {
    throw new Error('distributed: environment variable MASTER_ADDR is not set (expected the address of rank 0); start with launch() or torchrun');
  }
  if (/\s/.test(addr)) throw new Error(`distributed: environment variable MASTER_ADDR=${JSON.stringify(addr)} is invalid (expected a host name or IP address)`);
  const masterPort = envInt(env, 'MASTER_PORT', 1, 65535, 'a TCP port, 1-65535');
  const worldSize = envInt(env, 'WORLD_SIZE', 1, 1 << 20, 'an integer >= 1');
  const rank = envInt(env, 'RANK', 0, worldSize - 1, `an integer in [0, WORLD_SIZE=${worldSize})`);
  const localRank = envInt(env, 'LOCAL_RANK', 0, worldSize - 1, `an integer in [0, WORLD_SIZE=${worldSize})`);
  return { masterAddr: addr, masterPort, rank, worldSize, localRank };
}

function checkBackend(backend: unknown, fn: string): Backend {
  if (backend !== 'gloo' && backend !== 'nccl') {
    throw new TypeError(`${fn}: backend must be 'gloo' or 'nccl' (got ${JSON.stringify(backend)})`);
  }
  if (backend === 'nccl' && !native.cudaIsAvailable()) {
    throw new Error(`${fn}: backend 'nccl' needs CUDA, which is not available here (use 'gloo' on CPU)`);
  }
  return backend;
}

function checkTimeout(timeoutMs: unknown, fn: string): number {
  if (!isInt(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2 ** 31 - 1) {
    throw new TypeError(`${fn}: timeoutMs must be a positive integer number of milliseconds (got ${String(timeoutMs)})`);
  }
  return timeoutMs;
}

/** A collective started with `async: true`; wait() blocks until it has completed on this rank. */
export class PendingCollective {
  #work: object | null;
  readonly #run: (call: () => void) => void;
  constructor(work: object, run: (call: () => void) => void) {
    this.#work = work;
    this.#run = run;
  }
  get done(): boolean {
    return this.#work === null;
  }
  /** Waits for completion (throws the collective's error or timeout); a second call is a no-op. */
  wait(): void {
    const w = this.#work;
    if (w === null) return;
    this.#work = null;
    this.#run(() => native.waitWork(w));
  }
}

/** A c10d process group. Create with ProcessGroup.fromEnv() or ProcessGroup.create(). */
export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly backend: Backend;
  readonly timeoutMs: number;
  #handle: object | null;

  private constructor(handle: object, o: Required<ProcessGroupOptions>) {
    this.#handle = handle;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.localRank = o.localRank;
    this.backend = o.backend;
    this.timeoutMs = o.timeoutMs;
  }

  /**
   * Joins the group described by torchrun's environment variables. Blocks until every rank
   * has joined, or throws after `timeoutMs` (default 60000).
   */
  static fromEnv(options: FromEnvOptions = {}): ProcessGroup {
    const fn = 'ProcessGroup.fromEnv()';
    if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options must be an object`);
    const backend = checkBackend(options.backend ?? 'gloo', fn);
    const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, fn);
    const e = readDistEnv(options.env ?? process.env);
    return ProcessGroup.create({
      host: e.masterAddr,
      port: e.masterPort,
      rank: e.rank,
      worldSize: e.worldSize,
      localRank: e.localRank,
      backend,
      timeoutMs,
    });
  }

  /** Joins a group explicitly. Blocks until every rank has joined, or throws after timeoutMs. */
  static create(options: ProcessGroupOptions): ProcessGroup {
    const fn = 'ProcessGroup.create()';
    if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options must be an object`);
    const { host, port, rank, worldSize } = options;
    if (typeof host !== 'string' || host.trim() === '' || /\s/.test(host)) {
      throw new TypeError(`${fn}: host must be a non-empty host name or IP address`);
    }
    if (!isInt(port) || port < 1 || port > 65535) throw new TypeError(`${fn}: port must be an integer in 1-65535 (got ${String(port)})`);
    if (!isInt(worldSize) || worldSize < 1) throw new TypeError(`${fn}: worldSize must be an integer >= 1 (got ${String(worldSize)})`);
    if (!isInt(rank) || rank < 0 || rank >= worldSize) {
      throw new TypeError(`${fn}: rank must be an integer in [0, worldSize=${worldSize}) (got ${String(rank)})`);
    }
    const localRank = options.localRank ?? rank;
    if (!isInt(localRank) || localRank < 0) throw new TypeError(`${fn}: localRank must be an integer >= 0 (got ${String(localRank)})`);
    const backend = checkBackend(options.backend ?? 'gloo', fn);
    const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, fn);
    const o = { host: host.trim(), port, rank, worldSize, localRank, backend, timeoutMs };
    let handle: object;
    try {
      handle = native.createGroup({ host: o.host, port, rank, worldSize, backend, timeoutMs });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(
        `distributed: rank ${rank} of ${worldSize} could not join the ${backend} group at ${o.host}:${port} ` +
          `(timeout ${timeoutMs} ms): ${msg}`,
        { cause: err },
      );
    }
    return new ProcessGroup(handle, o);
  }

  /**
   * A group of some of this group's ranks that meets through this group's store under `prefix`
   * (torch.distributed.new_group's way: it opens no store of its own, so its members may run on
   * any node). Every member calls it with the same prefix, its rank in the sub-group and the
   * sub-group's size; a process joining several sub-groups joins them in the same order as the
   * others. Blocks until every member has joined, or throws after this group's timeout.
   */
  subGroup(prefix: string, rank: number, worldSize: number): ProcessGroup {
    const fn = 'ProcessGroup.subGroup()';
    if (typeof prefix !== 'string' || prefix === '') throw new TypeError(`${fn}: prefix must be a non-empty string`);
    if (!isInt(worldSize) || worldSize < 1 || worldSize > this.worldSize) {
      throw new TypeError(`${fn}: worldSize must be an integer in [1, ${this.worldSize}] (got ${String(worldSize)})`);
    }
    if (!isInt(rank) || rank < 0 || rank >= worldSize) throw new TypeError(`${fn}: rank must be an integer in [0, worldSize=${worldSize}) (got ${String(rank)})`);
    const h = this.#live('subGroup()');
    const o = { host: '', port: 0, rank, worldSize, localRank: this.localRank, backend: this.backend, timeoutMs: this.timeoutMs };
    let handle: object;
    try {
      handle = native.createSubGroup(h, { prefix, rank, worldSize, backend: this.backend, timeoutMs: this.timeoutMs });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`distributed: rank ${this.rank} of ${this.worldSize} could not join sub-group '${prefix}' as rank ${rank} of ${worldSize} (timeout ${this.timeoutMs} ms): ${msg}`, { cause: err });
    }
    return new ProcessGroup(handle, o);
  }

  /** False once destroy() has run. */
  get isAlive(): boolean {
    return this.#handle !== null;
  }

  #live(fn: string): object {
    if (this.#handle === null) throw new Error(`ProcessGroup.${fn}: the process group was destroyed`);
    return this.#handle;
  }

  #run<T>(fn: string, call: () => T): T {
    try {
      return call();
    } catch (err) {
      if (err instanceof TypeError) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`distributed: ${fn} failed on rank ${this.rank} of ${this.worldSize}: ${msg}`, { cause: err });
    }
  }

  /**
   * Reduces each tensor across all ranks, in place ('avg' is a sum divided by worldSize and
   * needs a floating dtype). Returns its argument.
   */
  allReduce<T extends Tensor | Tensor[]>(tensors: T, op: ReduceOp = 'sum'): T {
    const fn = 'allReduce()';
    const list = Array.isArray(tensors) ? (tensors as Tensor[]) : [tensors as Tensor];
    if (!Array.isArray(tensors) && !isTensor(tensors)) throw new TypeError(`${fn}: tensors must be a Tensor or an array of Tensors`);
    list.forEach((t, i) => checkLiveTensor(t, Array.isArray(tensors) ? `tensors[${i}]` : 'tensors', fn));
    if (!REDUCE_OPS.includes(op)) {
      throw new TypeError(`${fn}: op must be one of ${REDUCE_OPS.map((o) => `'${o}'`).join(', ')} (got ${JSON.stringify(op)})`);
    }
    if (op === 'avg') {
      list.forEach((t, i) => {
        if (!isFloatingDType(t.dtype)) {
          throw new TypeError(`${fn}: op 'avg' needs floating tensors; ${Array.isArray(tensors) ? `tensors[${i}]` : 'tensors'} is ${t.dtype}`);
        }
      });
    }
    const h = this.#live(fn);
    if (list.length > 0) this.#run(fn, () => native.allReduce(h, list.map((t) => t.id), op));
    return tensors;
  }

  /** Copies each tensor from rank `root` to every other rank, in place. Returns its argument. */
  broadcast<T extends Tensor | Tensor[]>(tensors: T, root = 0): T {
    const fn = 'broadcast()';
    const list = Array.isArray(tensors) ? (tensors as Tensor[]) : [tensors as Tensor];
    if (!Array.isArray(tensors) && !isTensor(tensors)) throw new TypeError(`${fn}: tensors must be a Tensor or an array of Tensors`);
    list.forEach((t, i) => checkLiveTensor(t, Array.isArray(tensors) ? `tensors[${i}]` : 'tensors', fn));
    if (!isInt(root) || root < 0 || root >= this.worldSize) {
      throw new TypeError(`${fn}: root must be an integer in [0, worldSize=${this.worldSize}) (got ${String(root)})`);
    }
    const h = this.#live(fn);
    if (list.length > 0) this.#run(fn, () => native.broadcast(h, list.map((t) => t.id), root));
    return tensors;
  }

  /** Gathers `tensor` from every rank: element i of the result is rank i's tensor (new tensors). */
  allGather(tensor: Tensor): Tensor[] {
    const fn = 'allGather()';
    checkLiveTensor(tensor, 'tensor', fn);
    const h = this.#live(fn);
    const ids = this.#run(fn, () => native.allGather(h, tensor.id));
    return ids.map((id) => new Tensor(id));
  }

  /**
   * Reduce-scatter of a flat buffer (docs/sharding.md section 2): `input` holds worldSize equal
   * chunks; `output` (one chunk long) receives the sum over ranks of each rank's chunk number
   * `this.rank`, or has it added with `accumulate`. On Gloo (no reduce_scatter in libtorch 1.13)
   * the chunks travel by one alltoall and are added in rank order, so the sum does not depend
   * on the world size; NCCL uses its own reduce-scatter.
   */
  reduceScatter(input: Tensor, output: Tensor, o: { accumulate?: boolean } = {}): Tensor {
    const fn = 'reduceScatter()';
    this.#checkFlat(fn, input, output, 'input', 'output');
    if (!isFloatingDType(output.dtype)) throw new TypeError(`${fn}: the buffers must be floating (got ${output.dtype})`);
    const h = this.#live(fn);
    this.#run(fn, () => native.reduceScatter(h, input.id, output.id, o.accumulate ?? false));
    return output;
  }

  /**
   * All-gather into one flat buffer: `output[r*S, (r+1)*S)` receives rank r's `input` (S
   * elements). With `async: true` it returns at once with a PendingCollective: the gather runs on
   * the backend's threads while this one computes (docs/sharding.md section 3).
   */
  allGatherInto(input: Tensor, output: Tensor): Tensor;
  allGatherInto(input: Tensor, output: Tensor, o: { async: true }): PendingCollective;
  allGatherInto(input: Tensor, output: Tensor, o: { async?: boolean } = {}): Tensor | PendingCollective {
    const fn = 'allGatherInto()';
    this.#checkFlat(fn, output, input, 'output', 'input');
    const h = this.#live(fn);
    if (!o.async) {
      this.#run(fn, () => native.allGatherInto(h, input.id, output.id, false));
      return output;
    }
    const work = this.#run(fn, () => native.allGatherInto(h, input.id, output.id, true)) as object;
    return new PendingCollective(work, (call) => this.#run(fn, call));
  }

  #checkFlat(fn: string, whole: Tensor, shard: Tensor, wholeName: string, shardName: string): void {
    checkLiveTensor(whole, wholeName, fn);
    checkLiveTensor(shard, shardName, fn);
    if (whole.shape.length !== 1 || shard.shape.length !== 1) throw new TypeError(`${fn}: ${wholeName} and ${shardName} must be 1-D`);
    if (whole.dtype !== shard.dtype || whole.device !== shard.device) {
      throw new TypeError(`${fn}: ${wholeName} (${whole.dtype}, ${whole.device}) and ${shardName} (${shard.dtype}, ${shard.device}) must have the same dtype and device`);
    }
    if (whole.numel !== shard.numel * this.worldSize) {
      throw new TypeError(`${fn}: ${wholeName} has ${whole.numel} elements; expected worldSize ${this.worldSize} x ${shardName}'s ${shard.numel}`);
    }
  }

  /** Returns once every rank has reached the barrier. */
  barrier(): void {
    const h = this.#live('barrier()');
    this.#run('barrier()', () => native.barrier(h));
  }

  /** Leaves the group and frees its connections (idempotent). Other methods then throw. */
  destroy(): void {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    native.destroyGroup(h);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }

  toString(): string {
    return `ProcessGroup(rank=${this.rank}, worldSize=${this.worldSize}, localRank=${this.localRank}, backend=${this.backend}${this.isAlive ? '' : ', destroyed'})`;
  }
}
