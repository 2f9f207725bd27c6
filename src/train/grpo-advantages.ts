// Group-relative advantages (docs/method.md 3.5): rewards are pooled per prompt over the whole epoch,
// normalised with the population std (+1e-4), and clipped to [-adv_clip_max, adv_clip_max].

export interface AdvantageOptions {
  /** Normalise by the std over all rewards of the epoch instead of per prompt (reference flag `global_std`). */
  globalStd?: boolean;
  /** Clip bound (reference: 5). */
  clipMax?: number;
}

export interface AdvantageResult {
  advantages: number[];
  /** Fraction of groups whose rewards were all equal (advantage 0 for every member). */
  zeroStdRatio: number;
  meanGroupSize: number;
}

function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length; // population std, as numpy's default
  return { mean, std: Math.sqrt(variance) };
}

/** Advantages for rewards[i] of prompts[i]; prompts with the same key form one group. */
export function groupAdvantages(prompts: readonly string[], rewards: readonly number[], o: AdvantageOptions = {}): AdvantageResult {
  if (prompts.length !== rewards.length) throw new Error(`groupAdvantages: ${prompts.length} prompts but ${rewards.length} rewards`);
  const clipMax = o.clipMax ?? 5;
  const groups = new Map<string, number[]>();
  prompts.forEach((p, i) => {
    if (!groups.has(p)) groups.set(p, []);
    groups.get(p)!.push(i);
  });
  const global = o.globalStd ? meanStd(rewards) : null;
  const advantages = new Array<number>(rewards.length).fill(0);
  let zeroStd = 0;
  for (const members of groups.values()) {
    const stats = meanStd(members.map((i) => rewards[i]!));
    if (stats.std === 0) zeroStd++;
    const std = global ? global.std : stats.std;
    for (const i of members) {
      const a = (rewards[i]! - stats.mean) / (std + 1e-4);
      advantages[i] = Math.max(-clipMax, Math.min(clipMax, a));
    }
  }
  return { advantages, zeroStdRatio: groups.size ? zeroStd / groups.size : 0, meanGroupSize: groups.size ? rewards.length / groups.size : 0 };
}
