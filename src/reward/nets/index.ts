// Public surface of the pretrained networks the reward scorers and the evaluation use (see
// docs/architecture.md "Reward"): CLIP, DINOv2, BLIP-VQA, LPIPS and the face detector/descriptor,
// each loaded from its published weights, with the image preprocessing they share. Nothing here
// imports a scorer: the scorers in src/reward build on these networks.
export {
  type ImageBatch, type Preprocess, batchSize, unitTensors, loadImages, preprocess, preprocessBatch,
  cosineMatrix, l2normalize, rows, CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD,
} from './images.js';
export { cosineSimilarity } from './vectors.js';
export { num, str, type HfConfigJson } from './hf-config.js';
export { ClipTokenizer, bytesToUnicode, cleanText, BOS_TOKEN, EOS_TOKEN } from './clip-tokenizer.js';
export {
  ClipModel, ClipScorer, loadClipModel, parseClipConfig, CLIPT_SCALE,
  type ClipConfig, type ClipTowerConfig, type ClipTextConfig, type ClipVisionConfig, type TextImageScorer, type ImageEmbedder,
} from './clip.js';
export {
  Dinov2Model, Dinov2Embedder, loadDinov2Model, parseDinov2Config, DINOV2_PREPROCESS,
  type Dinov2Config, type Dinov2Preprocess,
} from './dinov2.js';
export { LpipsModel, LpipsDistance, loadLpipsModel, type PairDistance } from './lpips.js';
export { BlipVisionModel, type BlipVisionConfig } from './blip-vision.js';
export { BlipTextModel, BlipTextLMHeadModel, lengthMask, type BlipTextConfig } from './blip-text.js';
export {
  BlipForQuestionAnswering, BlipTokenizer, loadBlipVqaModel, parseBlipConfig, bertTokenizerJson, type BlipConfig,
} from './blip-vqa.js';
export {
  BlazeFaceDetector, blazeFaceAnchors, decodeBlazeFace, iou, letterbox, nonMaxSuppression, squareCrop, toImageBox,
  BLAZEFACE_KEYPOINTS, BLAZEFACE_REGRESSORS, DEFAULT_DETECT,
  type FaceBox, type NmsOptions, type Letterbox, type DetectOptions,
} from './face-detect.js';
export {
  loadTf, humanModelsDir, diskModelHandler, loadGraphModelFromDisk, FACE_MODEL_FILES, type Tf, type GraphModel,
} from './face-graph.js';
export {
  FaceIdentity, FACE_IDENTITY_ID, FACE_CROP_SCALE, FACERES_DESCRIPTOR, descriptorCosine,
  type FaceImage, type FaceIdentityOptions,
} from './face-identity.js';
