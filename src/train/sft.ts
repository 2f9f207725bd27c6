// Stage 1, Unified-SFT (docs/method.md 2), as one loop you can read top to bottom:
// batch -> forward -> 0.25 CE + 1.0 MSE (global token means) -> backward -> all-reduce ->
// clip 1.0 -> AdamW (0.9, 0.95, eps 1e-15) -> EMA -> log / sample / checkpoint.
//
// The run directory, resume and Ctrl-C handling are the shared loop's (loop.ts, run-dir.ts);
// this file supplies the step, the state and the samples. The VAE is frozen and outside the
// model; everything else trains, or only LoRA adapters when lora.enabled.
//
// Data parallel (docs/method.md 2.7; docs/architecture.md "Training"): with a ProcessGroup, rank r takes its own packs of every step
// (sft-data.ts), the token counts are all-reduced so each term stays a global token mean
// (docs/method.md 2.3: CE = CE_sum / N_global), gradients are summed with bucketed all-reduce,
// initial weights are broadcast from rank 0, and only rank 0 logs, samples and saves.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as torch from '../torch/index.js';
import { noGrad, scope, tensor, type ProcessGroup, type Tensor } from '../torch/index.js';
import {
  AdamW, EMA, MixedPrecision, applyLoRA, constantSchedule, removeLoRA, saveLoRA, warmupCosineSchedule, type Schedule,
} from '../nn/index.js';
import {
  Bagel, decodeText, disposeBatch, generateImage, latentDownsample, loadCheckpoint, newContext, prefillText,
  saveCheckpoint, trainingForward, weightedLoss, CE_WEIGHT, MSE_WEIGHT, type AutoEncoder, type ModelConfig,
} from '../model/index.js';
import {
  Tokenizer, characterSampleTexts, characterTexts, loadSampleCharacter, readRoleScapeCharacter, rolePlayPrompt, t2iCaption,
  trainTinyTokenizer, type Character,
} from '../data/index.js';
import { DEFAULT_VOLATILE_KEYS, RunDir, type Json } from './run-dir.js';
import { runTraining, type StepResult, type TrainingResult } from './loop.js';
import { checkpointState, jsonState } from './checkpoint-state.js';
import { CharacterModel, describeBase } from '../character/index.js';
import { SftData, type SftBatch, fewShotCharacter, loadSizedCharacterImages, modelConfigForTokenizer, resolveRecipe, vaeImageSpec } from './sft-data.js';
import { parseSftConfig, type SftConfig, type SftConfigInput } from './sft-config.js';
import { freezeVae, loadVae, trainVae } from './vae-stage.js';
import { pngOf } from './sft-images.js';
import type { ProgressStream } from './progress.js';
import { ExactAllReduce, openSharding, shardedCheckpointState } from './shard/index.js';
import { allReduceGradients, broadcastModule, ensureGradients } from './data-parallel.js';

export interface TrainSftOptions {
  /** The run directory (config.json, metrics.jsonl, checkpoints/, samples/, final weights). */
  runDir: string;
  /** Continue the run in runDir from its latest checkpoint. */
  resume?: boolean;
  /** Data parallel: the group this process belongs to (e.g. ProcessGroup.fromEnv()). */
  group?: ProcessGroup | null;
  /** Characters to train on (default: loaded from config.data.characters). */
  characters?: Character[];
  /** Stop like Ctrl-C (finish the step, checkpoint, return). */
  signal?: AbortSignal;
  /** A synchronous stop check after every step of either stage (loop.ts RunTrainingOptions.interrupt). */
  interrupt?: () => boolean;
  /** Progress bar stream (default stderr; null for none). */
  progress?: ProgressStream | null;
  /** Handle SIGINT (default true). */
  handleSigint?: boolean;
  /** Stop after this many steps in this process (tests interrupt a run this way); the run's
   * schedule still uses config.totalSteps. */
  stopAfter?: number;
  /** Called on every rank after each step's optimizer update (tests measure memory there). */
  afterStep?: (step: number) => void;
}

