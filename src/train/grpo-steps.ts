// The named steps of one Character-GRPO epoch (docs/method.md 3): draw prompts, roll out,
// score, advantages, update, evaluate. Each takes the GrpoSession of grpo-setup.ts; trainGrpo
// (grpo.ts) is the loop over them.
//
// Data parallel: every rank draws the same prompt order from the shared seed and takes a
// disjoint share of the epoch's rollouts (cfg.layout: whole prompt groups dealt round-robin, or
// the reference's contiguous slices of simulated GPUs); each rollout's noise (and, with windowStart
// 'per-rollout', its SDE window) comes from a seed of (seed, epoch, draw, k), so a rollout is the
// same on any rank and at any world size.
// The rewards (with prompt and draw ids) are gathered before the advantages, so every rank
// normalises over all groups of the epoch and keeps its own rollouts' advantages; every
// micro-step's gradient is summed over the ranks in rank order (ExactAllReduce, or the sharded
// reduce-scatter with cfg.shard, docs/sharding.md 7) and the mean taken before each optimizer step.
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as torch from '../torch/index.js';
import { PyRandom, Rng, encodePng, type ChwImage } from '../data/index.js';
import { computeRewards, type RewardReport } from '../reward/index.js';
import { groupAdvantages, type AdvantageResult } from './grpo-advantages.js';
import { clippedPolicyLoss, klPenalty } from './grpo-objective.js';
import { promptContexts, rollout, windowLogProb, type Rollout } from './grpo-rollout.js';
import { gatherRows } from './data-parallel.js';
import type { GrpoSession, TrainGrpoOptions } from './grpo-setup.js';

export type { TrainGrpoOptions } from './grpo-setup.js';


/** Where one rollout of the epoch is made (drawPrompts). */
export interface RolloutSlot {
  prompt: number;
  /** Index of the prompt draw in the epoch (the same on every rank). */
  draw: number;
  /** Which of the draw's groupSize rollouts. */
  k: number;
  /** The GPU it belongs to: a simulated one of the reference layout, else this process's rank. */
  rank: number;
  /** The sampling batch (reference layout; 0 otherwise). */
  batch: number;
  /** Rollouts with the same key share a diversity group (docs/method.md 3.4). */
  groupKey: string;
}

/** One rollout of the epoch with its slot and decoded image. */
export interface EpochRollout extends RolloutSlot {
  rollout: Rollout;
  image: ChwImage;
}

export type ScoreReport = Pick<RewardReport, 'total' | 'components' | 'identitySimilarity' | 'hasFace'>;

// Columns of the per-rollout record gathered across ranks.
export const COL = { draw: 0, prompt: 1, total: 2, vqa: 3, clip: 4, div: 5, dino: 6, identity: 7, face: 8, hasFace: 9, k: 10 } as const;
const NCOL = 11;
export const TERMS = ['vqa', 'clip', 'div', 'dino', 'face'] as const;

