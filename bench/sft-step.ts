// What the training benchmarks (model.bench.ts, train.bench.ts) share about one SFT step: the
// tiny config's data, tokenizer, frozen VAE and model built the way trainSft builds them, and the
// analytic FLOP count of a forward + backward on a packed batch. Import it dynamically, after the
// thread environment is set: it loads libtorch.
import * as torch from '../src/torch/index.js';
import { AutoEncoder, Bagel, TINY, type ModelConfig, type PackedBatch } from '../src/model/index.js';
import type { Character } from '../src/data/index.js';
import { SftData, modelConfigForTokenizer, resolveRecipe } from '../src/train/sft-data.js';
import { runTokenizer } from '../src/train/sft.js';
import type { SftConfig } from '../src/train/sft-config.js';

export interface SftBenchModel {
  mc: ModelConfig;
  data: SftData;
  model: Bagel;
  vae: AutoEncoder;
  trainable: torch.Tensor[];
  dispose(): void;
}

/** The config's data, tokenizer, frozen VAE and model on one character; `llm` overrides the LLM sizes. */
export async function sftBenchModel(character: Character, config: SftConfig, llm: Partial<ModelConfig['llm']> = {}): Promise<SftBenchModel> {
  const tok = runTokenizer(config, [character]);
  const preset = modelConfigForTokenizer(config.model, tok);
  const mc: ModelConfig = { ...preset, llm: { ...preset.llm, ...llm } };
  torch.manualSeed(0);
  const vae = new AutoEncoder(structuredClone(TINY.vae));
  for (const p of vae.parameters()) p.requiresGrad_(false);
  vae.eval();
  const data = await SftData.create({
    characters: [character], tokenizer: tok, model: mc, vae, recipe: resolveRecipe(config.data.recipe), packing: config.data.packing,
    imageSize: config.data.imageSize, vitImageSize: config.data.vitImageSize, textDropProb: config.data.textDropProb, seed: config.data.seed,
  });
  torch.manualSeed(config.seed);
  const model = new Bagel(mc);
  model.train();
  const trainable = model.parameters({ trainableOnly: true });
  return {
    mc, data, model, vae, trainable,
    dispose: () => {
      data.dispose();
      model.dispose();
      vae.dispose();
    },
  };
}

/**
 * Model FLOPs of one training step (forward + backward) on a packed batch; returns [total,
 * dense]. dense = 6 * sum over weight matrices of (weights x tokens that pass through them);
 * attention = 12 * heads * headDim * L^2 per layer per attention block of length L. See
 * bench/README.md for the whole formula and what is not counted.
 */
export function stepFlops(mc: ModelConfig, b: PackedBatch): [number, number] {
  const { hiddenSize: D, numLayers: L, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V } = mc.llm;
  const perTokenLayer = D * H * d + 2 * D * Hkv * d + H * d * D + 3 * D * I; // q, k, v, o, gate/up/down of one expert
  let dense = b.length * L * perTokenLayer;
  dense += b.ceIndexes.length * D * V; // lm_head on the CE positions only
  const tokenDim = mc.latentPatchSize * mc.latentPatchSize * mc.vae.zChannels;
  if (b.vae) {
    dense += b.vae.tokenIndexes.length * (tokenDim * D + mc.timestepFreqDim * D + D * D); // vae2llm + timestep MLP
    dense += b.vae.mseIndexes.length * D * tokenDim; // llm2vae on the MSE rows
  }
  let attn = 0;
  for (const S of b.sampleLens) attn += 12 * H * d * S * S * L;
  if (b.vit) {
    const v = mc.vit;
    const Dv = v.hiddenSize;
    const patchDim = v.patchSize * v.patchSize * v.numChannels;
    dense += b.vit.tokenIndexes.length * (patchDim * Dv + v.numLayers * (4 * Dv * Dv + 2 * Dv * v.intermediateSize) + Dv * D + D * D);
    for (const S of b.vit.lens) attn += 12 * Dv * S * S * v.numLayers;
  }
  return [6 * dense + attn, 6 * dense];
}