export interface TrainSftResult extends TrainingResult {
  runDir: string;
  /** The VAE stage when this call ran it (null: given, or finished earlier); when it was
   * interrupted the SFT loop did not start (step 0) and vae/ holds the stage's checkpoint. */
  vaeStage: TrainingResult | null;
  /** Final weights (published key names): model.safetensors, or null when interrupted. */
  modelPath: string | null;
  /** LoRA adapter file when exported as LoRA. */
  adapterPath: string | null;
  /** A CharacterModel folder (single-character export: full weights, or with export "lora" the adapters over a referenced base). */
  characterModelPath: string | null;
  modelConfig: ModelConfig;
}

/** Characters named by the config: 'sample' or RoleScape-20 character folders. */
export function loadCharacters(names: string[]): Character[] {
  return names.map((n) => {
    if (n === 'sample') return loadSampleCharacter().character;
    return readRoleScapeCharacter(resolve(n), { split: 'train' }).loaded.character;
  });
}

/** The tokenizer of a run: config.tokenizer, or a byte-level BPE trained on the characters. */
export function runTokenizer(config: SftConfig, characters: Character[]): Tokenizer {
  if (config.tokenizer) return Tokenizer.fromFile(config.tokenizer);
  const texts = characters.flatMap((c) => [...characterTexts(c), ...characterSampleTexts(c)]);
  return trainTinyTokenizer(texts, { vocabSize: config.tokenizerVocabSize }).load();
}

/** The learning-rate schedule of the config (pure in the step). */
export function sftSchedule(config: SftConfig): Schedule {
  const o = config.optim;
  return o.schedule === 'constant'
    ? constantSchedule(o.lr, { warmupSteps: o.warmupSteps })
    : warmupCosineSchedule({ lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: config.totalSteps, minLr: o.minLr });
}

export interface SftLossResult {
  /** Global (all ranks) token means and the weighted loss. */
  loss: number;
  ce: number;
  mse: number;
  numCe: number;
  numMse: number;
  tokens: number;
}

/**
 * Forward and backward of a rank's packs with the loss of docs/method.md 2.3: each term is a global
 * token mean, CE = CE_sum / N_ce_global (N all-reduced over the ranks first, from the batches'
 * structure), one pack at a time with gradients accumulating. Summing the gradients over the
 * ranks then gives the gradient of 0.25 CE + 1.0 MSE over the whole global batch, and the float
 * operations are the same however the packs are split over ranks: 2 ranks x 1 pack and 1 rank x
 * 2 packs end with bit-identical gradients. Returns the global loss values (the same on every rank).
 */
export function sftForwardBackward(model: Bagel, batches: SftBatch | SftBatch[], o: {
  group?: ProcessGroup | null; ceWeight?: number; mseWeight?: number; timestepShift?: number;
  /** Called after each pack's backward (bf16-mixed moves the gradients into float32 there, docs/precision.md). */
  afterBackward?: () => void;
  /** Called before each pack's forward (full sharding gathers the embedding and head units, docs/sharding.md 4). */
  beforeForward?: () => void;
} = {}): SftLossResult {
  return scope(() => {
    const list = Array.isArray(batches) ? batches : [batches];
    const group = o.group ?? null;
    const ceWeight = o.ceWeight ?? CE_WEIGHT;
    const mseWeight = o.mseWeight ?? MSE_WEIGHT;
    // global [N_ce, N_mse, tokens]
    const local = [0, 0, 0];
    for (const b of list) {
      local[0] += b.batch.ceIndexes.length;
      local[1] += b.batch.vae?.mseRows.length ?? 0;
      local[2] += b.tokens;
    }
    const counts = tensor(local, { dtype: 'float64' });
    if (group) group.allReduce(counts, 'sum');
    const [nCe, nMse, tokens] = Array.from(counts.dataSync() as Float64Array) as [number, number, number];
    const sums = [0, 0];
    for (const b of list) {
      o.beforeForward?.();
      scope(() => {
        const l = trainingForward(model, b.batch, { timestepShift: o.timestepShift ?? 1.0, reduction: 'sum', ...(b.noise ? { noise: b.noise } : {}) });
        const ce = l.ce && nCe > 0 ? l.ce : null;
        const mse = l.mse && nMse > 0 ? l.mse : null;
        if (ce) sums[0] += ce.item();
        if (mse) sums[1] += mse.item();
        weightedLoss({ ce, mse }, { ce: ceWeight, mse: mseWeight }, { ce: nCe, mse: nMse })?.backward();
      });
      o.afterBackward?.();
    }
    const stats = tensor(sums, { dtype: 'float64' });
    if (group) group.allReduce(stats, 'sum');
    const [gCe, gMse] = Array.from(stats.dataSync() as Float64Array) as [number, number];
    const ce = nCe > 0 ? gCe / nCe : 0;
    const mse = nMse > 0 ? gMse / nMse : 0;
    return { loss: ceWeight * ce + mseWeight * mse, ce, mse, numCe: nCe, numMse: nMse, tokens };
  });
}