/** A 31-bit seed for one rollout, independent of which rank makes it. */
export function rolloutSeed(seed: number, epoch: number, draw: number, k: number): number {
  let h = (seed ^ 0x5bd1e995) >>> 0;
  for (const v of [epoch, draw, k]) {
    h = Math.imul(h ^ (v >>> 0), 0x9e3779b1) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h & 0x7fffffff;
}

/** The epoch's prompt draws: without replacement while prompts last (same sequence on every rank). */
export function epochDraws(rng: Rng, numPrompts: number, count: number): number[] {
  const order: number[] = [];
  while (order.length < count) order.push(...rng.shuffle(Array.from({ length: numPrompts }, (_, i) => i)));
  return order.slice(0, count);
}

/**
 * The reference's sampler (docs/method.md 3.2, DistributedKRepeatSampler) over `ranks` simulated GPUs:
 * per sampling batch, m = ranks * batch / groupSize distinct prompts, each repeated groupSize times,
 * the copies shuffled, GPU g taking the contiguous slice [g * batch, (g + 1) * batch). A prompt can
 * come back in a later batch of the epoch (its groups then merge in the advantages, docs/method.md 3.5).
 * Returns every slot of the epoch, GPU-major within each batch (the order each GPU makes them).
 */
export function referenceShuffleSlots(rng: Rng, numPrompts: number, ranks: number, batch: number, groupSize: number, promptsPerEpoch: number): RolloutSlot[] {
  const m = (ranks * batch) / groupSize;
  if (!Number.isInteger(m) || promptsPerEpoch % m !== 0) throw new Error(`reference layout: ${ranks} x ${batch} rollouts do not split into groups of ${groupSize} and ${promptsPerEpoch} draws`);
  if (m > numPrompts) throw new Error(`reference layout: a sampling batch draws ${m} distinct prompts (${ranks} x ${batch} / groupSize ${groupSize}) but the character has ${numPrompts}; lower layout.ranks or layout.batch, raise groupSize, or use preset 'project'`);
  const slots: RolloutSlot[] = [];
  for (let b = 0; b < promptsPerEpoch / m; b++) {
    const prompts = rng.shuffle(Array.from({ length: numPrompts }, (_, i) => i)).slice(0, m);
    const copies = rng.shuffle(prompts.flatMap((p, j) => Array.from({ length: groupSize }, (_, k) => ({ prompt: p, draw: b * m + j, k }))));
    copies.forEach((c, i) => {
      const rank = Math.floor(i / batch);
      slots.push({ ...c, rank, batch: b, groupKey: `${b}/${rank}/${c.prompt}` });
    });
  }
  // GPU-major within each batch.
  return slots.sort((x, y) => x.batch - y.batch || x.rank - y.rank);
}

/** The simulated GPUs of the reference layout that this process makes: a contiguous block of ranks / world. */
export function layoutRanksOf(ranks: number, rank: number, world: number): [number, number] {
  if (ranks % world !== 0) throw new Error(`reference layout: layout.ranks ${ranks} must be a multiple of the number of processes (${world})`);
  const per = ranks / world;
  return [rank * per, (rank + 1) * per];
}

/** Step 1, draw prompts: this rank's rollout slots of the epoch (cfg.layout). */
export function drawPrompts(s: GrpoSession): RolloutSlot[] {
  const { cfg } = s;
  if (cfg.layout.kind === 'reference-shuffle') {
    const [lo, hi] = layoutRanksOf(cfg.layout.ranks, s.rank, s.world);
    const all = referenceShuffleSlots(s.rng, s.prompts.length, cfg.layout.ranks, cfg.layout.batch, cfg.groupSize, cfg.promptsPerEpoch);
    return all.filter((x) => x.rank >= lo && x.rank < hi);
  }
  const draws = epochDraws(s.rng, s.prompts.length, cfg.promptsPerEpoch);
  const mine: RolloutSlot[] = [];
  // Draws dealt round-robin (rank r: r, r + W, ...) so the update's sums are the same at any W (microStepChunks).
  for (let d = s.rank; d < cfg.promptsPerEpoch; d += s.world) {
    for (let k = 0; k < cfg.groupSize; k++) mine.push({ prompt: draws[d]!, draw: d, k, rank: s.rank, batch: 0, groupKey: String(d) });
  }
  return mine;
}

/**
 * The reference's SDE window start of a GPU (docs/method.md 3.3 [quirk]): Python's random is seeded with
 * the process index before every rollout, then randint(lo, hi - windowSize), so each GPU always
 * uses the same start (ranks 0-7 with the published (0, 7) and 3: 3, 1, 0, 1, 1, 4, 4, 2).
 */
export function perRankWindowStart(rank: number, windowRange: [number, number], windowSize: number): number {
  return new PyRandom(rank).randint(windowRange[0], windowRange[1] - windowSize);
}

/** A decoded image in [0, 1] ([3, H, W] tensor) as the scorers' CHW image in [-1, 1]. */
export function unitToChw(unit: torch.Tensor): ChwImage {
  const [, h, w] = unit.shape as [number, number, number];
  const data = torch.scope(() => unit.mul(2).sub(1).contiguous().dataSync() as Float32Array);
  return { channels: 3, height: h, width: w, data };
}

export function decodeLatent(s: GrpoSession, latent: torch.Tensor): torch.Tensor {
  return torch.noGrad(() => torch.scope(() => s.vae.decodeToUnit(latent.unsqueeze(0)).squeeze(0)));
}

/** Step 2, roll out: one SDE-window rollout per slot, each seeded by (seed, epoch, draw, k); a
 * stop request is read before each rollout and each of its sampler steps. */
export function rollOut(s: GrpoSession, epoch: number, slots: RolloutSlot[]): EpochRollout[] {
  const { cfg } = s;
  const items: EpochRollout[] = [];
  let ctx: ReturnType<typeof promptContexts> | null = null;
  let ctxPrompt = -1;
  try {
    for (const slot of slots) {
      s.checkInterrupt();
      if (slot.prompt !== ctxPrompt) {
        ctx?.dispose();
        ctx = null;
        ctx = promptContexts(s.model, s.promptIds[slot.prompt]!);
        ctxPrompt = slot.prompt;
      }
      const seed = rolloutSeed(cfg.seed, epoch, slot.draw, slot.k);
      torch.manualSeed(seed);
      const windowRng = new Rng(seed);
      const r = rollout(s.model, ctx!, {
        grid: s.grid, numSteps: cfg.numSteps, timestepShift: cfg.timestepShift, cfgTextScale: cfg.cfgTextScale, noiseLevel: cfg.noiseLevel,
        windowSize: cfg.windowSize, windowRange: cfg.windowRange,
        ...(cfg.windowStart === 'per-rank' ? { windowStart: perRankWindowStart(slot.rank, cfg.windowRange, cfg.windowSize) } : { random: () => windowRng.next() }),
        checkStop: () => s.checkInterrupt(),
      });
      const unit = decodeLatent(s, r.latent);
      items.push({ ...slot, rollout: r, image: unitToChw(unit) });
      unit.dispose();
    }
  } catch (e) {
    for (const it of items) it.rollout.dispose();
    throw e;
  } finally {
    ctx?.dispose();
  }
  return items;
}

/** The injected reward as a report: no scorer components, no identity similarity. */
async function customRewards(s: GrpoSession, items: EpochRollout[], prompts: GrpoSession['prompts']): Promise<ScoreReport> {
  const total = await s.custom!(items.map((r) => r.image), items.map((r) => prompts[r.prompt]!.text));
  if (total.length !== items.length || total.some((v) => !Number.isFinite(v))) {
    throw new Error(`Character-GRPO: the injected reward returned ${total.length} values for ${items.length} images (finite numbers needed)`);
  }
  return { total: [...total], components: {}, identitySimilarity: items.map(() => Number.NaN) };
}

/** Step 3, score: the reward of every rollout (diversity within each groupKey when given); `prompts` is the list the rollouts index.
 * A stop request is read before it and between the images the checklist answerer is asked about. */
export async function score(s: GrpoSession, items: EpochRollout[], groupKeys?: string[], prompts: GrpoSession['prompts'] = s.prompts): Promise<ScoreReport> {
  s.checkInterrupt();
  if (s.custom) return customRewards(s, items, prompts);
  return computeRewards(s.scorers, {
    images: items.map((r) => r.image),
    prompts: items.map((r) => prompts[r.prompt]!.text),
    checklists: items.map((r) => prompts[r.prompt]!.checklist),
    references: s.references,
    ...(groupKeys ? { groupKeys } : {}),
    checkStop: () => s.checkInterrupt(),
  }, s.weights);
}

/** Step 4, advantages: every rank's rewards gathered, normalised per prompt over the epoch (docs/method.md 3.5). */
export function advantages(s: GrpoSession, items: EpochRollout[], report: ScoreReport): { rows: number[][]; all: AdvantageResult; mine: number[] } {
  const nan = (v: number[] | undefined, i: number): number => (v ? v[i]! : Number.NaN);
  const rows = gatherRows(s.group, items.map((it, i) => [
    it.draw, it.prompt, report.total[i]!, nan(report.components.vqa, i), nan(report.components.clip, i),
    nan(report.components.div, i), nan(report.components.dino, i), report.identitySimilarity[i]!,
    nan(report.components.face, i), report.hasFace ? Number(report.hasFace[i]!) : Number.NaN, it.k,
  ]), NCOL);
  if (s.cfg.layout.kind === 'prompt-groups') {
    // draws are dealt round-robin (drawPrompts): back into draw order, as one process has them
    rows.sort((a, b) => a[COL.draw]! - b[COL.draw]! || a[COL.k]! - b[COL.k]!);
    const all = groupAdvantages(rows.map((r) => String(r[COL.prompt])), rows.map((r) => r[COL.total]!), { clipMax: s.cfg.advClipMax });
    const at = new Map(rows.map((r, j) => [`${r[COL.draw]}/${r[COL.k]}`, j]));
    return { rows, all, mine: items.map((it) => all.advantages[at.get(`${it.draw}/${it.k}`)!]!) };
  }
  const all = groupAdvantages(rows.map((r) => String(r[COL.prompt])), rows.map((r) => r[COL.total]!), { clipMax: s.cfg.advClipMax });
  const offset = s.rank * items.length;
  return { rows, all, mine: all.advantages.slice(offset, offset + items.length) };
}


export interface UpdateResult {
  /** Sums over every rank's micro-steps (lossSum: the policy loss plus the KL term). */
  lossSum: number;
  /** The KL term's sum (0 with beta 0). */
  klSum: number;
  clipped: number;
  micro: number;
  gradNorm: number;
  updates: number;
}

/** One optimizer step: gradients averaged over the ranks, clipped when maxGradNorm is set; returns the norm before clipping. */
function optimizerStep(s: GrpoSession): number {
  const maxNorm = s.cfg.maxGradNorm ?? Number.POSITIVE_INFINITY;
  const sharded = s.sharded;
  if (sharded) {
    // The shards' gradients are sums over the ranks (reduce-scattered per micro-step, docs/sharding.md 7): the mean as below.
    if (s.world > 1) sharded.scaleGradients(1 / s.world);
    const norm = sharded.clipGradNorm(maxNorm);
    s.optimizer.step();
    s.optimizer.zeroGrad();
    sharded.zeroGrad();
    sharded.syncModel();
    return norm;
  }
  if (s.exact) {
    // Summed micro-step by micro-step in rank order (docs/sharding.md 4, 7); the mean over the ranks.
    s.exact.finish();
    torch.noGrad(() => {
      for (const p of s.params) p.grad!.mul_(1 / s.world);
    });
  }
  // With no clip the norm is still measured for the log: a clip at +Infinity scales by exactly 1.
  // clipGradNorm(s.params) + step() in one (the optimizer's parameters are s.params).
  const norm = s.optimizer.clipAndStep(maxNorm);
  s.optimizer.zeroGrad();
  s.precision.syncModel();
  return norm;
}

/** One micro-step of the update: window step `s` of rollout `i` (an index into the epoch's rollouts). */
export interface MicroStep {
  i: number;
  s: number;
}

/**
 * The update's micro-steps in chunks of `perUpdate` (one optimizer step each), in draw order
 * (each rollout's window steps in turn). With the 'prompt-groups' layout each chunk is then taken
 * window step major, then by rollout k, then by draw: with draws dealt round-robin to the ranks
 * (drawPrompts) and every micro-step's gradient summed over the ranks in rank order, the
 * gradients add up in the same order at any number of processes (docs/sharding.md 7). The order
 * within a chunk changes no result but the float roundings: every step of a chunk uses the same weights.
 */
export function microStepChunks(items: readonly Pick<EpochRollout, 'draw' | 'k'>[], windowSize: number, perUpdate: number, canonical: boolean): MicroStep[][] {
  const all: MicroStep[] = items.flatMap((_, i) => Array.from({ length: windowSize }, (_, s) => ({ i, s })));
  const chunks: MicroStep[][] = [];
  for (let at = 0; at < all.length; at += perUpdate) chunks.push(all.slice(at, at + perUpdate));
  if (!canonical) return chunks;
  const key = (m: MicroStep): [number, number, number] => [m.s, items[m.i]!.k, items[m.i]!.draw];
  return chunks.map((c) => [...c].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  }));
}

