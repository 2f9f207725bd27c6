// Loads the native addon (native/, built by scripts/setup.sh) and declares its surface.
// Everything else in src/torch talks to libtorch through this object only.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tensors cross the boundary as integer ids into the addon's handle table. */
export type TensorId = number;

export interface NativeMemory {
  tensors: number;
  bytes: number;
  storages: number;
}

export interface NativeArg {
  name: string;
  type: string;
  kind: string;
  optional: boolean;
  hasDefault: boolean;
  default?: string;
  kwargOnly: boolean;
  isWrite: boolean;
}

export interface NativeOpSchema {
  name: string;
  overload: string;
  schema: string;
  args: NativeArg[];
  returns: { name: string; type: string; kind: string; isWrite: boolean }[];
}

/** The constants of one fused AdamW step (src/torch/optim-kernels.ts documents them). */
export interface AdamWConstants {
  gradScale: number;
  decay: number;
  beta1: number;
  gradWeight1: number;
  beta2: number;
  gradWeight2: number;
  biasCorrection2Sqrt: number;
  eps: number;
  negStepSize: number;
}

export interface GroupOptions {
  host: string;
  port: number;
  rank: number;
  worldSize: number;
  backend: 'gloo' | 'nccl';
  timeoutMs: number;
}

export interface NativeAddon {
  dispose(id: TensorId): boolean;
  disposeMany(ids: TensorId[]): void;
  memory(): NativeMemory;
  /** A new id for an operator (each call appends one: cache it). */
  opId(name: string, overload: string): number;
  /** The operator behind an id, as "aten::name.overload". */
  opName(id: number): string;
  call(op: number, ...args: unknown[]): any;
  listOps(): NativeOpSchema[];
  fromBuffer(data: ArrayBufferView, dtype: string, shape: number[], device?: string): TensorId;
  toBuffer(id: TensorId): ArrayBuffer;
  meta(id: TensorId): [string, string, boolean, ...number[]];
  shape(id: TensorId): number[];
  dtype(id: TensorId): string;
  device(id: TensorId): string;
  numel(id: TensorId): number;
  item(id: TensorId): number | boolean;
  toString(id: TensorId): string;
  setRequiresGrad(id: TensorId, value: boolean): void;
  requiresGrad(id: TensorId): boolean;
  isLeaf(id: TensorId): boolean;
  grad(id: TensorId): TensorId | null;
  setGrad(id: TensorId, grad: TensorId | null): void;
  /** One tensor (gradient or null), or several with one gradient (or null) each. */
  backward(id: TensorId | TensorId[], gradient: TensorId | (TensorId | null)[] | null, retainGraph?: boolean, createGraph?: boolean): void;
  /** Activation checkpointing (native/src/checkpoint.cc). */
  checkpointInit(recompute: (id: number, saved: TensorId[], grads: (TensorId | null)[]) => (TensorId | null)[]): void;
  checkpointApply(id: number, inputs: TensorId[], outputs: TensorId[]): TensorId[];
  checkpointReleased(): number[];
  checkpointLive(): number;
  autogradGrad(
    outputs: TensorId[],
    inputs: TensorId[],
    gradOutputs: (TensorId | null)[] | null,
    retainGraph: boolean | undefined,
    createGraph: boolean,
    allowUnused: boolean,
  ): (TensorId | null)[];
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number | bigint): void;
  getRngState(): TensorId;
  setRngState(state: TensorId): void;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  version(): string;
  createGroup(options: GroupOptions): object;
  /** A group of some of the parent's ranks over the parent's store under `prefix` (a c10d PrefixStore). */
  createSubGroup(parent: object, options: { prefix: string; rank: number; worldSize: number; backend: string; timeoutMs: number }): object;
  allReduce(group: object, tensors: TensorId[], op: string): void;
  broadcast(group: object, tensors: TensorId[], root: number): void;
  allGather(group: object, tensor: TensorId): TensorId[];
  /** output (+)= the rank's chunk of input summed over ranks (Gloo: alltoall, then rank order). */
  reduceScatter(group: object, input: TensorId, output: TensorId, accumulate: boolean): void;
  /** output[r*S..] <- rank r's input; with async, a work handle for waitWork. */
  allGatherInto(group: object, input: TensorId, output: TensorId, async: boolean): object | undefined;
  waitWork(work: object): void;
  /** Frees (0) or reallocates a tensor's storage in place (every view sees it). */
  resizeStorage(tensor: TensorId, nbytes: number): void;
  storageBytes(tensor: TensorId): number;
  barrier(group: object): void;
  destroyGroup(group: object): void;
  /** The decoder's one-token step on the understanding expert (native/src/mot_decode.cc). */
  motDecodeStep(
    x: TensorId, layers: (TensorId | null)[][], keyBuffers: TensorId[], valueBuffers: TensorId[], length: number,
    position: number, ropeTheta: number, numHeads: number, numKvHeads: number, headDim: number, eps: number,
    finalNorm: TensorId | null,
  ): TensorId;
  /** motDecodeStep for B rows x [B, D], row b over its own cache (keyBuffers[b][layer]). */
  motDecodeBatch(
    x: TensorId, layers: (TensorId | null)[][], keyBuffers: TensorId[][], valueBuffers: TensorId[][], lengths: number[],
    positions: number[], ropeTheta: number, numHeads: number, numKvHeads: number, headDim: number, eps: number,
    finalNorm: TensorId | null,
  ): TensorId;
  /**
   * The CPU time (ms) of each phase of the native decode steps since the previous call (then
   * reset); `on` turns the timers on or off for the steps that follow (native/src/decode_profile.h).
   */
  motDecodeProfile(on: boolean): { setup: number; norms: number; projections: number; attention: number; mlp: number; output: number };
  /** x [N, in] @ weight [out, in]^T (+ bias): float32 or bfloat16 CPU, through the decode kernels. */
  linearVector(x: TensorId, weight: TensorId, bias: TensorId | null): TensorId;
  /** One fused AdamW update of every parameter (native/src/fused_optim.cc); false, nothing done, where it does not apply. */
  adamwStep(params: TensorId[], grads: TensorId[], expAvgs: TensorId[], expAvgSqs: TensorId[], constants: AdamWConstants): boolean;
  /** The 2-norm of all the tensors together; null where the fused norm does not apply. */
  gradNorm2(tensors: TensorId[]): number | null;
  /** t *= scale for each tensor; false, nothing done, where it does not apply. */
  scaleTensors(tensors: TensorId[], scale: number): boolean;
  /** Puts the counting CPU allocator in front of libtorch's (native/src/allocator_stats.cc). */
  trackCpuAllocations(): void;
  /** Allocated bytes now and at peak; null for the CPU before trackCpuAllocations. */
  allocatorStats(device: string): { current: number; peak: number } | null;
  resetPeakAllocated(device: string): void;
}

