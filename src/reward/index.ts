// Public surface of the reward scorers (docs/method.md 3.4, 6.4; docs/architecture.md "Evaluation"):
// each scorer is a small class with one job and an `id` naming what actually scored, usable alone
// or batched, serving both the GRPO reward and the evaluation metrics. The pretrained networks they
// build on live in nets/ and are re-exported here.
export {
  type ImageBatch, type Preprocess, batchSize, unitTensors, loadImages, preprocess, preprocessBatch,
  cosineMatrix, l2normalize, CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD,
} from './nets/index.js';
export { ClipTokenizer, bytesToUnicode, cleanText, BOS_TOKEN, EOS_TOKEN } from './nets/index.js';
export {
  ClipModel, ClipScorer, loadClipModel, parseClipConfig, CLIPT_SCALE,
  type ClipConfig, type ClipTextConfig, type ClipVisionConfig, type TextImageScorer, type ImageEmbedder,
} from './nets/index.js';
export {
  Dinov2Model, Dinov2Embedder, loadDinov2Model, parseDinov2Config, DINOV2_PREPROCESS,
  type Dinov2Config, type Dinov2Preprocess,
} from './nets/index.js';
export { LpipsModel, LpipsDistance, loadLpipsModel, type PairDistance } from './nets/index.js';
export { IdentityScorer, dinoPenalty, DEFAULT_BAND, type IdentityResult } from './identity.js';
export { DiversityScorer, diversityGroups, type DiversityOptions } from './diversity.js';
export {
  VqaScorer, VQA_RULES, REFERENCE_FALLBACK_WORDS, answerMatches, checklistScore, isScoredItem, yesNoScore, fallbackQuestion,
  type Answerer, type AnswerPurpose, type ChecklistItem, type VqaRules, type VqaScorerOptions,
} from './vqa.js';
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
export { SelfVqaAnswerer, SELF_VQA_ID, normaliseReply } from './self-vqa.js';
export {
  BlipForQuestionAnswering, BlipTokenizer, BlipVisionModel, BlipTextModel, BlipTextLMHeadModel, loadBlipVqaModel, parseBlipConfig,
  type BlipConfig, type BlipTextConfig, type BlipVisionConfig,
} from './nets/index.js';
export { BlipVqaAnswerer, BLIP_VQA_ID, REFERENCE_BLIP_LENGTHS, type BlipVqaOptions, type BlipQuestion } from './blip-answerer.js';
export { FaceIdentityScorer, faceImagesOf, type FaceRewardOptions, type FaceRewardResult } from './face-reward.js';
export { FaceIdentity, FACE_IDENTITY_ID, descriptorCosine, type FaceImage, type FaceIdentityOptions } from './nets/index.js';
export { humanModelsDir, loadTf, cosineSimilarity, type Tf } from './nets/index.js';
export { CaptionKnnAnswerer, CAPTION_KNN_ID, sameWord, captionWords, layoutFeature, STOP_WORDS, type CaptionKnnEntry, type CaptionKnnOptions } from './caption-knn.js';
export {
  captionKnnHeldOutAccuracy, fitCaptionKnn, scoreAnswers, tellingWords, yesNoItems,
  type AccuracyResult, type CaptionedImage, type HeldOutItem,
} from './answerer-accuracy.js';
export {
  ChecklistProbeAnswerer, CHECKLIST_PROBE_ID, contentWords, fitProbe, isYesNoQuestion, itemWordLabels, probeFeature, probeProbability,
  type ChecklistProbeOptions, type Probe, type ProbeItem,
} from './checklist-probe.js';
export {
  captionConstants, checklistItems, checklistSplit, fitChecklistProbe, probeHeldOutAccuracy, shuffledLabels, splitChecklistItems,
  type ChecklistSplitOptions, type ProbeAccuracy,
} from './probe-accuracy.js';