/** One micro-step's loss and backward; the gradients are collected (and, data parallel, summed over the ranks). */
function microStep(s: GrpoSession, ctx: ReturnType<typeof promptContexts>, step: Rollout['window'][number], adv: number, perUpdate: number): { loss: number; kl: number; clipped: boolean } {
  const { cfg } = s;
  return torch.scope(() => {
    s.sharded?.beforeForward();
    // With beta > 0 the reference policy's mean first (its weight swap must precede the graph below).
    const meanRef = s.reference ? s.reference.run(() => windowLogProb(s.model, ctx, step, s.grid, cfg.cfgTextScale, false).mean) : null;
    const { logProb, mean } = windowLogProb(s.model, ctx, step, s.grid, cfg.cfgTextScale);
    const l = clippedPolicyLoss(logProb, step.logProb, adv, { lo: cfg.clipRange, hi: cfg.clipRange });
    let loss = l.loss;
    let kl = 0;
    if (meanRef) {
      // docs/method.md 3.6: beta * mean((mu_theta - mu_ref)^2) / (2 sigma^2), no dt in the denominator.
      const t = klPenalty(mean, meanRef, step.sigma, cfg.beta);
      kl = t.item();
      loss = loss.add(t);
    }
    loss.div(perUpdate).backward();
    s.precision.collectGradients();
    s.exact?.reducePack();
    return { loss: loss.item(), kl, clipped: l.clipped };
  });
}

