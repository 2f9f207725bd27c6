// The reward set GRPO and evaluation use: the real scorers where weights are given, a named
// fallback for each one that is not, and one call that computes every component of docs/method.md 3.4
// for a batch and combines them. `ids` says which scorer produced each component; reports print it.
// For human characters a face-identity scorer (BlazeFace + FaceRes, src/reward/face-reward.ts) can
// join as a fifth component, `face`; it is loaded asynchronously by the caller and handed in.
import type { ChwImage } from '../data/index.js';
import { ClipScorer, Dinov2Embedder, LpipsDistance, type TextImageScorer } from './nets/index.js';
import { IdentityScorer } from './identity.js';
import { DiversityScorer, type DiversityOptions } from './diversity.js';
import { VqaScorer, type Answerer, type ChecklistItem, type VqaRules } from './vqa.js';
import { BlipVqaAnswerer, REFERENCE_BLIP_LENGTHS } from './blip-answerer.js';
import { ColourEdgeHistogramEmbedder, ColourHeuristicAnswerer, ColourWordsScorer, PixelRmsDistance, type ColourWordsOptions } from './fallback.js';
import type { FaceIdentityScorer } from './face-reward.js';
import { combineRewards, DEFAULT_FACE_REWARD_WEIGHT, REFERENCE_REWARD_WEIGHTS, type CombinedRewards, type RewardWeights } from './combine.js';

export interface RewardScorerOptions {
  /** A transformers CLIP folder (config.json, model.safetensors, vocab.json, merges.txt). */
  clipDir?: string;
  /** A transformers DINOv2 folder (config.json, model.safetensors). */
  dinoDir?: string;
  /** LPIPS-alex safetensors file(s): AlexNet features + lin heads. */
  lpipsFiles?: string | readonly string[];
  /**
   * A transformers BlipForQuestionAnswering folder (config.json, model.safetensors, tokenizer.json,
   * e.g. Salesforce/blip-vqa-base): BLIP-VQA answers the checklists (id 'blip-vqa'), with the
   * official length caps under the 'reference' rules (REFERENCE_BLIP_LENGTHS) and the folder's
   * text_config.max_length for both under 'project'. Ignored when `answerer` is given.
   */
  blipVqaDir?: string;
  /** The checklist answerer (BLIP-VQA, or the customized model's understanding path). */
  answerer?: Answerer;
  /** The checklist scorer's edge-case rules (src/reward/vqa.ts; default 'reference'). */
  vqaRules?: VqaRules;
  tauHi?: number;
  tauLo?: number;
  diversity?: DiversityOptions;
  /** Options of the colour-words substitute (e.g. the character's palette). */
  colourWords?: ColourWordsOptions;
  /**
   * The face-identity scorer for human characters (`await FaceIdentityScorer.load()`, id
   * 'human-models:faceres'): adds the `face` component. The suite owns it and disposes it.
   */
  faceIdentity?: FaceIdentityScorer;
}

export interface RewardScorers {
  alignment: TextImageScorer;
  identity: IdentityScorer;
  diversity: DiversityScorer;
  vqa: VqaScorer;
  /** The face-identity scorer, or null without one (no `face` component). */
  face: FaceIdentityScorer | null;
  /**
   * The scorer behind each component, e.g. { clip: 'fallback:colour-words', ... }. `face` is the
   * face scorer's id when there is one; without one the key is left out (so the ids of a suite
   * without a face scorer are exactly as before) and `faceId()` gives 'none'.
   */
  ids: { vqa: string; clip: string; div: string; dino: string; face?: string };
  /** True when any component is a substitute. */
  usesFallback: boolean;
  dispose(): void;
}

