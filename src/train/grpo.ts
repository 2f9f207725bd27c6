// Character-GRPO (docs/method.md 3): starting from a customized (SFT) character model, each
// epoch draws prompts with checklists, makes k rollouts per prompt with an SDE window, scores
// them (VQA checklist, text-image alignment, diversity, identity band), normalises rewards per
// prompt over the epoch, and updates the generation expert with the clipped objective.
//
// This file is the loop; the config and its schema are in grpo-config.ts, the wiring of the model,
// scorers and run directory in grpo-setup.ts, and the named steps (draw prompts, roll out, score,
// advantages, update, evaluate) in grpo-steps.ts.
//
// Presets (cfg.preset, docs/fidelity.md): 'reference' (the default) is the official code's
// behaviour, quirks included: one SDE window start per GPU (CPython's randint after seed(rank)),
// rollouts shuffled over 8 simulated GPUs in slices of 6 with diversity scored per slice, prompts
// drawn per sampling batch (so with replacement over the epoch), no gradient clipping, no face
// term, every micro-step divided by the full microStepsPerUpdate. 'project' corrects them (see
// GRPO_PRESET_FIELDS). With W ranks and `microStepsPerUpdate` micro-steps per rank between
// updates, one update is the mean of W * that many micro-step gradients, as the reference's
// accelerate accumulation.
//
// Checklist VQA: with rewards.scorers.blipVqaDir (CLI --blip-vqa <dir>) BLIP-VQA answers
// (id 'blip-vqa'); without it the customized model answers with its own understanding path
// (id 'self:understanding-path'). Face identity: rewards.faceIdentity (CLI --face-identity)
// 'auto' | 'on' | 'off' (see resolveFaceIdentity). Both are named in the log, config.json and
// every metrics line (`scorers`).
import { join } from 'node:path';
import { runTraining, type TrainingResult } from './loop.js';
import { CharacterModel } from '../character/index.js';
import { parseGrpoConfig, type GrpoConfigInput } from './grpo-config.js';
import { openGrpoSession, type GrpoSession } from './grpo-setup.js';
import { COL, advantages, drawPrompts, epochMetrics, evaluate, rollOut, score, update, type TrainGrpoOptions } from './grpo-steps.js';

export {
  CHECKLIST_ANSWERERS, DEFAULT_GRPO, FACE_IDENTITY_SETTINGS, GRPO_PRESETS, GRPO_PRESET_FIELDS, GrpoConfigSchema, grpoConfigFrom, layoutIssue,
  parseFaceIdentitySetting, parseGrpoConfig, type ChecklistAnswererSetting, type FaceIdentitySetting, type GrpoConfig, type GrpoConfigInput, type GrpoPreset, type RolloutLayout,
} from './grpo-config.js';
export { generationExpertParameters, resolveFaceIdentity, type FaceIdentityDecision } from './grpo-setup.js';
export { chooseChecklistAnswerer, type ChecklistAnswererChoice } from './grpo-answerer.js';
export { epochDraws, perRankWindowStart, referenceShuffleSlots, rolloutSeed, type TrainGrpoOptions } from './grpo-steps.js';

