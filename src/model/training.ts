// The unified-SFT forward (docs/method.md 1.8, 2.3, 6.2): embed a packed batch (text from the table,
// ViT tokens through the encoder and connector, latent tokens noised by flow matching), run the
// MoT decoder once under the per-sample masks, and return the CE and MSE token means.
import { ops, randn, scope, tensor, zeros, type Tensor } from '../torch/index.js';
import type { Bagel } from './bagel.js';
import { routingFromFlags } from './mot.js';
import { packedMasks, type PackedBatch } from './packed.js';
import { shift } from './sampling.js';

/** Loss weights of the reference: L = 0.25 CE + 1.0 MSE (docs/method.md 2.3), defined here only. */
export const CE_WEIGHT = 0.25;
export const MSE_WEIGHT = 1.0;

/** The weights of the two SFT loss terms. */
export interface LossWeights {
  ce: number;
  mse: number;
}

export interface TrainingOptions {
  /** Timestep shift s (1.0 in SFT). */
  timestepShift?: number;
  /** The flow-matching noise eps for the latent tokens (default: fresh N(0, I) each call). */
  noise?: Tensor;
  /** 'mean' (default): token means; 'sum': token sums (callers that normalise by global counts). */
  reduction?: 'mean' | 'sum';
}

export interface TrainingLosses {
  /** Token-mean (or with reduction 'sum', token-sum) cross-entropy over the CE positions, or null when there are none. */
  ce: Tensor | null;
  /** Token-mean (or -sum) of the per-token mean squared velocity error, or null when no image carries loss. */
  mse: Tensor | null;
  numCe: number;
  numMse: number;
}

/**
 * One training forward. Per generated image t = S_s(sigmoid(n)) from the batch's normal draw n;
 * x_t = (1 - t) x0 + t eps; target v* = eps - x0; condition images have t = 0 (n = -inf).
 */
export function trainingForward(model: Bagel, batch: PackedBatch, options: TrainingOptions = {}): TrainingLosses {
  const s = options.timestepShift ?? 1.0;
  const sum = options.reduction === 'sum';
  return scope(() => {
    const lm = model.language_model;
    const D = model.config.llm.hiddenSize;
    const N = batch.length;
    // every index and table built from the batch's JS arrays goes to the model's device
    const device = lm.model.embed_tokens.weight.device;
    const ix = (a: number[]): Tensor => tensor(a, { dtype: 'int64', device });
    const textEmb = lm.embed(ix(batch.textIds));
    let seq = zeros([N, D], { dtype: textEmb.dtype, device }).index_copy(0, ix(batch.textIndexes), textEmb);
    if (batch.vit) {
      const v = batch.vit;
      const emb = model.embedVit(v.patches.to({ dtype: textEmb.dtype, device }), ix(v.positionIds), v.lens);
      seq = seq.index_copy(0, ix(v.tokenIndexes), emb);
    }
    let target: Tensor | null = null;
    if (batch.vae) {
      const v = batch.vae;
      const t = tensor(v.timestepNormals.map((n) => shift(1 / (1 + Math.exp(-n)), s)), { dtype: 'float32', device });
      const x0 = v.latents.to({ dtype: 'float32', device });
      const eps = options.noise ?? randn(x0.shape, { device });
      const tc = t.unsqueeze(1);
      const xt = tc.neg().add(1).mul(x0).add(tc.mul(eps));
      const emb = model.embedLatents(xt.to(textEmb.dtype), t, ix(v.positionIds));
      seq = seq.index_copy(0, ix(v.tokenIndexes), emb);
      if (v.mseRows.length) target = eps.sub(x0).index_select(0, ix(v.mseRows));
    }
    const hidden = lm.model.forward(seq, ix(batch.positionIds), routingFromFlags(batch.isGen, device),
      { kind: 'packed', sampleLens: batch.sampleLens, masks: packedMasks(batch, device) });
    let ce: Tensor | null = null;
    if (batch.ceIndexes.length) {
      const logits = model.logits(hidden.index_select(0, ix(batch.ceIndexes))).to('float32');
      ce = ops.cross_entropy_loss(logits, ix(batch.ceLabels), null, sum ? 2 : 1, -100, 0);
    }
    let mse: Tensor | null = null;
    if (target && batch.vae) {
      const pred = model.velocity(hidden.index_select(0, ix(batch.vae.mseIndexes))).to('float32');
      const perToken = pred.sub(target).pow(2).mean([-1]);
      mse = sum ? perToken.sum() : perToken.mean();
    }
    return { ce, mse, numCe: batch.ceIndexes.length, numMse: batch.vae?.mseRows.length ?? 0 };
  });
}

/**
 * L = w_ce·CE + w_mse·MSE over whichever terms are present (docs/method.md 2.3). With `counts`, the
 * terms are token sums (reduction 'sum') and each is divided by its global token count, so the
 * loss is a global token mean however the packs are split over ranks. Null when no term is present.
 */
export function weightedLoss(l: Pick<TrainingLosses, 'ce' | 'mse'>, weights: LossWeights = { ce: CE_WEIGHT, mse: MSE_WEIGHT }, counts?: { ce: number; mse: number }): Tensor | null {
  return scope(() => {
    const terms: Tensor[] = [];
    if (l.ce) terms.push(l.ce.mul(counts ? weights.ce / counts.ce : weights.ce));
    if (l.mse) terms.push(l.mse.mul(counts ? weights.mse / counts.mse : weights.mse));
    return terms.length ? terms.reduce((a, b) => a.add(b)) : null;
  });
}

/** L = 0.25 CE + 1.0 MSE over whichever terms are present; an error when neither is. */
export function totalLoss(l: TrainingLosses): Tensor {
  const loss = weightedLoss(l);
  if (!loss) throw new Error('totalLoss: the batch has neither CE nor MSE targets');
  return loss;
}
