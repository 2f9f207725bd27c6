// The GRPO reward (method.md 3.4, 6.2): R_i = w_vqa·VQA_i + w_clip·CLIPT_i + w_div·DIV_i + w_dino·PEN_i,
// each term added only when its weight is > 0, with every component kept for the logs.
export interface RewardWeights {
  vqa: number;
  clip: number;
  div: number;
  dino: number;
  tauHi: number;
  tauLo: number;
}

/** The reference YAML `config/personalized_t2i_bagel.yaml` (method.md 3.8). */
export const REFERENCE_REWARD_WEIGHTS: Readonly<RewardWeights> = Object.freeze({ vqa: 0.3, clip: 0.45, div: 0.1, dino: 0.15, tauHi: 0.9, tauLo: 0.5 });
/** The hard-coded values `config/grpo.py` falls back to when the YAML is missing (method.md 3.8). */
export const FALLBACK_CONFIG_REWARD_WEIGHTS: Readonly<RewardWeights> = Object.freeze({ vqa: 0.3, clip: 0.2, div: 0.2, dino: 0.1, tauHi: 0.9, tauLo: 0.3 });

/** Per-image component values; a component that was not computed is absent. */
export interface RewardComponents {
  vqa?: number[];
  clip?: number[];
  div?: number[];
  /** PEN_i (already the band penalty, not the similarity). */
  dino?: number[];
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

const TERMS = ['vqa', 'clip', 'div', 'dino'] as const;

/** R_i from the components; a term with weight > 0 must be given for every image. */
export function combineRewards(components: RewardComponents, weights: RewardWeights = REFERENCE_REWARD_WEIGHTS): CombinedRewards {
  let n = -1;
  for (const t of TERMS) {
    const v = components[t];
    if (weights[t] > 0 && v === undefined) throw new Error(`combineRewards: weight ${t} = ${weights[t]} but no ${t} values`);
    if (weights[t] > 0 && v) {
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
    if (!(weights[t] > 0) || !v) continue;
    used[t] = [...v];
    weighted[t] = v.map((x) => weights[t] * x);
    weighted[t]!.forEach((x, i) => { total[i] += x; });
    means[t] = mean(v);
  }
  means.total = mean(total);
  return { total, components: used, weighted, means };
}
