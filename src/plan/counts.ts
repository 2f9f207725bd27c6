// Parameter counts of the real model, built on the meta device (shapes, no memory), grouped into
// the sharding units of docs/sharding.md 3: the embedding unit, one unit per decoder layer and
// the head unit. LoRA adapters are attached by the same applyLoRA the trainer uses, so the
// trainable set is exactly the trainer's (docs/planner.md 1).
import { withDefaultDevice } from '../torch/index.js';
import { applyLoRA, type Module } from '../nn/index.js';
import { AutoEncoder, Bagel, type ModelConfig } from '../model/index.js';

/** LoRA as the trainer applies it (the SFT config's `lora` section). */
export interface LoraShape {
  r: number;
  targets: string[];
}

export interface UnitCount {
  /** 'embedding', 'layer N' or 'head' (docs/sharding.md 3). */
  name: string;
  /** Trainable parameters (they get gradients and optimizer state). */
  trainable: number;
  /** Parameters and buffers that are held but not trained (frozen base, fixed tables). */
  frozen: number;
}

export interface ParameterCounts {
  /** In backward order is reversed; this is forward order: embedding, layers, head. */
  units: UnitCount[];
  trainable: number;
  frozen: number;
  /** Of `frozen`: the buffers (fixed sin-cos tables), float32 in every precision mode (docs/precision.md 1). */
  buffers: number;
  /** The VAE (its own file, frozen in every stage, float32 in every precision mode). */
  vae: number;
  /** Largest trainable tensor: the optimizer step's temporaries are sized by it. */
  largestTrainableTensor: number;
}

const LAYER = /^language_model\.model\.layers\.(\d+)\./;
const HEAD = /^(language_model\.model\.norm(_moe_gen)?\.|language_model\.lm_head\.|llm2vae\.)/;

function unitOf(key: string): string {
  const m = LAYER.exec(key);
  if (m) return `layer ${m[1]}`;
  return HEAD.test(key) ? 'head' : 'embedding';
}

function countModule(m: Module, units: Map<string, UnitCount>): number {
  let largest = 0;
  for (const [key, p] of m.namedParameters()) {
    const u = units.get(unitOf(key))!;
    if (p.requiresGrad) {
      u.trainable += p.numel;
      largest = Math.max(largest, p.numel);
    } else u.frozen += p.numel;
  }
  for (const [key, b] of m.namedBuffers()) units.get(unitOf(key))!.frozen += b.numel;
  return largest;
}

/** Counts of `config` with every Bagel parameter trained (mode full) or LoRA adapters only. */
export function countParameters(config: ModelConfig, lora: LoraShape | null = null): ParameterCounts {
  return withDefaultDevice('meta', () => {
    const model = new Bagel(config);
    const vae = new AutoEncoder(config.vae);
    try {
      if (lora) applyLoRA(model, { targets: lora.targets, r: lora.r });
      const names = ['embedding', ...Array.from({ length: config.llm.numLayers }, (_, i) => `layer ${i}`), 'head'];
      const units = new Map(names.map((name) => [name, { name, trainable: 0, frozen: 0 }]));
      const largestTrainableTensor = countModule(model, units);
      const list = [...units.values()];
      return {
        units: list,
        trainable: list.reduce((a, u) => a + u.trainable, 0),
        frozen: list.reduce((a, u) => a + u.frozen, 0),
        buffers: model.namedBuffers().reduce((a, [, b]) => a + b.numel, 0),
        vae: vae.parameters().reduce((a, p) => a + p.numel, 0) + vae.namedBuffers().reduce((a, [, b]) => a + b.numel, 0),
        largestTrainableTensor,
      };
    } finally {
      model.dispose();
      vae.dispose();
    }
  });
}