/** Step 5, update: the clipped objective over every stored window step (docs/method.md 3.6); disposes the rollouts. */
export function update(s: GrpoSession, items: EpochRollout[], adv: number[]): UpdateResult {
  const { cfg } = s;
  let [micro, clipped, lossSum, klSum, gradNorm, updates] = [0, 0, 0, 0, 0, 0];
  const totalMicro = items.length * cfg.windowSize;
  // The divisor of every micro-step loss (cfg.updateAccounting; the last update of an epoch may be partial).
  const perUpdate = cfg.updateAccounting === 'reference' ? cfg.microStepsPerUpdate : Math.min(cfg.microStepsPerUpdate, totalMicro);
  try {
    for (const chunk of microStepChunks(items, cfg.windowSize, Math.min(cfg.microStepsPerUpdate, Math.max(1, totalMicro)), cfg.layout.kind === 'prompt-groups')) {
      // A context per rollout of the chunk (the reference layout interleaves prompts; every rank
      // prefills as many, which full sharding's per-layer gathers need, docs/sharding.md 7).
      const ctxs = new Map<number, ReturnType<typeof promptContexts>>();
      try {
        for (const { i } of chunk) {
          if (ctxs.has(i)) continue;
          s.sharded?.beforeForward();
          ctxs.set(i, promptContexts(s.model, s.promptIds[items[i]!.prompt]!));
        }
        for (const { i, s: w } of chunk) {
          s.checkInterrupt();
          const r = microStep(s, ctxs.get(i)!, items[i]!.rollout.window[w]!, adv[i]!, perUpdate);
          lossSum += r.loss;
          klSum += r.kl;
          if (r.clipped) clipped++;
          micro++;
        }
      } finally {
        for (const c of ctxs.values()) c.dispose();
      }
      gradNorm = optimizerStep(s);
      updates++;
    }
  } finally {
    for (const it of items) it.rollout.dispose();
  }
  if (s.group) {
    torch.scope(() => {
      const t = torch.tensor([lossSum, clipped, micro, klSum], { dtype: 'float64' });
      s.group!.allReduce(t, 'sum');
      [lossSum, clipped, micro, klSum] = Array.from(t.dataSync() as Float64Array) as [number, number, number, number];
    });
  }
  return { lossSum, klSum, clipped, micro, gradNorm, updates };
}

