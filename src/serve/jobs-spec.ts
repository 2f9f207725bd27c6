// A queued job's row → the spec its worker runs (job-worker.ts JobSpec): the job's options over
// the defaults, checked by the same schemas as the request (schemas.ts) and, for GRPO, by the
// one GRPO config schema (GrpoConfigSchema).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Character } from '../data/index.js';
import { DEFAULT_GRPO, grpoConfigFrom, tinySftConfig, type GrpoConfig, type SftConfigInput } from '../train/index.js';
import type { JobRow } from './db.js';
import { baseRun, hasModel, type JobDirs } from './jobs-dirs.js';
import type { JobProgress } from './jobs-progress.js';
import type { JobSpec } from './job-worker.js';
import { JobRequestSchema, type CustomizeOptionsSchema, type EvalOptionsSchema, type GrpoOptionsSchema } from './schemas.js';
import type { z } from 'zod';

function customizeConfig(c: Character, o: z.infer<typeof CustomizeOptionsSchema>): SftConfigInput {
  const steps = o.steps ?? 200;
  return {
    totalSteps: steps,
    saveEvery: Math.min(o.save_every ?? 50, steps),
    vae: { ...(o.vae_steps !== undefined ? { steps: o.vae_steps } : {}) },
    data: {
      characters: [c.id],
      ...(o.image_size !== undefined ? { imageSize: o.image_size } : {}),
      ...(o.vit_image_size !== undefined ? { vitImageSize: o.vit_image_size } : {}),
      ...(o.max_images !== undefined ? { maxImages: o.max_images } : {}),
    },
    ...(o.sample_every !== undefined ? { sampling: { every: o.sample_every } } : {}),
    ...(o.lr !== undefined ? { optim: { lr: o.lr } } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
  };
}

function grpoConfig(o: z.infer<typeof GrpoOptionsSchema>, from: string, runDir: string): Omit<GrpoConfig, 'from' | 'out'> {
  const numSteps = o.num_steps ?? DEFAULT_GRPO.numSteps;
  const windowSize = Math.min(o.window_size ?? DEFAULT_GRPO.windowSize, numSteps - 1);
  const windowEnd = Math.min(DEFAULT_GRPO.windowRange[1], Math.max(windowSize, Math.floor(numSteps / 2)));
  const epochs = o.epochs ?? DEFAULT_GRPO.epochs;
  const { from: _from, out: _out, ...config }: GrpoConfig = grpoConfigFrom({
    epochs,
    promptsPerEpoch: o.prompts_per_epoch ?? DEFAULT_GRPO.promptsPerEpoch,
    groupSize: o.group_size ?? DEFAULT_GRPO.groupSize,
    numSteps,
    evalSteps: o.eval_steps ?? DEFAULT_GRPO.evalSteps,
    evalEvery: o.eval_every ?? DEFAULT_GRPO.evalEvery,
    saveEvery: Math.min(o.save_every ?? DEFAULT_GRPO.saveEvery, epochs),
    windowSize,
    windowRange: [0, windowEnd],
    // Absent: the preset's learning rate (GRPO_PRESET_FIELDS).
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    seed: o.seed ?? DEFAULT_GRPO.seed,
    preset: o.preset ?? DEFAULT_GRPO.preset,
  }, from, runDir);
  return config;
}

function evalLimits(o: z.infer<typeof EvalOptionsSchema>): Extract<JobSpec, { kind: 'eval' }>['limits'] {
  return {
    maxItems: o.max_items ?? 8, maxTokens: o.max_tokens ?? 48, maxAnswerTokens: o.max_answer_tokens ?? 16, maxThinkTokens: o.max_think_tokens ?? 48,
    numTimesteps: o.num_timesteps ?? 20, samplesPerPrompt: o.samples_per_prompt ?? 2,
    ...(o.temperature !== undefined ? { temperature: o.temperature } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}),
  };
}

/** The worker's spec of a job for character `c` (its run directory created). */
export function jobSpecOf(job: JobRow, c: Character, d: JobDirs): JobSpec {
  const runDir = join(d.runsDir, job.id);
  mkdirSync(d.runsDir, { recursive: true });
  const req = JobRequestSchema.parse({ kind: job.kind, character: c.id, options: (job.config as { options?: unknown }).options ?? {} });
  const common = { id: job.id, runDir, character: c };
  if (req.kind === 'customize') return { ...common, kind: 'customize', config: customizeConfig(c, req.options), base: baseRun(d) };
  const from = join(d.modelsDir, c.id);
  if (!hasModel(d, c.id)) throw new Error(`character '${c.id}' has no customized model to start from`);
  if (req.kind === 'grpo') return { ...common, kind: 'grpo', config: grpoConfig(req.options, from, runDir), from };
  return { ...common, kind: 'eval', modelDir: from, independent: req.options.independent ?? true, limits: evalLimits(req.options) };
}

/** The progress of a job whose worker starts now: its phase (the VAE stage first when a
 * customization has no base run) and its total. */
export function startedProgress(p: JobProgress, spec: JobSpec): JobProgress {
  const total = spec.kind === 'customize' ? (typeof spec.config.totalSteps === 'number' ? spec.config.totalSteps : null) : spec.kind === 'grpo' ? spec.config.epochs : null;
  const out: JobProgress = { ...p, phase: spec.kind === 'eval' ? 'eval' : 'train', total };
  if (spec.kind === 'customize' && !spec.base) {
    out.phase = 'vae';
    out.vae = { step: 0, total: tinySftConfig(spec.config).vae.steps };
  }
  return out;
}