/** Prompts the samples use: a role-play reply and a T2I caption from the first scene. */
function samplePrompts(c: Character): { reply: string; caption: string } {
  const s = c.scenes[0] ?? c.dialogue[0] ?? { user: 'Hello!', reply: '' };
  return {
    reply: rolePlayPrompt({ description: c.description, opening: c.opening, user: s.user, name: c.names.prefix }),
    caption: t2iCaption({ description: c.description, user: s.user, reply: s.reply }),
  };
}

/** Greedy reply + one generated image (ODE with text CFG, VAE decode), as PNG. */
export async function sftSamples(model: Bagel, vae: AutoEncoder, tok: Tokenizer, c: Character, imageSize: number, s: SftConfig['sampling']): Promise<{ reply: string; png: Uint8Array }> {
  const p = samplePrompts(c);
  const wasTraining = model.training;
  model.eval();
  const ctx = newContext(model);
  const gen = newContext(model);
  const empty = newContext(model);
  try {
    prefillText(model, ctx, await tok.encode(p.reply));
    const reply = tok.decode(decodeText(model, ctx, { maxTokens: s.maxTokens }), { skipSpecialTokens: true });
    prefillText(model, gen, await tok.encode(p.caption));
    const grid = imageSize / latentDownsample(model.config);
    const image = noGrad(() => scope(() => {
      const latent = generateImage(model, { gen, cfgText: empty }, { h: grid, w: grid, numTimesteps: s.numTimesteps, timestepShift: s.timestepShift, cfgTextScale: s.cfgTextScale });
      return vae.decode(latent.unsqueeze(0)).squeeze(0).clamp(-1, 1);
    }));
    try {
      return { reply, png: await pngOf(image) };
    } finally {
      image.dispose();
    }
  } finally {
    ctx.dispose();
    gen.dispose();
    empty.dispose();
    model.train(wasTraining);
  }
}

/** The VAE stage run by trainSft: its result, or null when the VAE was given or already trained. */
async function sftVaeStage(config: SftConfig, characters: Character[], presetConfig: ModelConfig, vaeDir: string, o: TrainSftOptions): Promise<TrainingResult | null> {
  // Resumed with the run (its checkpoints are in vae/), stopped by the same signal.
  // Sized as SFT sizes VAE images (data.imageSizing), so the VAE learns the shapes it will encode.
  const images = await loadSizedCharacterImages(characters, vaeImageSpec(presetConfig, config.data.imageSize, config.data.imageSizing));
  try {
    const r = await trainVae({
      images, config: presetConfig.vae, steps: config.vae.steps, lr: config.vae.lr, batchSize: config.vae.batchSize,
      klWeight: config.vae.klWeight, calibrate: config.vae.calibrate, seed: config.vae.seed, runDir: vaeDir, sampleEvery: config.vae.sampleEvery,
      saveEvery: config.vae.saveEvery, runConfig: { ...config.vae, imageSizing: config.data.imageSizing } as unknown as Json, resume: o.resume ?? false,
      handleSigint: o.handleSigint ?? true, ...(o.signal ? { signal: o.signal } : {}), ...(o.interrupt ? { interrupt: o.interrupt } : {}),
      ...(o.progress !== undefined ? { progress: o.progress } : {}),
    });
    r.vae?.dispose();
    return { step: r.step, interrupted: r.interrupted, resumedFrom: r.resumedFrom, lastCheckpoint: r.lastCheckpoint };
  } finally {
    images.forEach((t) => t.dispose());
  }
}

/** Every rank learns whether the VAE stage (rank 0's) was interrupted; the broadcast is the barrier. */
function vaeStageStopped(vaeStage: TrainingResult | null, group: ProcessGroup | null): boolean {
  return scope(() => {
    const flag = tensor([vaeStage?.interrupted ? 1 : 0], { dtype: 'float32' });
    if (group) group.broadcast([flag], 0);
    return flag.item() === 1;
  });
}

