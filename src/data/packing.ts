// Token-budget packing (docs/method.md 2.2, the reference PackedDataset.__iter__), on sequence plans.
// Produces packs as plain lists of samples with their token counts; the model's own packing
// (positions, masks) runs later on each pack.
import type { CharacterImage } from './character.js';
import { sizeFor, type SizeSpec } from './image.js';
import type { Mixture } from './mixture.js';
import { Rng } from './rng.js';
import type { SamplePlan } from './samples.js';

export interface PackingConfig {
  expectedNumTokens: number;
  maxNumTokens: number;
  maxNumTokensPerSample: number;
  preferBufferBefore: number;
  maxBufferSize: number;
}
/** README values of the reference run (docs/method.md 2.2). */
export const DEFAULT_PACKING: PackingConfig = { expectedNumTokens: 8192, maxNumTokens: 12288, maxNumTokensPerSample: 8192, preferBufferBefore: 16384, maxBufferSize: 50 };

export interface MeasureContext {
  /** Text tokens of a segment, without bos/eos (those are the 2 per item below). */
  countTokens: (text: string) => number;
  /** Pixel size of an image before resizing. */
  imageSize: (img: CharacterImage) => { width: number; height: number };
  vae?: SizeSpec;
  vit?: SizeSpec;
  /** Pixels per latent token side: VAE downsample 8 × patch 2 (docs/method.md 2.1: H·W/16²). */
  vaeTokenStride?: number;
  vitPatch?: number;
}

/** Rough count until a tokenizer is wired in: about 4 UTF-8 bytes per token. */
export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
}

export interface MeasuredSample {
  plan: SamplePlan;
  /** Tokens of the content (docs/method.md 2.1 num_tokens). */
  numTokens: number;
  /** numTokens + 2 per plan item: the length packing counts (docs/method.md 2.2). */
  length: number;
}

export function measureSample(plan: SamplePlan, ctx: MeasureContext): MeasuredSample {
  let n = 0;
  for (const it of plan.items) {
    if (it.kind === 'text') n += ctx.countTokens(it.text);
    else {
      const { width, height } = ctx.imageSize(it.image);
      if (it.kind === 'vae_image') {
        const s = ctx.vaeTokenStride ?? 16;
        const t = sizeFor(width, height, ctx.vae ?? { rule: 'vae' });
        n += (t.width / s) * (t.height / s);
      } else {
        const p = ctx.vitPatch ?? 14;
        const t = sizeFor(width, height, ctx.vit ?? { rule: 'vit' });
        n += (t.width / p) * (t.height / p);
      }
    }
  }
  return { plan, numTokens: n, length: n + 2 * plan.items.length };
}

export interface Pack {
  samples: MeasuredSample[];
  /** Sum of sample lengths. */
  length: number;
}

/** Endless packs, following docs/method.md 2.2 step by step:
 * 1. a new pack first takes one sample from every mandatory group;
 * 2. then, while the pack is shorter than preferBufferBefore and the buffer is not empty, take
 *    from the buffer, else pick a group ∝ weight; skip samples ≥ maxNumTokensPerSample; a sample
 *    that would overflow maxNumTokens goes to the buffer (if it has room and did not come from
 *    it), otherwise the pack is emitted as it stands and that sample is dropped, as in the
 *    reference; a pack is emitted once its length ≥ expectedNumTokens. */
export function* drawPacks(mix: Mixture, ctx: MeasureContext, cfg: PackingConfig = DEFAULT_PACKING, seed = 0): Generator<Pack> {
  const rng = new Rng(seed);
  const weights = mix.streams.map((s) => s.group.weight);
  const buffer: MeasuredSample[] = [];
  let pack: Pack = { samples: [], length: 0 };
  const take = (m: MeasuredSample) => {
    pack.samples.push(m);
    pack.length += m.length;
  };
  for (;;) {
    if (pack.length === 0) {
      for (const s of mix.streams) {
        if (!s.group.is_mandatory) continue;
        for (let tries = 0; ; tries++) {
          if (tries > 10_000) throw new Error(`packing: group ${s.name} has no sample shorter than ${cfg.maxNumTokensPerSample} tokens`);
          const m = measureSample(s.next(), ctx);
          if (m.length < cfg.maxNumTokensPerSample) {
            take(m);
            break;
          }
        }
      }
    }
    let m: MeasuredSample;
    let fromBuffer = false;
    if (pack.length < cfg.preferBufferBefore && buffer.length > 0) {
      m = buffer.shift()!;
      fromBuffer = true;
    } else {
      m = measureSample(mix.streams[rng.weighted(weights)]!.next(), ctx);
    }
    if (m.length >= cfg.maxNumTokensPerSample) continue;
    if (pack.length + m.length > cfg.maxNumTokens) {
      if (buffer.length < cfg.maxBufferSize && !fromBuffer) buffer.push(m);
      else {
        yield pack;
        pack = { samples: [], length: 0 };
      }
      continue;
    }
    take(m);
    if (pack.length >= cfg.expectedNumTokens) {
      yield pack;
      pack = { samples: [], length: 0 };
    }
  }
}
