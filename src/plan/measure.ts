// The measured side of the planner (docs/planner.md 5): one real training step of the model on
// a synthetic pack, with the allocator's peak bytes (src/torch allocatedBytes) over the step.
// The pack is one sample of text with CE followed by one generated image (a noise split of
// latent tokens with MSE), so both experts carry gradients, as in a unified SFT pack.
import * as torch from '../torch/index.js';
import { AdamW, MixedPrecision, applyLoRA } from '../nn/index.js';
import { AutoEncoder, Bagel, buildPackedBatch, disposeBatch, totalLoss, trainingForward, type ModelConfig, type PackedBatch } from '../model/index.js';
import type { PackShape } from './activations.js';
import type { LoraShape } from './counts.js';
import type { Precision } from './precision.js';
import type { PlanOptimizerKernel, TrainMode } from './plan.js';

export interface MeasureInput {
  model: ModelConfig;
  mode: TrainMode;
  precision: Precision;
  activationCheckpointing: boolean;
  lora?: LoraShape;
  /** Text tokens of the sample (bos and eos added). */
  textTokens: number;
  /** The generated image's latent token grid side (side x side tokens). */
  latentSide: number;
  /** Steps after the warm-up one (the first step creates the optimizer state). Default 1. */
  steps?: number;
  device?: torch.Device;
}

export interface Measurement {
  pack: PackShape;
  /** Most bytes allocated at once during the measured steps (weights and state included). */
  peakBytes: number;
  /** Median wall time of a measured step, ms. */
  stepMs: number;
  /** The AdamW implementation the step ran, to plan the same step (PlanInput.optimizerKernel). */
  optimizerKernel: PlanOptimizerKernel;
}

/**
 * The kernel AdamW's 'auto' takes for the trained parameters (src/nn/optim.ts): the fused pass for
 * float32 CPU tensors (fp32 weights or bf16-mixed's float32 masters), the multi-tensor operators
 * elsewhere.
 */
export function stepOptimizerKernel(device: torch.Device, precision: Precision): PlanOptimizerKernel {
  return device === 'cpu' && precision !== 'bf16' ? 'fused' : 'foreach';
}

/** The synthetic pack of MeasureInput (token ids below the special tokens, random latents). */
export function syntheticPack(c: ModelConfig, textTokens: number, latentSide: number, device: torch.Device = 'cpu'): PackedBatch {
  let seed = 1;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const ids = Array.from({ length: textTokens }, (_, k) => k % (c.tokens.bos > 0 ? Math.min(c.tokens.bos, 4096) : 1));
  const z = c.vae.zChannels;
  const latent = torch.scope(() => torch.randn([z, 2 * latentSide, 2 * latentSide], { device }));
  try {
    return buildPackedBatch([[{ kind: 'text', ids, loss: 1 }, { kind: 'vae_image', latent, loss: 1 }]], c, { random });
  } finally {
    latent.dispose();
  }
}

export function packShapeOf(b: PackedBatch): PackShape {
  return { tokens: b.length, sampleLens: [...b.sampleLens], ceTokens: b.ceIndexes.length, latentTokens: b.vae?.tokenIndexes.length ?? 0 };
}

/**
 * Runs 1 + steps training steps and returns the allocator's peak over the last `steps`. The step
 * is the trainer's (src/train sft.ts): the precision mode converts the model and owns what AdamW
 * updates (src/nn MixedPrecision: in bf16-mixed the float32 masters, gradients widened into them
 * after the backward, the masters rounded into the model after the step), and activation
 * checkpointing recomputes each decoder layer in backward (docs/precision.md 1, 3).
 */
export function measureStep(i: MeasureInput): Measurement {
  if (i.mode === 'lora' && !i.lora) throw new Error('measureStep: mode lora needs the adapters (lora.r and lora.targets)');
  const device = i.device ?? 'cpu';
  if (device === 'cpu') torch.trackCpuAllocations();
  const baseline = torch.allocatedBytes(device)?.current ?? 0; // whatever the caller holds is not the step's
  return torch.scope(() => torch.withDefaultDevice(device, () => {
    torch.manualSeed(0);
    // factories create on the device; the few tables built from JS arrays are moved after
    const model = new Bagel(i.model).toDevice(device);
    const vae = new AutoEncoder(i.model.vae).toDevice(device); // held frozen during SFT
    const batch = syntheticPack(i.model, i.textTokens, i.latentSide, device);
    let precision: MixedPrecision | null = null;
    try {
      if (i.mode === 'lora') applyLoRA(model, { targets: i.lora!.targets, r: i.lora!.r });
      vae.requiresGrad_(false);
      model.train();
      precision = new MixedPrecision(model, i.precision, i.activationCheckpointing);
      model.setActivationCheckpointing(i.activationCheckpointing);
      const trainable = precision.params;
      // explicit, so a step that cannot take the planned kernel is an error rather than a mismatch
      const optimizerKernel = stepOptimizerKernel(device, i.precision);
      const opt = new AdamW(trainable, { lr: 1e-4, kernel: optimizerKernel });
      const step = (): void => torch.scope(() => {
        opt.zeroGrad();
        // the SFT loss (0.25 CE + 1.0 MSE, method.md 2.3) through the model layer alone, so the
        // device check needs none of src/train's dependencies (scripts/device-check.sh)
        totalLoss(trainingForward(model, batch)).backward();
        precision!.collectGradients();
        opt.clipAndStep(1.0);
        precision!.syncModel();
      });
      step();
      const times: number[] = [];
      torch.resetPeakAllocated(device);
      for (let k = 0; k < (i.steps ?? 1); k++) {
        const t0 = performance.now();
        step();
        times.push(performance.now() - t0);
      }
      const stats = torch.allocatedBytes(device);
      if (!stats) throw new Error('measureStep: no allocator statistics for this device');
      times.sort((a, b) => a - b);
      return { pack: packShapeOf(batch), peakBytes: stats.peak - baseline, stepMs: times[times.length >> 1]!, optimizerKernel };
    } finally {
      disposeBatch(batch);
      precision?.dispose();
      model.dispose();
      vae.dispose();
    }
  }));
}