function findAddon(): string {
  // dist/src/torch/native.js or src/torch/native.ts: walk up to the folder holding native/.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'native', 'build', 'Release', 'unicharacter_torch.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(
    'The native addon is not built (native/build/Release/unicharacter_torch.node is missing). ' +
      'Run `npm run setup` (or `bash scripts/setup.sh`) to install libtorch and build it.',
  );
}

const require = createRequire(import.meta.url);
// OpenMP threads that spin while idle fight OpenBLAS's own (pthread) threads for the cores: on 2
// cores a tiny SFT step took 674 ms with both spinning and 246 ms with OpenMP's threads sleeping
// (1 thread: 257 ms). libgomp reads this when libtorch loads, so it is set before the addon is; a
// value the user set wins.
process.env['OMP_WAIT_POLICY'] ??= 'PASSIVE';
export const native: NativeAddon = require(findAddon());

/** The libtorch version the addon was compiled against (TORCH_VERSION, e.g. "2.6.0"). */
export const libtorchVersion: string = native.version();

/** "major.minor" of a libtorch version: operator schemas change between minor releases only. */
export function schemaVersion(version: string): string {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) throw new Error(`unrecognised libtorch version '${version}'`);
  return `${m[1]}.${m[2]}`;
}

/**
 * Refuses an operator binding generated for other libtorch versions than the addon's
 * (docs/engine.md, "libtorch versions"): its operators could be missing or take other arguments, which would only
 * show as errors deep inside a model.
 */
export function checkBinding(file: string, generatedFor: readonly string[]): void {
  const mine = schemaVersion(libtorchVersion);
  if (generatedFor.includes(mine)) return;
  throw new Error(
    `${file} was generated for libtorch ${generatedFor.join(', ')}, but the native addon was built against libtorch ` +
      `${libtorchVersion}: run \`npm run gen:ops\` to add this version's operators (docs/engine.md, "libtorch versions"), or rebuild the ` +
      'addon against a supported libtorch (`npm run setup`).',
  );
}