/** What one SFT run trains with: the model, its precision or sharding, the optimizer and the EMA. */
interface SftTrainables {
  model: Bagel;
  sharded: ReturnType<typeof openSharding>;
  precision: NonNullable<ReturnType<typeof openSharding>> | MixedPrecision;
  trainable: Tensor[];
  exact: ExactAllReduce | null;
  opt: AdamW;
  emaSource: ConstructorParameters<typeof EMA>[0];
  ema: EMA | null;
}

/** The model (init, LoRA, broadcast), the precision mode or sharding, AdamW and the EMA. */
function openSftTrainables(config: SftConfig, mc: ModelConfig, group: ProcessGroup | null): SftTrainables {
  torch.manualSeed(config.seed);
  const model = new Bagel(mc);
  if (config.init) loadCheckpoint(config.init, model);
  if (config.lora.enabled) applyLoRA(model, { targets: config.lora.targets, r: config.lora.r, alpha: config.lora.alpha, dropout: config.lora.dropout });
  if (group) broadcastModule(model, group);
  model.train();
  // The precision mode converts the model and names what the optimizer updates (docs/precision.md).
  // Sharded modes hold the masters as shards (docs/sharding.md 1); otherwise the precision mode does.
  const sharded = openSharding(model, config, group);
  const precision = sharded ?? new MixedPrecision(model, config.precision, config.activationCheckpointing);
  model.setActivationCheckpointing(config.activationCheckpointing);
  const trainable = precision.params;
  // plain data parallel: gradients summed exactly, pack by pack (docs/sharding.md 4)
  const exact = !sharded && group && group.worldSize > 1 ? new ExactAllReduce(trainable, group) : null;
  const opt = new AdamW(trainable, { lr: config.optim.lr, betas: config.optim.betas, eps: config.optim.eps, weightDecay: config.optim.weightDecay });
  // The EMA averages what the optimizer updates (the float32 masters in bf16-mixed).
  const emaSource = sharded ? model : config.precision === 'bf16-mixed' ? (precision as MixedPrecision).namedParams() : model;
  const ema = config.ema.enabled ? new EMA(emaSource, config.ema.decay, { trainableOnly: true }) : null;
  return { model, sharded, precision, trainable, exact, opt, emaSource, ema };
}

/** One SFT step (docs/method.md 2): forward and backward pack by pack, clip, AdamW, EMA. */
function sftStep(config: SftConfig, t: SftTrainables, data: SftData, group: ProcessGroup | null, position: { step: number }): (step: number) => StepResult {
  const schedule = sftSchedule(config);
  const { sharded, precision, exact, opt } = t;
  return (step) => scope(() => {
    const lr = schedule(step - 1);
    opt.setLr(lr);
    // one batch per pack, forward and backward pack by pack (see sftForwardBackward)
    const bs = data.stepBatches(step - 1, { rank: group?.rank ?? 0, worldSize: group?.worldSize ?? 1, packsPerRank: config.data.packsPerRank, order: 'interleaved' });
    try {
      opt.zeroGrad();
      sharded?.zeroGrad();
      const r = sftForwardBackward(t.model, bs, {
        group, ceWeight: config.ceWeight, mseWeight: config.mseWeight, timestepShift: config.timestepShift, afterBackward: () => {
          precision.collectGradients();
          exact?.reducePack();
        },
        ...(sharded ? { beforeForward: () => sharded.beforeForward() } : {}),
      });
      let gradNorm: number;
      if (sharded) {
        gradNorm = sharded.clipGradNorm(config.optim.gradClip);
        opt.step();
      } else {
        exact?.finish();
        ensureGradients(t.trainable);
        // clipGradNorm(trainable) + step() with the clip applied inside the update (docs/engine.md, "Fused optimizer step")
        gradNorm = opt.clipAndStep(config.optim.gradClip);
      }
      precision.syncModel();
      // rank 0 samples after this step: every rank gathers the whole model for it (docs/sharding.md 4)
      if (sharded && config.sampling.every > 0 && step % config.sampling.every === 0) sharded.pin();
      t.ema?.update(t.emaSource);
      position.step = step;
      return { loss: r.loss, tokens: r.tokens, metrics: { ce: r.ce, mse: r.mse, lr, gradNorm, numCe: r.numCe, numMse: r.numMse } };
    } finally {
      for (const b of bs) {
        disposeBatch(b.batch);
        b.noise?.dispose();
      }
    }
  });
}