/**
 * Mean over prompts of the population standard deviation of one column among that prompt's
 * rollouts: the spread the group-relative advantages read (0 = the term gives no signal).
 */
export function meanGroupStd(rows: readonly number[][], col: number): number {
  const groups = new Map<number, number[]>();
  for (const r of rows) groups.set(r[COL.prompt]!, [...(groups.get(r[COL.prompt]!) ?? []), r[col]!]);
  if (groups.size === 0) return 0;
  let sum = 0;
  for (const xs of groups.values()) {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    sum += Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length);
  }
  return sum / groups.size;
}

/** The epoch's metrics from the gathered rows, the advantages and the update. */
export function epochMetrics(s: GrpoSession, report: ScoreReport, rows: number[][], all: AdvantageResult, u: UpdateResult): Record<string, number> {
  const mean = (col: number): number => rows.reduce((a, r) => a + r[col]!, 0) / rows.length;
  const metrics: Record<string, number> = {
    reward: mean(COL.total),
    clip_fraction: u.micro ? u.clipped / u.micro : 0,
    zero_std_ratio: all.zeroStdRatio,
    mean_group_size: all.meanGroupSize,
    grad_norm: u.gradNorm,
    updates: u.updates,
  };
  if (s.reference) metrics.kl_loss = u.micro ? u.klSum / u.micro : 0;
  for (const t of TERMS) if (report.components[t]) metrics[`reward_${t}`] = mean(COL[t]);
  // Whether the checklist term can move the policy: its spread within a prompt's rollouts.
  if (report.components.vqa) metrics.reward_vqa_group_std = meanGroupStd(rows, COL.vqa);
  // Share of the rollouts in which a face was found (with the face reward only).
  if (report.hasFace) metrics.face_found = mean(COL.hasFace);
  if (s.custom) metrics.reward_custom = mean(COL.total);
  else metrics.identity_similarity = mean(COL.identity);
  // A trained checklist answerer's held-out accuracy beside the rewards it scores (cfg.checklistAnswerer).
  if (s.answererAccuracy && !s.custom) {
    metrics.vqa_answerer_accuracy = s.answererAccuracy.accuracy;
    metrics.vqa_answerer_majority = s.answererAccuracy.majority;
  }
  return metrics;
}