/** One epoch: draw prompts, roll out, score, advantages, update, evaluate. */
async function grpoEpoch(s: GrpoSession, epoch: number, o: TrainGrpoOptions) {
  // Sharded: the whole generation expert on every rank for the sampling passes (rollouts,
  // scoring, evaluation: their forward counts differ between ranks), per layer in the update
  // (docs/sharding.md 7). A collective; grad mode holds it whole anyway.
  s.sharded?.pin();
  // The starting model's evaluation (cfg.evalAtStart), before the first update touches it.
  const start = s.cfg.evalAtStart && epoch === 1 ? prefixed(await evaluate(s, 0), 'eval_', 'eval_start_') : {};
  const draws = drawPrompts(s);
  const items = rollOut(s, epoch, draws);
  let adv: ReturnType<typeof advantages>;
  let report: Awaited<ReturnType<typeof score>>;
  let u: ReturnType<typeof update>;
  try {
    // Diversity within each rollout's group key (cfg.layout: a draw's k rollouts, or one GPU's slice).
    report = await score(s, items, items.map((r) => r.groupKey));
    adv = advantages(s, items, report);
    o.onAdvantages?.(epoch, {
      prompts: adv.rows.map((r) => r[COL.prompt]!), draws: adv.rows.map((r) => r[COL.draw]!), rewards: adv.rows.map((r) => r[COL.total]!), advantages: adv.all.advantages,
    });
    s.sharded?.unpin();
    u = update(s, items, adv.mine);
  } catch (e) {
    // An interrupted epoch (StepInterrupted) leaves rollouts the update has not reached.
    for (const it of items) it.rollout.dispose();
    throw e;
  }
  const metrics = { ...start, ...epochMetrics(s, report, adv.rows, adv.all, u) };
  if (s.cfg.evalEvery > 0 && epoch % s.cfg.evalEvery === 0) {
    s.sharded?.pin();
    Object.assign(metrics, await evaluate(s, epoch));
  }
  // metrics.jsonl records are any JSON (MetricsRecord); the scorer ids name what produced each reward.
  const record = { ...metrics, scorers: s.rewardIds } as unknown as Record<string, number>;
  return { loss: u.micro ? u.lossSum / u.micro : 0, tokens: adv.rows.length * s.grid * s.grid, metrics: record };
}

/** The record with the key prefix `from` replaced by `to`. */
function prefixed(r: Record<string, number>, from: string, to: string): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k.startsWith(from) ? to + k.slice(from.length) : k, v]));
}

/** Saves the trained character model (rank 0, a finished run) with the GRPO provenance. */
function saveModel(s: GrpoSession, modelDir: string, epochs: number): void {
  const { cm } = s;
  s.precision.exportWeights(); // bf16-mixed: the generation expert leaves as its float32 masters
  const provenance = { ...cm.manifest.provenance, stage: 'grpo', grpo_run: s.cfg.out, epochs, vqa_scorer: s.custom ? 'custom' : s.scorers.ids.vqa };
  new CharacterModel(s.character, s.model, s.vae, cm.tokenizer, { ...cm.manifest, provenance }).save(modelDir);
}

export async function trainGrpo(config: GrpoConfigInput, o: TrainGrpoOptions = {}): Promise<TrainingResult & { modelDir: string }> {
  const cfg = parseGrpoConfig(config, 'Character-GRPO config');
  const s = await openGrpoSession(cfg, o);
  const ac = new AbortController();
  const onOuterAbort = (): void => ac.abort();
  if (o.signal?.aborted) ac.abort();
  o.signal?.addEventListener('abort', onOuterAbort);
  try {
    const result = await runTraining({
      runDir: s.runDir ?? cfg.out,
      main: s.main,
      resume: o.resume ?? false,
      totalSteps: cfg.epochs,
      trainStep: async (epoch) => {
        const r = await grpoEpoch(s, epoch, o);
        if (o.stopAfter !== undefined && epoch >= o.stopAfter) ac.abort();
        return r;
      },
      state: s.state, saveEvery: cfg.saveEvery, signal: ac.signal,
      handleSigint: o.handleSigint ?? true,
      ...(o.progress !== undefined ? { progress: o.progress } : {}),
      label: 'grpo', plot: { series: ['loss', 'reward'], title: 'Character-GRPO' },
    });
    const modelDir = join(cfg.out, 'model');
    // sharded runs gather the whole weights on every rank first (a collective, docs/sharding.md 4)
    if (s.sharded && !result.interrupted) s.sharded.prepareExport();
    if (s.main && !result.interrupted) saveModel(s, modelDir, result.step);
    s.group?.barrier();
    return { ...result, modelDir };
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
    s.dispose();
  }
}