interface SftExport {
  modelPath: string | null;
  adapterPath: string | null;
  characterModelPath: string | null;
}

/** Rank 0's outputs of a finished run: EMA, adapters, the raw weights and the character folder. */
function exportSft(config: SftConfig, t: SftTrainables, characters: Character[], vae: AutoEncoder, tok: Tokenizer, mc: ModelConfig, where: { root: string; vaePath: string; step: number }): SftExport {
  const out: SftExport = { modelPath: null, adapterPath: null, characterModelPath: null };
  const { model, ema } = t;
  const { root, step } = where;
  if (ema) scope(() => torch.safetensors.save(join(root, 'ema.safetensors'), ema.stateDict(), { decay: String(ema.decay), updates: String(ema.updates) }));
  t.precision.exportWeights(); // bf16-mixed: the trained weights leave as their float32 masters
  const folder = (): CharacterModel => new CharacterModel(characters[0]!, model, vae, tok, {
    format: 1, modelConfig: mc, imageSize: config.data.imageSize, provenance: { runDir: root, step },
  });
  if (config.lora.enabled) {
    out.adapterPath = join(root, 'adapter.safetensors');
    saveLoRA(out.adapterPath, model, { base: config.init ?? '', model_config: JSON.stringify(mc) });
  }
  if (config.export === 'lora' && config.init && characters.length === 1) {
    // A LoRA character folder: the adapters and a checked reference to the base (docs/serving.md 10).
    out.characterModelPath = join(root, 'character');
    folder().save(out.characterModelPath, { base: describeBase(config.init, where.vaePath) });
  }
  if (config.export === 'full') {
    if (config.lora.enabled) removeLoRA(model, { merge: true });
    out.modelPath = join(root, 'model.safetensors');
    saveCheckpoint(out.modelPath, model); // raw weights, published key names (docs/method.md 2.7)
    if (characters.length === 1) {
      out.characterModelPath = join(root, 'character');
      mkdirSync(root, { recursive: true });
      folder().save(out.characterModelPath);
    }
  }
  return out;
}

function disposeTrainables(t: SftTrainables): void {
  t.ema?.dispose();
  t.exact?.dispose();
  t.opt.dispose();
  t.precision.dispose();
  t.model.dispose();
}

/** The run's training loop (loop.ts) over sftStep, with the caller's stop signal and stopAfter. */
async function runSftLoop(config: SftConfig, run: RunDir | null, root: string, trainStep: (step: number) => StepResult,
  state: Parameters<typeof runTraining>[0]['state'], sample: (step: number, dir: string) => Promise<void>, o: TrainSftOptions): Promise<TrainingResult> {
  const ac = new AbortController();
  const onOuterAbort = (): void => ac.abort();
  if (o.signal?.aborted) ac.abort(); // stopped during setup: save step 0 and return
  o.signal?.addEventListener('abort', onOuterAbort);
  try {
    return await runTraining({
      runDir: run ?? root,
      main: run !== null,
      resume: o.resume ?? false,
      totalSteps: config.totalSteps,
      trainStep: (step) => {
        const r = trainStep(step);
        o.afterStep?.(step);
        if (o.stopAfter !== undefined && step >= o.stopAfter) ac.abort();
        return r;
      },
      state,
      saveEvery: config.saveEvery,
      sampleEvery: config.sampling.every > 0 ? config.sampling.every : undefined,
      sample,
      signal: ac.signal,
      ...(o.interrupt ? { interrupt: o.interrupt } : {}),
      handleSigint: o.handleSigint ?? true,
      progress: o.progress === undefined ? undefined : o.progress,
      label: 'sft',
    });
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
  }
}

/**
 * Runs Unified-SFT as configured. Returns when the run ends or is interrupted (a checkpoint is
 * then saved; call again with resume to continue).
 */
