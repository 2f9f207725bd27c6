// Public surface of the memory planner (docs/planner.md): per-device memory of a training step
// from the real model's parameter counts and the activation model. Built on src/torch, src/nn and
// src/model; from src/train it takes only the type of the shard modes (no code at run time).
export { countParameters, type LoraShape, type ParameterCounts, type UnitCount } from './counts.js';
export { PRECISIONS, isPrecision, precisionBytes, type Precision, type PrecisionBytes } from './precision.js';
export {
  decoderLayerTerms, checkpointedLayerTerms, outerTerms, headTransient, layerBackwardTransient, sumTerms,
  type PackShape, type Term,
} from './activations.js';
export { planMemory, TRAIN_MODES, PLAN_SHARD_MODES, PLAN_OPTIMIZER_KERNELS, type PlanOptimizerKernel, type PlanInput, type MemoryPlan, type Phase, type TrainMode, type ShardMode } from './plan.js';
export { parseBytes, formatBytes, planTable } from './format.js';
export { measureStep, stepOptimizerKernel, syntheticPack, packShapeOf, type MeasureInput, type Measurement } from './measure.js';
export { trainingFlops } from './flops.js';
