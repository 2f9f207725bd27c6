// The VAE stage (docs/architecture.md, "Training"): for configs with no published autoencoder
// (tiny), train a KL-regularised autoencoder of the FLUX shape (model/vae.ts: same modules, same
// key names as FLUX's ae.safetensors) on the characters' images, then freeze it.
//
// Objective per batch: L1 + L2 reconstruction of x from decoder(sample of the posterior), plus
// klWeight x the KL to N(0, I) as a per-element mean. After training the latent scale and shift
// are calibrated from the data (shift = mean of the posterior means, scale = 1 / their std), as
// the FLUX / SD factors 0.3611 / 0.1159 were, so the flow-matching targets have unit scale; they
// are stored in the file's metadata and read back by loadVae.
//
// The stage runs through the shared loop (loop.ts) like Unified-SFT: metrics.jsonl, atomic
// checkpoints every saveEvery steps (weights, AdamW, the torch generator, the shuffle generator
// and the rest of the current shuffled pass), Ctrl-C / signal stops after the step with a
// checkpoint, and `resume` continues bit for bit. ae.safetensors is written last and atomically,
// so its presence means the stage finished.
//
// Images: squares [N, 3, S, S], or a list of [3, H, W] images keeping their aspect ratio (SFT's VAE
// sizing, `data.imageSizing`; vae-images.ts groups them by size).
import { existsSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { manualSeed, noGrad, ops, randn, safetensors, scope, type Tensor } from '../torch/index.js';
import { AdamW, clipGradNorm } from '../nn/index.js';
import { AutoEncoder, type VaeConfig } from '../model/index.js';
import { Rng } from '../data/index.js';
import { RunDir, type Json } from './run-dir.js';
import { fsyncDir, fsyncFile, writeFileAtomic } from './fs-atomic.js';
import { runTraining, type StepResult, type TrainingResult } from './loop.js';
import { checkpointState, jsonState } from './checkpoint-state.js';
import type { ProgressStream } from './progress.js';
import { writeImageGrid } from './sft-images.js';
import { VaeImages } from './vae-images.js';

export interface TrainVaeOptions {
  /** Training images in [-1, 1]: [N, 3, S, S], or a list of [3, H, W] of any sizes that are
   * multiples of the VAE's downsampling (aspect kept, as SFT sizes them). */
  images: Tensor | readonly Tensor[];
  /** The autoencoder's shape (e.g. TINY.vae). */
  config: VaeConfig;
  steps: number;
  lr: number;
  batchSize?: number;
  /** Weight of the KL term (default 1e-4). */
  klWeight?: number;
  /** Set scale / shift from the data after training (default true). */
  calibrate?: boolean;
  seed?: number;
  /** The run directory: config.json, metrics.jsonl, checkpoints/, samples/, ae.safetensors. */
  runDir: string;
  /** Checkpoint every N steps (default 50) and always at the end or on a stop. */
  saveEvery?: number;
  /** Continue the run in runDir from its latest checkpoint (default false: refuse a used runDir). */
  resume?: boolean;
  /** Reconstruction grids every N steps (default 100; 0: only before and after). */
  sampleEvery?: number;
  /** The config recorded in config.json (default: these options without the images). */
  runConfig?: Json;
  /** Stop like Ctrl-C: the current step finishes, a checkpoint is saved, the result is interrupted. */
  signal?: AbortSignal;
  /** A synchronous stop check after every step (loop.ts RunTrainingOptions.interrupt). */
  interrupt?: () => boolean;
  /** Handle SIGINT as a stop request (default true). */
  handleSigint?: boolean;
  /** Progress bar stream (default stderr; null for none). */
  progress?: ProgressStream | null;
  /** Called after every step. */
  onStep?: (step: number, m: VaeMetrics) => void;
}

export interface VaeMetrics {
  loss: number;
  l1: number;
  l2: number;
  kl: number;
}

export interface TrainVaeResult extends TrainingResult {
  /** The trained autoencoder, frozen (requires_grad false, eval mode); null when interrupted. */
  vae: AutoEncoder | null;
  /** Its config with the calibrated scale and shift (when interrupted: the given config). */
  config: VaeConfig;
  /** Every step's metrics so far (read back from metrics.jsonl, so a resumed run has them all). */
  metrics: VaeMetrics[];
  /** Mean L1 reconstruction error (posterior mean, [-1, 1] units) before and after training
   * (after: NaN when interrupted). */
  reconstructionBefore: number;
  reconstructionAfter: number;
  /** <runDir>/ae.safetensors, or null when interrupted (nothing but the checkpoint is written). */
  path: string | null;
}

/** Mean |x - decode(mean of encode(x))| over a set of images (no sampling; the mean over images
 * of each image's mean when they differ in size). */
export function reconstructionError(vae: AutoEncoder, images: Tensor | VaeImages): number {
  const one = (x: Tensor): number => noGrad(() => scope(() => {
    const [mean] = vae.encoder.forward(x).chunk(2, 1) as [Tensor, Tensor];
    return vae.decoder.forward(mean).sub(x).abs().mean().item();
  }));
  if (!(images instanceof VaeImages)) return one(images);
  return images.all().reduce((acc, g) => acc + g.share * one(g.x), 0);
}

/** vaeLoss over a batch cut into groups of one size: sum_g share_g * loss_g (vae-images.ts). */
export function vaeLossGroups(vae: AutoEncoder, groups: readonly { x: Tensor; share: number }[], klWeight: number): { loss: Tensor; l1: number; l2: number; kl: number } {
  if (groups.length === 1 && groups[0]!.share === 1) return vaeLoss(vae, groups[0]!.x, klWeight);
  return scope(() => {
    let loss: Tensor | null = null;
    let l1 = 0, l2 = 0, kl = 0;
    for (const g of groups) {
      const r = vaeLoss(vae, g.x, klWeight);
      const part = r.loss.mul(g.share);
      loss = loss ? loss.add(part) : part;
      l1 += g.share * r.l1;
      l2 += g.share * r.l2;
      kl += g.share * r.kl;
    }
    return { loss: loss!, l1, l2, kl };
  });
}

/** The objective: L1 + L2 of the reconstruction from a posterior sample, plus klWeight * KL. */
export function vaeLoss(vae: AutoEncoder, x: Tensor, klWeight: number): { loss: Tensor; l1: number; l2: number; kl: number } {
  return scope(() => {
    const [mean, logvar0] = vae.encoder.forward(x).chunk(2, 1) as [Tensor, Tensor];
    const logvar = logvar0.clamp(-30, 20); // as FLUX / LDM DiagonalGaussian
    const z = mean.add(logvar.mul(0.5).exp().mul(randn(mean.shape)));
    const rec = vae.decoder.forward(z);
    const l1 = rec.sub(x).abs().mean();
    const l2 = rec.sub(x).pow(2).mean();
    // KL(N(mu, var) || N(0, 1)) per element: 0.5 (mu^2 + var - 1 - logvar)
    const kl = mean.pow(2).add(logvar.exp()).sub(1).sub(logvar).mul(0.5).mean();
    const loss = l1.add(l2).add(kl.mul(klWeight));
    return { loss, l1: l1.item(), l2: l2.item(), kl: kl.item() };
  });
}

/** Shift and scale from the posterior means of the images: shift = mean, scale = 1 / std (over
 * every latent element of every image). */
export function calibrateLatents(vae: AutoEncoder, images: Tensor | VaeImages): { shiftFactor: number; scaleFactor: number } {
  return noGrad(() => scope(() => {
    const means = (images instanceof VaeImages ? images.all().map((g) => g.x) : [images]).map((x) => (vae.encoder.forward(x).chunk(2, 1) as [Tensor, Tensor])[0]);
    const mean = means.length === 1 ? means[0]! : ops.cat(means.map((m) => m.flatten()), 0);
    const shiftFactor = mean.mean().item();
    const std = mean.std().item();
    return { shiftFactor, scaleFactor: 1 / Math.max(std, 1e-6) };
  }));
}

/** Writes the autoencoder with FLUX's key names and its scale / shift as metadata, atomically
 * (temporary file, fsync, rename): a crash leaves the old file or the new one, never a torn one. */
export function saveVae(path: string, vae: AutoEncoder): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    scope(() => safetensors.save(tmp, vae.stateDict(), {
      format: 'pt',
      kind: 'unicharacter.vae',
      scale_factor: String(vae.config.scaleFactor),
      shift_factor: String(vae.config.shiftFactor),
      vae_config: JSON.stringify(vae.config),
    }));
    fsyncFile(tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(dirname(path));
}

/** Loads an ae.safetensors into a new frozen AutoEncoder of `config`'s shape, taking the file's
 * scale and shift when it carries them (a FLUX file has none: the config's stay). */
export function loadVae(path: string, config: VaeConfig): AutoEncoder {
  return scope(() => {
    const { tensors, metadata } = safetensors.load(path);
    const c: VaeConfig = { ...structuredClone(config) };
    if (metadata.scale_factor !== undefined) c.scaleFactor = Number(metadata.scale_factor);
    if (metadata.shift_factor !== undefined) c.shiftFactor = Number(metadata.shift_factor);
    const vae = new AutoEncoder(c);
    try {
      vae.loadStateDict(tensors);
    } catch (e) {
      vae.dispose();
      throw new Error(`${path}: ${(e as Error).message}`);
    }
    return freezeVae(vae);
  });
}

/** requires_grad false everywhere and eval mode: the VAE is frozen in every later stage. */
export function freezeVae(vae: AutoEncoder): AutoEncoder {
  for (const p of vae.parameters()) p.requiresGrad_(false);
  vae.eval();
  return vae;
}

// A reconstruction grid, written under a temporary name and renamed, so a watcher of samples/
// (the server's job worker) never reads half a PNG.
// Images of other sizes are padded with black to the largest height and width among the shown.
async function writeRecon(path: string, vae: AutoEncoder, images: VaeImages): Promise<void> {
  const { x, y } = noGrad(() => scope(() => {
    const shown = images.first(4);
    const H = Math.max(...shown.map((t) => t.shape[1]!));
    const W = Math.max(...shown.map((t) => t.shape[2]!));
    const pad = (t: Tensor): Tensor => (t.shape[1] === H && t.shape[2] === W ? t : ops.constant_pad_nd(t, [0, W - t.shape[2]!, 0, H - t.shape[1]!], -1));
    const reconstruct = (x: Tensor): Tensor => vae.decoder.forward((vae.encoder.forward(x).chunk(2, 1) as [Tensor, Tensor])[0]).clamp(-1, 1);
    const same = shown.every((t) => t.shape[1] === H && t.shape[2] === W);
    const recon = same ? reconstruct(ops.stack(shown, 0)).unbind(0) : shown.map((t) => reconstruct(t.unsqueeze(0)).squeeze(0));
    return { x: ops.stack(shown.map(pad), 0), y: ops.stack(recon.map(pad), 0) };
  }));
  const n = x.shape[0]!;
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    await writeImageGrid(tmp, [Array.from({ length: n }, (_, i) => x.select(0, i)), Array.from({ length: n }, (_, i) => y.select(0, i))]);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
    x.dispose();
    y.dispose();
  }
}

