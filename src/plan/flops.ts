// Model FLOPs of one training step on a pack (the numerator of MFU), the same count as
// bench/sft-step.ts stepFlops for a pack without ViT images: 2 FLOPs per weight per token
// forward, twice that backward (input and weight gradients); a frozen weight (LoRA's base) needs
// only the input gradient. Attention: 4 H d L^2 forward per layer and sample, twice that
// backward. Recomputation under checkpointing is not model work and is not counted.
import type { ModelConfig } from '../model/index.js';
import type { PackShape } from './activations.js';
import type { TrainMode } from './plan.js';

export function trainingFlops(c: ModelConfig, p: PackShape, mode: TrainMode): number {
  const { hiddenSize: D, numLayers: L, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V } = c.llm;
  const perTokenLayer = D * H * d + 2 * D * Hkv * d + H * d * D + 3 * D * I; // one expert
  const tokenDim = c.latentPatchSize * c.latentPatchSize * c.vae.zChannels;
  let dense = p.tokens * L * perTokenLayer + p.ceTokens * D * V;
  dense += p.latentTokens * (tokenDim * D + c.timestepFreqDim * D + D * D) + p.latentTokens * D * tokenDim;
  const attn = p.sampleLens.reduce((a, S) => a + 12 * H * d * S * S * L, 0);
  return (mode === 'lora' ? 4 : 6) * dense + attn;
}
