// The VAE stage (issue 5, item 2): for configs with no published autoencoder (tiny), train a
// KL-regularised autoencoder of the FLUX shape (model/vae.ts: same modules, same key names as
// FLUX's ae.safetensors) on the characters' images, then freeze it.
//
// Objective per batch: L1 + L2 reconstruction of x from decoder(sample of the posterior), plus
// klWeight x the KL to N(0, I) as a per-element mean. After training the latent scale and shift
// are calibrated from the data (shift = mean of the posterior means, scale = 1 / their std), as
// the FLUX / SD factors 0.3611 / 0.1159 were, so the flow-matching targets have unit scale; they
// are stored in the file's metadata and read back by loadVae.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { manualSeed, noGrad, randn, safetensors, scope, tensor, type Tensor } from '../torch/index.js';
import { AdamW, clipGradNorm } from '../nn/index.js';
import { AutoEncoder, type VaeConfig } from '../model/index.js';
import { Rng } from '../data/index.js';
import { RunDir, type Json } from './run-dir.js';
import { writeImageGrid } from './sft-images.js';

export interface TrainVaeOptions {
  /** Training images [N, 3, S, S] in [-1, 1]. */
  images: Tensor;
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
  /** Where to write config.json, metrics.jsonl, samples/ and ae.safetensors (optional). */
  runDir?: string;
  /** Reconstruction grids every N steps (default 100; 0: only before and after). */
  sampleEvery?: number;
  /** The config recorded in config.json (default: these options without the images). */
  runConfig?: Json;
  /** Called after every step. */
  onStep?: (step: number, m: VaeMetrics) => void;
}

export interface VaeMetrics {
  loss: number;
  l1: number;
  l2: number;
  kl: number;
}

export interface TrainVaeResult {
  /** The trained autoencoder, frozen (requires_grad false, eval mode). */
  vae: AutoEncoder;
  /** Its config with the calibrated scale and shift. */
  config: VaeConfig;
  metrics: VaeMetrics[];
  /** Mean L1 reconstruction error (posterior mean, [-1, 1] units) before and after training. */
  reconstructionBefore: number;
  reconstructionAfter: number;
  /** ae.safetensors path when runDir was given. */
  path: string | null;
}

