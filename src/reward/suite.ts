// The reward set GRPO and evaluation use: the real scorers where weights are given, a named
// fallback for each one that is not, and one call that computes every component of method.md 3.4
// for a batch and combines them. `ids` says which scorer produced each component; reports print it.
import type { ChwImage } from '../data/image.js';
import { ClipScorer, type TextImageScorer } from './clip.js';
import { Dinov2Embedder } from './dinov2.js';
import { LpipsDistance } from './lpips.js';
import { IdentityScorer } from './identity.js';
import { DiversityScorer, type DiversityOptions } from './diversity.js';
import { VqaScorer, type Answerer, type ChecklistQuestion } from './vqa.js';
import { BlipVqaAnswerer } from './blip-vqa.js';
import { ColourEdgeHistogramEmbedder, ColourHeuristicAnswerer, ColourWordsScorer, PixelRmsDistance, type ColourWordsOptions } from './fallback.js';
import { combineRewards, REFERENCE_REWARD_WEIGHTS, type CombinedRewards, type RewardWeights } from './combine.js';

export interface RewardScorerOptions {
  /** A transformers CLIP folder (config.json, model.safetensors, vocab.json, merges.txt). */
  clipDir?: string;
  /** A transformers DINOv2 folder (config.json, model.safetensors). */
  dinoDir?: string;
  /** LPIPS-alex safetensors file(s): AlexNet features + lin heads. */
  lpipsFiles?: string | readonly string[];
  /**
   * A transformers BlipForQuestionAnswering folder (config.json, model.safetensors, tokenizer.json,
   * e.g. Salesforce/blip-vqa-base): BLIP-VQA answers the checklists (id 'blip-vqa'). Ignored when
   * `answerer` is given.
   */
  blipVqaDir?: string;
  /** The checklist answerer (BLIP-VQA, or the customized model's understanding path). */
  answerer?: Answerer;
  tauHi?: number;
  tauLo?: number;
  diversity?: DiversityOptions;
  /** Options of the colour-words substitute (e.g. the character's palette). */
  colourWords?: ColourWordsOptions;
}

export interface RewardScorers {
  alignment: TextImageScorer;
  identity: IdentityScorer;
  diversity: DiversityScorer;
  vqa: VqaScorer;
  /** The scorer behind each component, e.g. { clip: 'fallback:colour-words', ... }. */
  ids: { vqa: string; clip: string; div: string; dino: string };
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
    const blip = BlipVqaAnswerer.load(o.blipVqaDir);
    disposers.push(() => blip.dispose());
    answerer = blip;
  }
  const vqa = new VqaScorer(answerer ?? new ColourHeuristicAnswerer());
  const ids = { vqa: vqa.id, clip: alignment.id, div: diversity.id, dino: identity.id };
  return {
    alignment, identity, diversity, vqa, ids,
    usesFallback: Object.values(ids).some((id) => id.startsWith('fallback:')),
    dispose: () => disposers.forEach((d) => d()),
  };
}

export interface RewardBatch {
  images: readonly ChwImage[];
  prompts: readonly string[];
  checklists: readonly (readonly ChecklistQuestion[])[];
  /** The character's reference images (shared by the batch). */
  references: readonly ChwImage[];
  /** Diversity groups; default: the prompt. */
  groupKeys?: readonly string[];
}

export interface RewardReport extends CombinedRewards {
  /** s_i, the max identity similarity (the "DINO similarity" eval metric). */
  identitySimilarity: number[];
  ids: RewardScorers['ids'];
}

/** Every component of method.md 3.4 for a batch, combined with the given weights. */
export async function computeRewards(s: RewardScorers, b: RewardBatch, weights: RewardWeights = REFERENCE_REWARD_WEIGHTS): Promise<RewardReport> {
  if (s.identity.tauHi !== weights.tauHi || s.identity.tauLo !== weights.tauLo) {
    throw new Error(`computeRewards: scorer band (${s.identity.tauLo}, ${s.identity.tauHi}) differs from the weights' (${weights.tauLo}, ${weights.tauHi})`);
  }
  const vqa = weights.vqa > 0 ? await s.vqa.score(b.images, b.checklists, b.prompts) : undefined;
  const clip = weights.clip > 0 ? s.alignment.score(b.images, b.prompts) : undefined;
  const div = weights.div > 0 ? s.diversity.score(b.images, b.groupKeys ?? b.prompts) : undefined;
  const id = s.identity.evaluate(b.images, b.references);
  const combined = combineRewards({ vqa, clip, div, dino: id.penalty }, weights);
  return { ...combined, identitySimilarity: id.similarity, ids: s.ids };
}
