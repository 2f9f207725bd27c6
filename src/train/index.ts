// Public surface of the training layer (docs/architecture.md "Training"): run directories (config,
// metrics, atomic checkpoints, samples), the model-independent training loop, checkpoint contents
// for a Module + optimizer, the progress bar, the loss plot, Unified-SFT and Character-GRPO. Built
// on torch, nn, data, model, reward and character (docs/architecture.md "Layers").
export {
  RunDir, ConfigMismatchError, DEFAULT_VOLATILE_KEYS, diffConfig, readMetrics, readLatestCheckpoint, checkCheckpoint,
  type Json, type MetricsRecord, type RunDirOptions, type CheckpointInfo, type CheckpointPhase, type ConfigDifference,
} from './run-dir.js';
export { writeFileAtomic, fsyncDir, fsyncTree } from './fs-atomic.js';
export {
  checkpointState, jsonState, CHECKPOINT_FILES,
  type TrainingState, type JsonStateful, type CheckpointStateParts,
} from './checkpoint-state.js';
export { runTraining, StepInterrupted, type RunTrainingOptions, type StepResult, type TrainingResult } from './loop.js';
export {
  ProgressBar, formatDuration, formatRate, formatLoss, type ProgressOptions, type ProgressStream, type ProgressUpdate,
} from './progress.js';
export { renderLossPlot, writeLossPlot, defaultSeries, niceTicks, type LossPlotOptions } from './loss-plot.js';
// The character runtime (CharacterModel and its model folder) is src/character; training writes it.
export {
  trainGrpo, DEFAULT_GRPO, GRPO_PRESETS, GRPO_PRESET_FIELDS, generationExpertParameters, GrpoConfigSchema, grpoConfigFrom, parseGrpoConfig, parseFaceIdentitySetting,
  FACE_IDENTITY_SETTINGS, CHECKLIST_ANSWERERS, chooseChecklistAnswerer, type GrpoConfig, type FaceIdentitySetting, type ChecklistAnswererSetting, type ChecklistAnswererChoice,
} from './grpo.js';
export { groupAdvantages, type AdvantageOptions, type AdvantageResult } from './grpo-advantages.js';
export { clippedPolicyLoss, klPenalty, type ClipRange, type PolicyLoss } from './grpo-objective.js';
export { rollout, promptContexts, windowLogProb, drawWindowStart, type Rollout, type RolloutOptions, type WindowStep } from './grpo-rollout.js';
// Unified-SFT, the VAE stage, base training and customization (sft*.ts, vae-stage.ts, customize.ts).
export {
  SftConfigSchema, parseSftConfig, loadSftConfig, tinySftConfig,
  type SftConfig, type SftConfigInput, type VaeStageConfig,
} from './sft-config.js';
export {
  SftData, modelConfigForTokenizer, resolveRecipe, loadCharacterImages, loadSizedCharacterImages, vaeImageSpec, multiMixture, fewShotCharacter, sampleDraws,
  type SftDataOptions, type SftBatch,
} from './sft-data.js';
export {
  trainSft, sftForwardBackward, loadCharacters, runTokenizer, sftSchedule, sftSamples,
  type TrainSftOptions, type TrainSftResult, type SftLossResult,
} from './sft.js';
export { allReduceGradients, broadcastModule, ensureGradients, gatherRows } from './data-parallel.js';
export {
  trainVae, vaeLoss, vaeLossGroups, reconstructionError, calibrateLatents, saveVae, loadVae, freezeVae, decodeLatents,
  type TrainVaeOptions, type TrainVaeResult, type VaeMetrics,
} from './vae-stage.js';
export { trainBase, customize, baseCharacterModel, readBaseRun, type CustomizeOptions } from './customize.js';
export { SHARD_MODES, type ShardMode } from './shard/index.js';
export { exportShardedRun, type ExportShardedOptions, type ExportShardedResult } from './export-sharded.js';
export { evalRiseOf, type EvalRise } from './grpo-eval-rise.js';
export { accuracyNote, captionedImages } from './grpo-answerer.js';
export { writeMicroGrpoModel } from './grpo-micro.js';
