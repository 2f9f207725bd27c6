// The checklist answerer of docs/method.md 3.4 when no BLIP-VQA weights are given: the
// customized model answers with its own understanding path. The image goes through the ViT
// (SigLIP) into a fresh context as `<|vision_start|> patches <|vision_end|>` (und expert), the
// question follows as `<|im_start|> question <|im_end|>`, and the reply is greedy-decoded for a
// few tokens, exactly as evaluation's VQA does. Its id, 'self:understanding-path', says that the
// model scored itself; every GRPO log line and metrics record carries it.
//
// Layering: reward sits below train and eval, so this file takes the model and plain
// encode/decode functions (a Tokenizer's, or any other) and imports only src/model and src/data.
import { ops, noGrad, scope, tensor, type Tensor } from '../torch/index.js';
import { newContext, prefillText, prefillVitImage, decodeSteps, type Bagel } from '../model/index.js';
import type { ChwImage } from '../data/index.js';
import type { Answerer } from './vqa.js';

export const SELF_VQA_ID = 'self:understanding-path';

export interface SelfVqaOptions {
  /** Token ids of a text (no special tokens; the prefill adds <|im_start|> / <|im_end|>). */
  encode: (text: string) => number[] | Promise<number[]>;
  /** Text of generated ids (special tokens skipped). */
  decode: (ids: number[]) => string;
  /** Reply length cap in tokens (default 8: checklist answers are one or two words). */
  maxTokens?: number;
  /**
   * Square ViT input side in pixels, a multiple of the ViT patch size. Default: the image side
   * rounded to the nearest multiple of the patch size, within [patch, patch * maxNumPatchPerSide].
   */
  imageSide?: number;
}

/** The ViT side for an image side (see SelfVqaOptions.imageSide). */
export function selfVqaImageSide(model: Bagel, side: number): number {
  const ps = model.config.vit.patchSize;
  const max = ps * model.config.vit.maxNumPatchPerSide;
  return Math.min(max, Math.max(ps, Math.round(side / ps) * ps));
}

/** The question as the model reads it; multiple-choice options are listed after it. */
export function selfVqaPrompt(question: string, choices?: readonly string[]): string {
  return choices && choices.length ? `${question}\nAnswer with one of: ${choices.join(', ')}.` : question;
}

/** Strips whitespace and one trailing full stop ("Yes." answers "yes"). */
export function normaliseReply(text: string): string {
  return text.trim().replace(/\.$/, '').trim();
}

export class SelfVqaAnswerer implements Answerer {
  readonly id = SELF_VQA_ID;
  readonly maxTokens: number;

  constructor(readonly model: Bagel, readonly options: SelfVqaOptions) {
    this.maxTokens = options.maxTokens ?? 8;
    if (!(this.maxTokens >= 1)) throw new Error(`SelfVqaAnswerer: maxTokens must be >= 1, got ${this.maxTokens}`);
    const side = options.imageSide;
    if (side !== undefined && (side <= 0 || side % model.config.vit.patchSize !== 0)) {
      throw new Error(`SelfVqaAnswerer: imageSide ${side} is not a positive multiple of the ViT patch size ${model.config.vit.patchSize}`);
    }
  }

  /** The image as the ViT takes it: [3, side, side] in [-1, 1], resized bilinearly when needed. */
  vitInput(image: ChwImage): Tensor {
    return noGrad(() => scope(() => {
      const side = this.options.imageSide ?? selfVqaImageSide(this.model, Math.min(image.height, image.width));
      const x = tensor(image.data, { shape: [1, 3, image.height, image.width], dtype: 'float32' });
      const y = image.height === side && image.width === side ? x : ops.upsample_bilinear2d(x, [side, side], false, null);
      return y.squeeze(0).contiguous();
    }));
  }

  async answer(image: ChwImage, question: string, choices?: readonly string[]): Promise<string> {
    const ids = await this.options.encode(selfVqaPrompt(question, choices));
    const ctx = newContext(this.model);
    try {
      const t = this.vitInput(image);
      try {
        prefillVitImage(this.model, ctx, t);
      } finally {
        t.dispose();
      }
      prefillText(this.model, ctx, ids);
      const out: number[] = [];
      for (const id of decodeSteps(this.model, ctx, { temperature: 0, maxTokens: this.maxTokens })) out.push(id);
      return normaliseReply(this.options.decode(out));
    } finally {
      ctx.dispose();
    }
  }
}
