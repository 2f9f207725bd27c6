// The activation model (docs/planner.md 3): the bytes autograd saves for backward in one training
// forward of a packed sequence, term by term as src/model (mot.ts, training.ts) and src/nn
// (norm.ts, linear.ts) run it, plus the largest transient buffers of forward and backward.
import type { ModelConfig } from '../model/index.js';

/** What one pack holds (docs/planner.md 3.1). */
export interface PackShape {
  /** Tokens of the packed sequence. */
  tokens: number;
  /** Per-sample lengths (sum = tokens): attention is within a sample (method.md 1.7). */
  sampleLens: number[];
  /** Positions with a cross-entropy target (text). */
  ceTokens: number;
  /** Latent tokens (generation expert, flow-matching MSE). */
  latentTokens: number;
}

/** One named term of the model, in bytes. */
export interface Term {
  name: string;
  bytes: number;
}

export const sumTerms = (ts: Term[]): number => ts.reduce((a, t) => a + t.bytes, 0);

const F32 = 4;

/**
 * Saved for backward by one decoder layer (docs/planner.md 3.2). s = activation bytes; RMSNorm
 * computes in fp32 (src/nn/norm.ts), so its saved input is fp32 whatever s is; so does the
 * softmax of half-precision attention (softmaxAttention in src/model/mot.ts). a = the LoRA
 * adapters' element bytes (bf16-mixed keeps them fp32 over a bf16 base, docs/precision.md 4).
 */
export function decoderLayerTerms(c: ModelConfig, p: PackShape, s: number, loraRank = 0, a = s): Term[] {
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I } = c.llm;
  const N = p.tokens;
  const rmsNorm = (width: number, rows: number): number => rows * width * (F32 + s) + rows * F32;
  const sumSq = p.sampleLens.reduce((a, L) => a + L * L, 0);
  const t: Term[] = [
    { name: 'input RMSNorm (fp32 input, normalised, 1/rms)', bytes: rmsNorm(D, N) },
    { name: 'normalised input read by q/k/v', bytes: s * N * D },
    { name: 'q_norm and k_norm (per head)', bytes: rmsNorm(d, N * H) + rmsNorm(d, N * Hkv) },
    { name: 'q|k|v concatenation (RoPE reads views of it)', bytes: s * N * (H + 2 * Hkv) * d },
    { name: 'RoPE rotate_half of q and k', bytes: s * N * (H + Hkv) * d },
    { name: 'scaled queries', bytes: s * N * H * d },
    // GQA: keys and values repeated per query head; without groups the RoPE'd keys are read directly
    { name: H > Hkv ? 'keys and values repeated per query head' : 'RoPE keys', bytes: H > Hkv ? 2 * s * N * H * d : s * N * Hkv * d },
    { name: 'attention probabilities (H x L^2 per sample)', bytes: s * H * sumSq },
    { name: 'attention output read by o_proj', bytes: s * N * H * d },
    { name: 'post-attention RMSNorm', bytes: rmsNorm(D, N) },
    { name: 'normalised input read by the MLP', bytes: s * N * D },
    { name: 'SwiGLU gate, silu(gate), up, product', bytes: 4 * s * N * I },
  ];
  if (s !== F32) {
    t.push({ name: 'RoPE tables cast to the activation dtype', bytes: 4 * s * N * d });
    // half-precision attention: the fp32 softmax output, beside the rounded probabilities read by @ v
    t.push({ name: 'attention softmax output in fp32 (H x L^2 per sample)', bytes: F32 * H * sumSq });
  }
  // each token passes one expert's q, k, v, o: four adapters' A outputs [N, r]
  if (loraRank > 0) t.push({ name: 'LoRA A outputs (q, k, v, o)', bytes: 4 * a * N * loraRank });
  // fp32 adapters over bf16 inputs: each adapter casts its input (q, k, v: [N, D] each; o: [N, H d])
  if (loraRank > 0 && a !== s) t.push({ name: 'LoRA inputs cast to the adapters\' dtype (q, k, v, o)', bytes: a * N * (3 * D + H * d) });
  return t;
}

/** What a checkpointed layer keeps: its input (docs/planner.md 3.3). */
export function checkpointedLayerTerms(c: ModelConfig, p: PackShape, s: number): Term[] {
  return [{ name: 'layer input kept for the recompute', bytes: s * p.tokens * c.llm.hiddenSize }];
}

/** Saved outside the decoder layers: RoPE tables, latent embedders, final norm and heads (3.4). */
export function outerTerms(c: ModelConfig, p: PackShape, s: number): Term[] {
  const { hiddenSize: D, headDim: d, vocabSize: V } = c.llm;
  const N = p.tokens;
  const tokenDim = c.latentPatchSize * c.latentPatchSize * c.vae.zChannels;
  const G = p.latentTokens;
  return [
    { name: 'RoPE cos and sin tables (fp32)', bytes: 2 * F32 * N * d },
    { name: 'latent embedders (vae2llm input, timestep features and MLP)', bytes: G * (s * tokenDim + F32 * c.timestepFreqDim + 2 * s * D) },
    { name: 'final RMSNorm', bytes: N * D * (F32 + s) + N * F32 },
    { name: 'CE rows read by lm_head', bytes: s * p.ceTokens * D },
    { name: 'log-softmax of the CE logits (fp32)', bytes: F32 * p.ceTokens * V },
    { name: 'MSE rows read by llm2vae, velocity error (fp32)', bytes: G * (s * D + F32 * tokenDim) },
  ];
}

/**
 * The largest transient of the head: the CE logits in the activation dtype and in fp32 while
 * the loss is formed, and their gradient at the start of backward (3.5).
 */
export function headTransient(c: ModelConfig, p: PackShape, s: number): number {
  const V = c.llm.vocabSize;
  return p.ceTokens * V * (s + F32 + F32);
}

/**
 * The largest transient of one decoder layer's backward (3.5): the gradient flowing down the
 * residual stream (and its copy through the norm), plus the larger of the attention-score
 * gradients of the longest sample (probabilities and scores, H x L^2 each) and the MLP's
 * gradients (three [N, I]). Half-precision attention takes the score gradients through its fp32
 * softmax (softmaxAttention): the probabilities' gradient in the activation dtype and widened to
 * fp32, the softmax backward's fp32 output, and the scores' gradient rounded back: (2 s + 8) H L^2.
 */
export function layerBackwardTransient(c: ModelConfig, p: PackShape, s: number): number {
  const { hiddenSize: D, numHeads: H, intermediateSize: I } = c.llm;
  const N = p.tokens;
  const Lmax = Math.max(...p.sampleLens);
  const scoreGrad = s === F32 ? 2 * F32 : 2 * s + 2 * F32;
  return 2 * s * N * D + Math.max(scoreGrad * H * Lmax * Lmax, 3 * s * N * I);
}