async function writeSample(s: GrpoSession, unit: torch.Tensor, epoch: number, p: number): Promise<void> {
  const pixels = torch.scope(() => unit.mul(255).round().to('uint8').permute([1, 2, 0]).contiguous());
  try {
    mkdirSync(s.samplesDir, { recursive: true });
    const png = await encodePng({ width: unit.shape[2]!, height: unit.shape[1]!, data: new Uint8Array((pixels.dataSync() as Uint8Array).buffer) });
    writeFileSync(join(s.samplesDir, `epoch-${String(epoch).padStart(4, '0')}-prompt-${p}.png`), png);
  } finally {
    pixels.dispose();
  }
}

/**
 * Mean, the per-seed means and, over them, the standard error (NaN with one seed) of rows
 * [seed, total].
 */
export function seedMeanAndSe(rows: readonly (readonly number[])[], seeds: number): { mean: number; se: number; perSeed: number[] } {
  const mean = rows.reduce((a, r) => a + r[1]!, 0) / rows.length;
  if (seeds < 2) return { mean, se: Number.NaN, perSeed: [mean] };
  const per = Array.from({ length: seeds }, (_, j) => {
    const mine = rows.filter((r) => r[0] === j);
    return mine.reduce((a, r) => a + r[1]!, 0) / mine.length;
  });
  const m = per.reduce((a, b) => a + b, 0) / seeds;
  const sd = Math.sqrt(per.reduce((a, b) => a + (b - m) ** 2, 0) / (seeds - 1));
  return { mean, se: sd / Math.sqrt(seeds), perSeed: per };
}