export async function trainSft(configInput: SftConfig | SftConfigInput, o: TrainSftOptions): Promise<TrainSftResult> {
  const config = parseSftConfig(configInput);
  const group = o.group ?? null;
  const world = group?.worldSize ?? 1;
  const main = (group?.rank ?? 0) === 0;
  const root = resolve(o.runDir);
  if (config.threads > 0) torch.setNumThreads(config.threads);
  if (config.export === 'lora' && !config.lora.enabled) throw new Error('config: export "lora" needs lora.enabled');

  let characters = o.characters ?? loadCharacters(config.data.characters);
  if (config.data.maxImages !== undefined) characters = characters.map((c) => fewShotCharacter(c, config.data.maxImages!));
  const tok = runTokenizer(config, characters);

  // Rank 0 opens the run first: it refuses a used directory unless resuming, and stores config.json.
  // Sharded runs may resume on another world size with the same packs per step (docs/sharding.md 6).
  const ignoreKeys = config.shard === 'none' ? {} : { ignoreKeys: [...DEFAULT_VOLATILE_KEYS, 'data.packsPerRank', 'shardGroupSize'] };
  const run = main ? RunDir.open(root, config as unknown as Json, { resume: o.resume ?? false, ...ignoreKeys }) : null;
  try {
    if (run) tok.save(join(root, 'tokenizer.json'));
    // the frozen VAE: given, left by an earlier attempt of this run, or trained now
    const vaePath = config.vae.path ?? join(root, 'vae', 'ae.safetensors');
    const presetConfig = modelConfigForTokenizer(config.model, tok);
    const vaeStage = !config.vae.path && !existsSync(vaePath) && main ? await sftVaeStage(config, characters, presetConfig, join(root, 'vae'), o) : null;
    if (vaeStageStopped(vaeStage, group)) {
      return {
        step: 0, interrupted: true, resumedFrom: null, lastCheckpoint: null, vaeStage,
        runDir: root, modelPath: null, adapterPath: null, characterModelPath: null, modelConfig: presetConfig,
      };
    }
    const vae = freezeVae(loadVae(vaePath, presetConfig.vae));
    const mc: ModelConfig = { ...presetConfig, vae: structuredClone(vae.config) };
    const t = openSftTrainables(config, mc, group);
    const data = await SftData.create({
      characters, tokenizer: tok, model: mc, vae, recipe: resolveRecipe(config.data.recipe), packing: config.data.packing,
      imageSize: config.data.imageSize, vitImageSize: config.data.vitImageSize, imageSizing: config.data.imageSizing, textDropProb: config.data.textDropProb, seed: config.data.seed,
    });
    const position = { step: 0 }; // packs consumed = step * world * packsPerRank
    const sample = async (step: number, dir: string): Promise<void> => {
      const s = await sftSamples(t.model, vae, tok, characters[0]!, config.data.imageSize, config.sampling);
      const stem = join(dir, `step-${String(step).padStart(6, '0')}`);
      writeFileSync(`${stem}-image.png`, s.png);
      writeFileSync(`${stem}-reply.txt`, s.reply + '\n');
    };
    const state = t.sharded
      ? shardedCheckpointState({ sharded: t.sharded, optimizer: t.opt, group, root, globalPacks: world * config.data.packsPerRank, data: jsonState(position) })
      : checkpointState({ model: t.model, optimizer: t.opt, ...(t.ema ? { ema: t.ema } : {}), data: jsonState(position), precision: t.precision as MixedPrecision });
    const result = await runSftLoop(config, run, root, sftStep(config, t, data, group, position), state, sample, o);

    // export: rank 0, finished runs; sharded runs gather the whole weights on every rank first
    if (t.sharded && !result.interrupted) t.sharded.prepareExport();
    let paths: SftExport = { modelPath: null, adapterPath: null, characterModelPath: null };
    if (main && !result.interrupted) {
      const sampleLast = config.sampling.every === 0 || config.totalSteps % config.sampling.every !== 0;
      if (sampleLast) await sample(result.step, run!.samplesDir);
      paths = exportSft(config, t, characters, vae, tok, mc, { root, vaePath, step: result.step });
    }
    data.dispose();
    disposeTrainables(t);
    vae.dispose();
    group?.barrier();
    return { ...result, vaeStage, runDir: root, ...paths, modelConfig: mc };
  } finally {
    run?.close();
  }
}