export function createRewardScorers(o: RewardScorerOptions = {}): RewardScorers {
  const disposers: (() => void)[] = [];
  const alignment = o.clipDir ? ClipScorer.load(o.clipDir) : new ColourWordsScorer(o.colourWords);
  if (alignment instanceof ClipScorer) disposers.push(() => alignment.dispose());
  const embedder = o.dinoDir ? Dinov2Embedder.load(o.dinoDir) : new ColourEdgeHistogramEmbedder();
  if (embedder instanceof Dinov2Embedder) disposers.push(() => embedder.dispose());
  const distance = o.lpipsFiles ? LpipsDistance.load(o.lpipsFiles) : new PixelRmsDistance();
  if (distance instanceof LpipsDistance) disposers.push(() => distance.dispose());
  const identity = new IdentityScorer(embedder, { tauHi: o.tauHi, tauLo: o.tauLo });
  const diversity = new DiversityScorer(distance, o.diversity);
  let answerer = o.answerer;
  if (!answerer && o.blipVqaDir) {
    const lengths = (o.vqaRules ?? 'reference') === 'reference' ? { maxLength: REFERENCE_BLIP_LENGTHS.checklist, fallbackMaxLength: REFERENCE_BLIP_LENGTHS.fallback } : {};
    const blip = BlipVqaAnswerer.load(o.blipVqaDir, lengths);
    disposers.push(() => blip.dispose());
    answerer = blip;
  }
  const vqa = new VqaScorer(answerer ?? new ColourHeuristicAnswerer(), o.vqaRules ? { rules: o.vqaRules } : {});
  const face = o.faceIdentity ?? null;
  if (face) disposers.push(() => face.dispose());
  const ids: RewardScorers['ids'] = { vqa: vqa.id, clip: alignment.id, div: diversity.id, dino: identity.id, ...(face ? { face: face.id } : {}) };
  let disposed = false;
  return {
    alignment, identity, diversity, vqa, face, ids,
    usesFallback: Object.values(ids).some((id) => id.startsWith('fallback:')),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      disposers.forEach((d) => d());
    },
  };
}

/** The id of the suite's face scorer, 'none' without one. */
export function faceId(s: Pick<RewardScorers, 'ids'>): string {
  return s.ids.face ?? 'none';
}

/**
 * The weights computeRewards combines with for this suite: as given, except that w_face is
 * DEFAULT_FACE_REWARD_WEIGHT when the suite has a face scorer and the weights name no face term,
 * and 0 when it has none.
 */
export function effectiveRewardWeights(s: Pick<RewardScorers, 'face'>, weights: RewardWeights = REFERENCE_REWARD_WEIGHTS): RewardWeights {
  if (!s.face) return weights.face === undefined ? weights : { ...weights, face: 0 };
  return weights.face === undefined ? { ...weights, face: DEFAULT_FACE_REWARD_WEIGHT } : weights;
}

export interface RewardBatch {
  images: readonly ChwImage[];
  prompts: readonly string[];
  checklists: readonly (readonly ChecklistItem[])[];
  /** The character's reference images (shared by the batch). */
  references: readonly ChwImage[];
  /** Diversity groups; default: the prompt. */
  groupKeys?: readonly string[];
  /** Called between the images of the checklist pass and between components; throws to abandon
   * the batch (a stop request: GRPO's epoch is then dropped, src/train/grpo-steps.ts). */
  checkStop?: () => void;
}

export interface RewardReport extends CombinedRewards {
  /** s_i, the max identity similarity (the "DINO similarity" eval metric). */
  identitySimilarity: number[];
  /** Per image, whether a face was found (only when the face component was computed). */
  hasFace?: boolean[];
  ids: RewardScorers['ids'];
}

/**
 * Every component of docs/method.md 3.4 for a batch, combined with the given weights; with a face
 * scorer also the face identity (w_face from effectiveRewardWeights: the default 0.3 unless the
 * weights give one; an explicit 0 skips it). Face descriptors of the references are cached per
 * `references` array object, so pass the same array on every call.
 */
export async function computeRewards(s: RewardScorers, b: RewardBatch, weights: RewardWeights = REFERENCE_REWARD_WEIGHTS): Promise<RewardReport> {
  if (s.identity.tauHi !== weights.tauHi || s.identity.tauLo !== weights.tauLo) {
    throw new Error(`computeRewards: scorer band (${s.identity.tauLo}, ${s.identity.tauHi}) differs from the weights' (${weights.tauLo}, ${weights.tauHi})`);
  }
  const w = effectiveRewardWeights(s, weights);
  const stop = b.checkStop ?? ((): void => {});
  const vqa = w.vqa > 0 ? await s.vqa.score(b.images, b.checklists, b.prompts, stop) : undefined;
  stop();
  const clip = w.clip > 0 ? s.alignment.score(b.images, b.prompts) : undefined;
  stop();
  const div = w.div > 0 ? s.diversity.score(b.images, b.groupKeys ?? b.prompts) : undefined;
  stop();
  const id = s.identity.evaluate(b.images, b.references);
  stop();
  const face = s.face && (w.face ?? 0) > 0 ? await s.face.evaluate(b.images, b.references) : undefined;
  const combined = combineRewards({ vqa, clip, div, dino: id.penalty, ...(face ? { face: face.reward } : {}) }, w);
  return { ...combined, identitySimilarity: id.similarity, ...(face ? { hasFace: face.hasFace } : {}), ids: s.ids };
}
