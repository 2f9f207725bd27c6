// Bytes per parameter and per activation element of each precision mode (docs/planner.md 2).
// The modes are the trainer's: fp32; bf16-mixed (bf16 weights and activations for forward and
// backward, fp32 master weights, fp32 gradients and fp32 AdamW state); bf16 (everything bf16,
// AdamW on the bf16 weights).
import { PRECISION_MODES, isPrecisionMode, type PrecisionMode } from '../nn/index.js';

/** The trainer's own modes (src/nn/precision.ts), so the planner cannot drift from them. */
export const PRECISIONS = PRECISION_MODES;
export type Precision = PrecisionMode;

export interface PrecisionBytes {
  /** The weights forward and backward read (per trainable parameter). */
  working: number;
  /** An fp32 master copy beside the working weights (0 when the working weights are the master). */
  master: number;
  /** One gradient per trainable parameter, as the optimizer reads it. */
  gradient: number;
  /** The model's own gradient during backward (bf16-mixed: bfloat16, widened into the fp32 one after backward). */
  backwardGradient: number;
  /** AdamW's two moments. */
  optimizer: number;
  /** A frozen (not trained) parameter or buffer. */
  frozen: number;
  /** An activation element (norms and the loss keep fp32 regardless: docs/planner.md 3). */
  activation: number;
}

const BYTES: Record<Precision, PrecisionBytes> = {
  fp32: { working: 4, master: 0, gradient: 4, backwardGradient: 4, optimizer: 8, frozen: 4, activation: 4 },
  'bf16-mixed': { working: 2, master: 4, gradient: 4, backwardGradient: 2, optimizer: 8, frozen: 2, activation: 2 },
  bf16: { working: 2, master: 0, gradient: 2, backwardGradient: 2, optimizer: 4, frozen: 2, activation: 2 },
};

/**
 * Bytes of the trained parameters of a mode (docs/planner.md 2). LoRA adapters in bf16-mixed stay
 * float32 and are their own masters (docs/precision.md 4): 4 + 0 + 4 + 8.
 */
export function precisionBytes(p: Precision, loraAdapters = false): PrecisionBytes {
  if (loraAdapters && p === 'bf16-mixed') return { ...BYTES[p], working: 4, master: 0, backwardGradient: 4 };
  return BYTES[p];
}

export const isPrecision: (s: unknown) => s is Precision = isPrecisionMode;
