// Public surface of the reward scorers (method.md 3.4, 6.4; architecture.md "Evaluation"): each
// scorer is a small class with one job and an `id` naming what actually scored, usable alone or
// batched, serving both the GRPO reward and the evaluation metrics.
export {
  type ImageBatch, type Preprocess, batchSize, unitTensors, loadImages, preprocess, preprocessBatch,
  cosineMatrix, l2normalize, CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD,
} from './images.js';
export { ClipTokenizer, bytesToUnicode, cleanText, BOS_TOKEN, EOS_TOKEN } from './clip-tokenizer.js';
export {
  ClipModel, ClipScorer, loadClipModel, parseClipConfig, CLIPT_SCALE,
  type ClipConfig, type ClipTextConfig, type ClipVisionConfig, type TextImageScorer, type ImageEmbedder,
} from './clip.js';
export {
  Dinov2Model, Dinov2Embedder, loadDinov2Model, parseDinov2Config, DINOV2_PREPROCESS,
  type Dinov2Config, type Dinov2Preprocess,
} from './dinov2.js';
export { LpipsModel, LpipsDistance, loadLpipsModel, type PairDistance } from './lpips.js';
export { IdentityScorer, dinoPenalty, DEFAULT_BAND, type IdentityResult } from './identity.js';
export { DiversityScorer, diversityGroups, type DiversityOptions } from './diversity.js';
export { VqaScorer, checklistScore, yesNoScore, type Answerer, type ChecklistQuestion } from './vqa.js';
export {
  ColourEdgeHistogramEmbedder, PixelRmsDistance, ColourWordsScorer, ColourHeuristicAnswerer,
  colourEdgeFeature, colourNameHistogram, colourCues, downsampled, COLOUR_PROTOTYPES, COLOUR_NAMES, OBJECT_COLOURS,
  type ColourWordsOptions,
} from './fallback.js';
export {
  combineRewards, REFERENCE_REWARD_WEIGHTS, FALLBACK_CONFIG_REWARD_WEIGHTS, DEFAULT_FACE_REWARD_WEIGHT,
  type RewardWeights, type RewardComponents, type CombinedRewards,
} from './combine.js';
export {
  createRewardScorers, computeRewards, effectiveRewardWeights, faceId,
  type RewardScorerOptions, type RewardScorers, type RewardBatch, type RewardReport,
} from './suite.js';
export { SelfVqaAnswerer } from './self-vqa.js';
export {
  BlipVqaAnswerer, BlipForQuestionAnswering, BlipTokenizer, BlipVisionModel, BlipTextModel, BlipTextLMHeadModel,
  loadBlipVqaModel, parseBlipConfig, BLIP_VQA_ID,
  type BlipConfig, type BlipTextConfig, type BlipVisionConfig, type BlipVqaOptions, type BlipQuestion,
} from './blip-vqa.js';
export { FaceIdentityScorer, faceImagesOf, type FaceRewardOptions, type FaceRewardResult } from './face-reward.js';
export { FaceIdentity, FACE_IDENTITY_ID, descriptorCosine, type FaceImage, type FaceIdentityOptions } from './face-identity.js';
export { humanModelsDir } from './face-graph.js';