/**
 * Trains the autoencoder (AdamW, betas (0.9, 0.999), no weight decay, grad clip 1.0) on random
 * minibatches of `images` (reshuffled every pass), checkpointing like every stage (run-dir.ts),
 * writes reconstruction grids (originals above, reconstructions below) to samples/ and the
 * weights to <runDir>/ae.safetensors, and returns it frozen. Interrupted (signal, Ctrl-C): the
 * checkpoint of the last step is saved and the result says `interrupted`; call again with
 * `resume` to continue.
 */
export async function trainVae(o: TrainVaeOptions): Promise<TrainVaeResult> {
  const seed = o.seed ?? 0;
  const images = new VaeImages(o.images);
  try {
    return await trainVaeOn(o, images, seed);
  } finally {
    images.dispose();
  }
}

async function trainVaeOn(o: TrainVaeOptions, images: VaeImages, seed: number): Promise<TrainVaeResult> {
  const batchSize = Math.min(o.batchSize ?? 4, images.count);
  const klWeight = o.klWeight ?? 1e-4;
  const sampleEvery = o.sampleEvery ?? 100;
  const saveEvery = o.saveEvery ?? 50;
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new RangeError(`trainVae: steps must be a positive integer, got ${o.steps}`);
  if (!Number.isInteger(sampleEvery) || sampleEvery < 0) throw new RangeError(`trainVae: sampleEvery must be a non-negative integer, got ${sampleEvery}`);
  manualSeed(seed);
  const vae = new AutoEncoder(structuredClone(o.config));
  let done = false;
  const runConfig = o.runConfig ?? ({ stage: 'vae', config: o.config, steps: o.steps, lr: o.lr, batchSize, klWeight, seed } as unknown as Json);
  let run: RunDir;
  try {
    run = RunDir.open(o.runDir, runConfig, { resume: o.resume ?? false });
  } catch (e) {
    vae.dispose();
    throw e;
  }
  const opt = new AdamW(vae.parameters(), { lr: o.lr, betas: [0.9, 0.999], weightDecay: 0 });
  try {
    const N = images.count;
    // The data position is the rest of the current shuffled pass; the shuffle generator's state
    // and the torch generator (posterior samples) are checkpointed with it.
    const rng = new Rng(seed);
    const position = { order: [] as number[] };
    const state = checkpointState({ model: vae, optimizer: opt, data: jsonState(position), rngs: { shuffle: rng } });
    // From the seeded initial weights, so a resumed run computes the same number.
    const reconstructionBefore = reconstructionError(vae, images);
    const first = run.samplePath(0, 'vae-recon.png');
    if (!existsSync(first)) await writeRecon(first, vae, images);

    const trainStep = (step: number): StepResult => {
      const m = scope(() => {
        if (position.order.length < batchSize) position.order = [...position.order, ...rng.shuffle(Array.from({ length: N }, (_, i) => i))];
        const idx = position.order.splice(0, batchSize);
        opt.zeroGrad();
        const r = vaeLossGroups(vae, images.select(idx), klWeight);
        r.loss.backward();
        clipGradNorm(vae.parameters(), 1.0);
        opt.step();
        return { loss: r.loss.item(), l1: r.l1, l2: r.l2, kl: r.kl };
      });
      o.onStep?.(step, m);
      return { loss: m.loss, metrics: { l1: m.l1, l2: m.l2, kl: m.kl } };
    };
    const result = await runTraining({
      runDir: run, totalSteps: o.steps, trainStep, state, saveEvery,
      ...(sampleEvery > 0 ? { sampleEvery, sample: (step: number) => writeRecon(run.samplePath(step, 'vae-recon.png'), vae, images) } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.interrupt ? { interrupt: o.interrupt } : {}),
      handleSigint: o.handleSigint ?? true,
      ...(o.progress !== undefined ? { progress: o.progress } : {}),
      label: 'vae',
    });
    opt.zeroGrad();
    const metrics = run.readMetrics().map((r) => ({ loss: r.loss as number, l1: r.l1 as number, l2: r.l2 as number, kl: r.kl as number }));
    if (result.interrupted) {
      return { ...result, vae: null, config: o.config, metrics, reconstructionBefore, reconstructionAfter: NaN, path: null };
    }
    const reconstructionAfter = reconstructionError(vae, images);
    if (o.calibrate ?? true) Object.assign(vae.config, calibrateLatents(vae, images));
    freezeVae(vae);
    if (sampleEvery === 0 || o.steps % sampleEvery !== 0) await writeRecon(run.samplePath(o.steps, 'vae-recon.png'), vae, images);
    writeFileAtomic(join(run.root, 'vae-summary.json'), JSON.stringify({ reconstructionBefore, reconstructionAfter, scaleFactor: vae.config.scaleFactor, shiftFactor: vae.config.shiftFactor }, null, 2) + '\n');
    const path = join(run.root, 'ae.safetensors');
    saveVae(path, vae); // last: its presence means the stage finished (sft.ts skips the stage then)
    done = true;
    return { ...result, vae, config: vae.config, metrics, reconstructionBefore, reconstructionAfter, path };
  } finally {
    opt.dispose();
    if (!done) vae.dispose();
    run.close();
  }
}

/** Decodes latents [B, z, h, w] (scaled and shifted) to images in [-1, 1], clamped. */
export function decodeLatents(vae: AutoEncoder, z: Tensor): Tensor {
  return noGrad(() => scope(() => vae.decode(z).clamp(-1, 1)));
}