/** Mean |x - decode(mean of encode(x))| over a set of images (no sampling). */
export function reconstructionError(vae: AutoEncoder, images: Tensor): number {
  return noGrad(() => scope(() => {
    const [mean] = vae.encoder.forward(images).chunk(2, 1) as [Tensor, Tensor];
    return vae.decoder.forward(mean).sub(images).abs().mean().item();
  }));
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

/** Shift and scale from the posterior means of the images: shift = mean, scale = 1 / std. */
export function calibrateLatents(vae: AutoEncoder, images: Tensor): { shiftFactor: number; scaleFactor: number } {
  return noGrad(() => scope(() => {
    const [mean] = vae.encoder.forward(images).chunk(2, 1) as [Tensor, Tensor];
    const shiftFactor = mean.mean().item();
    const std = mean.std().item();
    return { shiftFactor, scaleFactor: 1 / Math.max(std, 1e-6) };
  }));
}

/** Writes the autoencoder with FLUX's key names and its scale / shift as metadata. */
export function saveVae(path: string, vae: AutoEncoder): void {
  scope(() => safetensors.save(path, vae.stateDict(), {
    format: 'pt',
    kind: 'unicharacter.vae',
    scale_factor: String(vae.config.scaleFactor),
    shift_factor: String(vae.config.shiftFactor),
    vae_config: JSON.stringify(vae.config),
  }));
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

async function writeRecon(path: string, vae: AutoEncoder, images: Tensor): Promise<void> {
  const n = Math.min(4, images.shape[0]!);
  const { x, y } = noGrad(() => scope(() => {
    const x = images.narrow(0, 0, n);
    const [mean] = vae.encoder.forward(x).chunk(2, 1) as [Tensor, Tensor];
    return { x: x.clone(), y: vae.decoder.forward(mean).clamp(-1, 1) };
  }));
  try {
    await writeImageGrid(path, [Array.from({ length: n }, (_, i) => x.select(0, i)), Array.from({ length: n }, (_, i) => y.select(0, i))]);
  } finally {
    x.dispose();
    y.dispose();
  }
}

/**
 * Trains the autoencoder (AdamW, betas (0.9, 0.999), no weight decay, grad clip 1.0) on random
 * minibatches of `images`, writes reconstruction grids (originals above, reconstructions below)
 * to samples/ and the weights to <runDir>/ae.safetensors, and returns it frozen.
 */
export async function trainVae(o: TrainVaeOptions): Promise<TrainVaeResult> {
  const seed = o.seed ?? 0;
  const batchSize = Math.min(o.batchSize ?? 4, o.images.shape[0]!);
  const klWeight = o.klWeight ?? 1e-4;
  const sampleEvery = o.sampleEvery ?? 100;
  manualSeed(seed);
  const vae = new AutoEncoder(structuredClone(o.config));
  const run = o.runDir ? RunDir.open(o.runDir, o.runConfig ?? ({ stage: 'vae', config: o.config, steps: o.steps, lr: o.lr, batchSize, klWeight, seed } as unknown as Json)) : null;
  try {
    const opt = new AdamW(vae.parameters(), { lr: o.lr, betas: [0.9, 0.999], weightDecay: 0 });
    const rng = new Rng(seed);
    const N = o.images.shape[0]!;
    const reconstructionBefore = reconstructionError(vae, o.images);
    if (run) await writeRecon(run.samplePath(0, 'vae-recon.png'), vae, o.images);
    const metrics: VaeMetrics[] = [];
    let order: number[] = [];
    for (let step = 1; step <= o.steps; step++) {
      const m = scope(() => {
        if (order.length < batchSize) order = [...order, ...rng.shuffle(Array.from({ length: N }, (_, i) => i))];
        const idx = order.splice(0, batchSize);
        const x = o.images.index_select(0, tensor(idx, { dtype: 'int64' }));
        opt.zeroGrad();
        const r = vaeLoss(vae, x, klWeight);
        r.loss.backward();
        clipGradNorm(vae.parameters(), 1.0);
        opt.step();
        return { loss: r.loss.item(), l1: r.l1, l2: r.l2, kl: r.kl };
      });
      metrics.push(m);
      run?.appendMetrics({ step, ...m });
      o.onStep?.(step, m);
      if (run && sampleEvery > 0 && step % sampleEvery === 0 && step !== o.steps) await writeRecon(run.samplePath(step, 'vae-recon.png'), vae, o.images);
    }
    opt.zeroGrad();
    opt.dispose();
    const reconstructionAfter = reconstructionError(vae, o.images);
    if (o.calibrate ?? true) Object.assign(vae.config, calibrateLatents(vae, o.images));
    freezeVae(vae);
    let path: string | null = null;
    if (run) {
      await writeRecon(run.samplePath(o.steps, 'vae-recon.png'), vae, o.images);
      path = join(run.root, 'ae.safetensors');
      saveVae(path, vae);
      writeFileSync(join(run.root, 'vae-summary.json'), JSON.stringify({ reconstructionBefore, reconstructionAfter, scaleFactor: vae.config.scaleFactor, shiftFactor: vae.config.shiftFactor }, null, 2) + '\n');
    }
    return { vae, config: vae.config, metrics, reconstructionBefore, reconstructionAfter, path };
  } finally {
    run?.close();
  }
}

/** Decodes latents [B, z, h, w] (scaled and shifted) to images in [-1, 1], clamped. */
export function decodeLatents(vae: AutoEncoder, z: Tensor): Tensor {
  return noGrad(() => scope(() => vae.decode(z).clamp(-1, 1)));
}

