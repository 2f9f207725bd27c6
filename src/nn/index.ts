// Public surface of the nn layer: modules and layers, initializers, state-dict files,
// optimizers, schedules, EMA and LoRA. Built on src/torch only.
export {
  Module, ModuleList, ModuleDict, Sequential, Identity, describeLoadResult,
  type UnaryModule, type LoadResult, type LoadOptions, type FloatDType,
} from './module.js';
export * as init from './init.js';
export { Linear, Embedding, type FactoryOptions } from './linear.js';
export { LayerNorm, RMSNorm, GroupNorm } from './norm.js';
export { Conv2d, type Conv2dOptions, type Pair } from './conv.js';
export { GELU, SiLU, ReLU, Tanh, Sigmoid, Dropout } from './activation.js';
export { FcMlp, activation } from './mlp.js';
export { shareTensors, sharingTensors } from './share.js';
export { saveModule, loadModule, saveOptimizer, loadOptimizer } from './state.js';
export {
  Optimizer, AdamW, SGD, clipGradNorm, OPTIM_KERNELS,
  type AdamWOptions, type OptimKernel, type SGDOptions, type ParamGroup, type OptimizerStateDict,
} from './optim.js';
export { constantSchedule, warmupCosineSchedule, type Schedule, type CosineOptions } from './schedule.js';
export { EMA } from './ema.js';
export {
  LoRAAdapter, applyLoRA, attachLoRA, removeLoRA, freezeBase, loraParameters, loraLayers,
  mergeLoRA, unmergeLoRA, loraStateDict, loadLoRAStateDict, saveLoRA, loadLoRA, nameMatcher, isAdapterKey,
  type LoRAConfig, type ApplyLoRAOptions, type NamePattern,
} from './lora.js';
export {
  MixedPrecision, PRECISION_MODES, isPrecisionMode, parsePrecisionMode, computeDtype, type PrecisionMode,
} from './precision.js';
