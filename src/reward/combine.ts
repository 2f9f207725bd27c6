// The GRPO reward (docs/method.md 3.4, 6.2): R_i = w_vqa·VQA_i + w_clip·CLIPT_i + w_div·DIV_i + w_dino·PEN_i,
// plus w_face·FACE_i for human characters when the face-identity scorer is on (docs/reward-scorers.md; not in the
// reference), each term added only when its weight is > 0, with every component kept for the logs.
export interface RewardWeights {
  vqa: number;
  clip: number;
  div: number;
  dino: number;
  /**
   * Face identity (mean FaceRes cosine to the reference faces, src/reward/face-reward.ts). The
   * reference has no face term: absent means 0 here, and computeRewards uses
   * DEFAULT_FACE_REWARD_WEIGHT when the suite has a face scorer and this is absent.
   */
  face?: number;
  tauHi: number;
  tauLo: number;
}

/**
 * w_face when the face-identity scorer is on and the weights give none. 0.3: as much as the
 * checklist term and twice the identity band's, less than CLIP-T's 0.45. The mean FaceRes cosine
 * of a photo to other photos of the same person is about 0.65-0.7 and to another person's about
 * 0.4 (RoleScape-20 Adrien Brody vs Leonardo, Coco, Joey at 256 px), and an image with no face
 * scores 0, so with a larger weight this one term would decide most rankings within a prompt group
 * (the advantages are normalised per prompt) and push every rollout towards a frontal close-up
 * whatever the prompt asks; at 0.3 the right face is worth about +0.09 over a wrong one and a
 * missing face about -0.2, without outweighing prompt following (VQA + CLIP-T, 0.75 together).
 */
export const DEFAULT_FACE_REWARD_WEIGHT = 0.3;

/** The reference YAML `config/personalized_t2i_bagel.yaml` (docs/method.md 3.8). */
export const REFERENCE_REWARD_WEIGHTS: Readonly<RewardWeights> = Object.freeze({ vqa: 0.3, clip: 0.45, div: 0.1, dino: 0.15, tauHi: 0.9, tauLo: 0.5 });
/** The hard-coded values `config/grpo.py` falls back to when the YAML is missing (docs/method.md 3.8). */
export const FALLBACK_CONFIG_REWARD_WEIGHTS: Readonly<RewardWeights> = Object.freeze({ vqa: 0.3, clip: 0.2, div: 0.2, dino: 0.1, tauHi: 0.9, tauLo: 0.3 });

/** Per-image component values; a component that was not computed is absent. */
export interface RewardComponents {
  vqa?: number[];
  clip?: number[];
  div?: number[];
  /** PEN_i (already the band penalty, not the similarity). */
  dino?: number[];
  /** Face identity reward (mean cosine to the reference faces, or the no-face value). */
  face?: number[];
}

export interface CombinedRewards {
  /** R_i. */
  total: number[];
  /** The raw components that entered the sum (weight > 0). */
  components: RewardComponents;
  /** weight · component, per term. */
  weighted: RewardComponents;
  /** Batch means of each raw component and of the total, for logging. */
  means: Partial<Record<keyof RewardComponents | 'total', number>>;
}

const TERMS = ['vqa', 'clip', 'div', 'dino', 'face'] as const;

/** A term's weight; an absent one (face in the reference weights) is 0. */
const weightOf = (weights: RewardWeights, t: (typeof TERMS)[number]): number => weights[t] ?? 0;

/** R_i from the components; a term with weight > 0 must be given for every image. */
export function combineRewards(components: RewardComponents, weights: RewardWeights = REFERENCE_REWARD_WEIGHTS): CombinedRewards {
  let n = -1;
  for (const t of TERMS) {
    const v = components[t];
    const w = weightOf(weights, t);
    if (w > 0 && v === undefined) throw new Error(`combineRewards: weight ${t} = ${w} but no ${t} values`);
    if (w > 0 && v) {
      if (n >= 0 && v.length !== n) throw new Error(`combineRewards: ${t} has ${v.length} values, expected ${n}`);
      n = v.length;
    }
  }
  if (n < 0) n = 0;
  const total = new Array<number>(n).fill(0);
  const used: RewardComponents = {};
  const weighted: RewardComponents = {};
  const means: CombinedRewards['means'] = {};
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  for (const t of TERMS) {
    const v = components[t];
    const w = weightOf(weights, t);
    if (!(w > 0) || !v) continue;
    used[t] = [...v];
    weighted[t] = v.map((x) => w * x);
    weighted[t]!.forEach((x, i) => { total[i] += x; });
    means[t] = mean(v);
  }
  means.total = mean(total);
  return { total, components: used, weighted, means };
}
