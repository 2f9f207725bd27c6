// Public surface of the engine: tensors, generated operators, autograd, memory, safetensors,
// runtime settings, process groups and the named decode kernels (docs/architecture.md "Native
// decode kernels"). Other layers import from here only.
import './ops.generated.js'; // adds the operator methods to Tensor.prototype
export * as ops from './ops.generated.js';
export { Tensor, isTensor, type Device, type Scalar, type NestedArray } from './tensor.js';
export { DTYPES, type DType, isDType, ITEM_SIZE, isFloatingDType, type TypedArray } from './dtype.js';
export * from './creation.js';
export { noGrad, enableGrad, isGradEnabled, grad, type GradOptions } from './autograd.js';
export * as autograd from './autograd.js';
export { checkpoint, liveCheckpoints, type CheckpointFn, type CheckpointOptions } from './checkpoint.js';
export { scope, keep, memory } from './lifetime.js';
export * from './runtime.js';
export { callOp } from './dispatch.js';
export { scaledDotProductAttention } from './ops-attention.js';
export { resizeStorage, storageBytes } from './storage.js';
export { trackCpuAllocations, allocatedBytes, resetPeakAllocated, type AllocatedBytes } from './allocator-stats.js';
export * as safetensors from './safetensors.js';
export * as kernels from './kernels.js';
export type { DecodeLayerWeights, DecodeShape, DecodeCacheRows } from './kernels.js';
export * as optimKernels from './optim-kernels.js';
export {
  ProcessGroup,
  PendingCollective,
  readDistEnv,
  REDUCE_OPS,
  type Backend,
  type ReduceOp,
  type ProcessGroupOptions,
  type FromEnvOptions,
  type DistEnv,
} from './distributed.js';
export { launch, freePort, type LaunchOptions, type LaunchResult, type RankExit } from './launch.js';