/**
 * Step 6, evaluate (docs/method.md 3.7): noise 0, evalSteps, every evaluation prompt (the held-out
 * ones with cfg.heldOutPrompts, else the training prompts) from cfg.evalSeeds fixed seeds each
 * (seed j of prompt p: rolloutSeed(seed, 0xffffffff, p, j); j = 0 is the reference's one seed).
 * With several ranks the (prompt, seed) pairs are split in contiguous blocks and the scores
 * gathered (every rank takes part, so none waits on a collective while rank 0 evaluates); rank 0
 * writes the first-seed images of the first 4 prompts it evaluates. With 2 or more seeds,
 * eval_reward_se is the standard error of eval_reward over the per-seed means, and
 * eval_reward_seed<j> each seed's mean (so a before/after difference can be paired seed by seed,
 * evalRiseOf).
 */
export async function evaluate(s: GrpoSession, epoch: number): Promise<Record<string, number>> {
  const { cfg } = s;
  const rngState = torch.getRngState();
  const units = s.evalPrompts.flatMap((_, p) => Array.from({ length: cfg.evalSeeds }, (_, j) => ({ p, j })));
  const per = Math.ceil(units.length / s.world);
  const mine = units.slice(s.rank * per, (s.rank + 1) * per);
  const items: EpochRollout[] = [];
  try {
    for (const { p, j } of mine) {
      s.checkInterrupt();
      const ctx = promptContexts(s.model, s.evalPromptIds[p]!);
      try {
        torch.manualSeed(rolloutSeed(cfg.seed, 0xffffffff, p, j));
        const r = rollout(s.model, ctx, { grid: s.grid, numSteps: cfg.evalSteps, timestepShift: cfg.timestepShift, cfgTextScale: cfg.cfgTextScale, noiseLevel: 0, windowSize: 0, windowRange: [0, 0], windowStart: 0, checkStop: () => s.checkInterrupt() });
        const unit = decodeLatent(s, r.latent);
        items.push({ prompt: p, draw: p, k: j, rank: s.rank, batch: 0, groupKey: `${p}/${j}`, rollout: r, image: unitToChw(unit) });
        if (s.main && p < 4 && j === 0) await writeSample(s, unit, epoch, p);
        unit.dispose();
      } finally {
        ctx.dispose();
      }
    }
    // [valid, seed, total, vqa, clip, div, dino, face] per (prompt, seed), padded to `per` rows.
    const report = items.length ? await score(s, items, items.map((it) => it.groupKey), s.evalPrompts) : null;
    const local: number[][] = [];
    const cols = 3 + TERMS.length;
    for (let i = 0; i < per; i++) {
      if (!report || i >= items.length) local.push(new Array<number>(cols).fill(0));
      else local.push([1, items[i]!.k, report.total[i]!, ...TERMS.map((t) => report.components[t]?.[i] ?? 0)]);
    }
    const rows = gatherRows(s.group, local, cols).filter((r) => r[0] === 1);
    const avg = (c: number): number => rows.reduce((a, r) => a + r[c]!, 0) / rows.length;
    const total = seedMeanAndSe(rows.map((r) => [r[1]!, r[2]!]), cfg.evalSeeds);
    const out: Record<string, number> = { eval_reward: total.mean };
    if (cfg.evalSeeds >= 2) {
      out.eval_reward_se = total.se;
      total.perSeed.forEach((v, j) => (out[`eval_reward_seed${j}`] = v));
    }
    TERMS.forEach((t, j) => {
      if (!s.custom && (s.weights[t] ?? 0) > 0) out[`eval_${t}`] = avg(3 + j);
    });
    return out;
  } finally {
    for (const it of items) it.rollout.dispose();
    torch.setRngState(rngState);
    rngState.dispose();
  }
}
