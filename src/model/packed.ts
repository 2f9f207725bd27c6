// Packed sequences (docs/method.md 1.5-1.7, 2.1-2.4): a list of samples, each a sequence plan of text,
// ViT images and VAE images, becomes one flat token sequence with its RoPE positions, expert
// routing, per-sample attention masks (causal / full / noise splits, nothing across samples), CE
// targets and MSE token rows. Training (trainingForward) consumes it.
import { fromBytes, ops, scope, tensor, type Device, type Tensor } from '../torch/index.js';
import { flattenedPositionIds, patchify } from './embeddings.js';
import { additiveMask } from './mot.js';
import type { ModelConfig } from './config.js';

/** One item of a sample's sequence plan. */
export type PackItem =
  /** Token ids without bos/eos (they are added: bos text eos). loss 1: CE on every text token and the closing eos. */
  | { kind: 'text'; ids: number[]; loss: 0 | 1; enableCfg?: 0 | 1 }
  /** An understanding image [C, H, W] in [-1, 1], H and W multiples of the ViT patch. */
  | { kind: 'vit_image'; image: Tensor; enableCfg?: 0 | 1 }
  /**
   * A VAE latent [z, h, w] (already encoded, scaled and shifted; h, w even). loss 1: the image
   * is generated (noised, MSE, a `noise` split); loss 0: a clean condition (t = 0, a `full` split).
   */
  | { kind: 'vae_image'; latent: Tensor; loss: 0 | 1; enableCfg?: 0 | 1 };

export type PackSample = PackItem[];

export type SplitMode = 'causal' | 'full' | 'noise';

export interface PackOptions {
  /** Dropout of text items with enableCfg = 1 (caption dropout, 0.1; docs/method.md 2.4). */
  textDropProb?: number;
  /** Dropout of ViT / VAE images with enableCfg = 1 (0.3 / 0.3, inactive in the reference data). */
  vitDropProb?: number;
  vaeDropProb?: number;
  /** Uniform [0, 1) source for dropout and the timestep draws (default Math.random). */
  random?: () => number;
}

export interface PackedBatch {
  /** Total tokens. */
  length: number;
  sampleLens: number[];
  /** Per sample: split lengths and modes, in order. */
  splits: { lens: number[]; modes: SplitMode[] }[];
  /** RoPE positions per token (restarting at 0 per sample, docs/method.md 1.6). */
  positionIds: number[];
  /** true where the token uses the gen expert (exactly the VAE latent tokens). */
  isGen: boolean[];
  /** Tokens read from the embedding table (text and image markers), with their ids. */
  textIndexes: number[];
  textIds: number[];
  /** CE input positions and their labels (next tokens). */
  ceIndexes: number[];
  ceLabels: number[];
  /** ViT patches packed over images, or null. */
  vit: { patches: Tensor; positionIds: number[]; lens: number[]; tokenIndexes: number[] } | null;
  /**
   * Clean latent tokens [n, p*p*z] of every VAE image, their flattened 2-D ids, sequence
   * positions, and per-token normal draws n (t = sigmoid(n); -inf for clean conditions).
   * mseRows: the rows (into these tokens) that carry MSE; mseIndexes: their sequence positions.
   */
  vae: {
    latents: Tensor;
    positionIds: number[];
    tokenIndexes: number[];
    timestepNormals: number[];
    mseRows: number[];
    mseIndexes: number[];
    images: { h: number; w: number; zChannels: number; row: number; loss: 0 | 1 }[];
  } | null;
}

/** A standard normal from a uniform source (Box-Muller). */
function normalFrom(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * The allowed-attention matrix of one sample (docs/method.md 1.7, prepare_attention_mask_per_sample):
 * causal splits are causal inside and see all earlier splits; full and noise splits are
 * bidirectional inside and see all earlier splits; a noise split's columns are then hidden from
 * every row outside it.
 */
export function sampleAttention(lens: number[], modes: SplitMode[]): boolean[][] {
  const L = lens.reduce((a, b) => a + b, 0);
  const flat = sampleAttentionBytes(lens, modes);
  return Array.from({ length: L }, (_, i) => Array.from(flat.subarray(i * L, (i + 1) * L), (v) => v === 1));
}

/** sampleAttention as a flat row-major L*L byte matrix (1 = allowed): what the mask tensor is built from. */
export function sampleAttentionBytes(lens: number[], modes: SplitMode[]): Uint8Array {
  const L = lens.reduce((a, b) => a + b, 0);
  const m = new Uint8Array(L * L);
  let start = 0;
  lens.forEach((s, k) => {
    for (let i = start; i < start + s; i++) {
      const row = i * L;
      m.fill(1, row, row + start);
      const end = modes[k] === 'causal' ? i + 1 : start + s;
      m.fill(1, row + start, row + end);
    }
    start += s;
  });
  start = 0;
  lens.forEach((s, k) => {
    if (modes[k] === 'noise') {
      for (let i = 0; i < L; i++) {
        const inside = i >= start && i < start + s ? 1 : 0;
        m.fill(inside, i * L + start, i * L + start + s);
      }
    }
    start += s;
  });
  return m;
}

export function packedMasks(batch: PackedBatch, device?: Device): Tensor[] {
  return batch.splits.map((s) => scope(() => {
    const L = s.lens.reduce((a, b) => a + b, 0);
    return additiveMask(fromBytes(sampleAttentionBytes(s.lens, s.modes), 'bool', [L, L], device));
  }));
}

/**
 * Packs samples into one sequence. Text: [bos, ids, eos] on consecutive positions, a causal
 * split. Images: [start_of_image, tokens, end_of_image] all on one position; ViT and clean VAE
 * images advance the position by 1, a generated (loss 1) VAE image does not; dropped images still
 * advance it, dropped text does not (docs/method.md 1.6, 2.4).
 */
export function buildPackedBatch(samples: PackSample[], config: ModelConfig, options: PackOptions = {}): PackedBatch {
  const random = options.random ?? Math.random;
  const textDrop = options.textDropProb ?? 0.1;
  const vitDrop = options.vitDropProb ?? 0.3;
  const vaeDrop = options.vaeDropProb ?? 0.3;
  const { bos, eos, startOfImage, endOfImage } = config.tokens;
  const p = config.latentPatchSize;

  const out: PackedBatch = {
    length: 0, sampleLens: [], splits: [], positionIds: [], isGen: [], textIndexes: [], textIds: [],
    ceIndexes: [], ceLabels: [], vit: null, vae: null,
  };
  const vitPatches: Tensor[] = [];
  const vit = { positionIds: [] as number[], lens: [] as number[], tokenIndexes: [] as number[] };
  const vaeTokens: Tensor[] = [];
  const vae = {
    positionIds: [] as number[], tokenIndexes: [] as number[], timestepNormals: [] as number[],
    mseRows: [] as number[], mseIndexes: [] as number[], images: [] as NonNullable<PackedBatch['vae']>['images'],
  };
  let curr = 0;
  const token = (id: number, pos: number): void => {
    out.textIndexes.push(curr);
    out.textIds.push(id);
    out.positionIds.push(pos);
    out.isGen.push(false);
    curr++;
  };

  for (const sample of samples) {
    const sampleStart = curr;
    let rope = 0;
    const lens: number[] = [];
    const modes: SplitMode[] = [];
    for (const item of sample) {
      const splitStart = curr;
      if (item.kind === 'text') {
        if (item.enableCfg === 1 && random() < textDrop) continue; // the whole segment disappears
        const seq = [bos, ...item.ids, eos];
        if (item.loss === 1) {
          // inputs bos, t1..tn predict t1..tn, eos; the trailing eos input has no loss
          for (let k = 0; k < seq.length - 1; k++) {
            out.ceIndexes.push(curr + k);
            out.ceLabels.push(seq[k + 1]!);
          }
        }
        seq.forEach((id, k) => token(id, rope + k));
        rope += seq.length;
        modes.push('causal');
      } else if (item.kind === 'vit_image') {
        if (item.enableCfg === 1 && random() < vitDrop) {
          rope += 1;
          continue;
        }
        const ps = config.vit.patchSize;
        const [, H, W] = item.image.shape as [number, number, number];
        const patches = patchify(item.image, ps);
        const n = patches.shape[0]!;
        token(startOfImage, rope);
        vitPatches.push(patches);
        vit.positionIds.push(...flattenedPositionIds(H / ps, W / ps, config.vit.maxNumPatchPerSide));
        vit.lens.push(n);
        for (let k = 0; k < n; k++) {
          vit.tokenIndexes.push(curr);
          out.positionIds.push(rope);
          out.isGen.push(false);
          curr++;
        }
        token(endOfImage, rope);
        rope += 1;
        modes.push('full');
      } else {
        if (item.enableCfg === 1 && random() < vaeDrop) {
          rope += 1;
          continue;
        }
        const [z, h, w] = item.latent.shape as [number, number, number];
        const tokens = patchify(item.latent, p);
        const n = tokens.shape[0]!;
        const normal = item.loss === 1 ? normalFrom(random) : -Infinity; // one draw per image
        token(startOfImage, rope);
        vae.images.push({ h: h / p, w: w / p, zChannels: z, row: vae.tokenIndexes.length, loss: item.loss });
        vaeTokens.push(tokens);
        vae.positionIds.push(...flattenedPositionIds(h / p, w / p, config.maxLatentSize));
        for (let k = 0; k < n; k++) {
          if (item.loss === 1) {
            vae.mseRows.push(vae.tokenIndexes.length);
            vae.mseIndexes.push(curr);
          }
          vae.tokenIndexes.push(curr);
          vae.timestepNormals.push(normal);
          out.positionIds.push(rope);
          out.isGen.push(true);
          curr++;
        }
        token(endOfImage, rope);
        if (item.loss === 0) rope += 1; // a generated image does not advance the position
        modes.push(item.loss === 1 ? 'noise' : 'full');
      }
      lens.push(curr - splitStart);
    }
    if (curr === sampleStart) continue; // everything dropped
    out.sampleLens.push(curr - sampleStart);
    out.splits.push({ lens, modes });
  }
  out.length = curr;
  if (vitPatches.length) out.vit = { patches: ops.cat(vitPatches, 0), ...vit };
  if (vaeTokens.length) out.vae = { latents: ops.cat(vaeTokens, 0), ...vae };
  for (const t of [...vitPatches, ...vaeTokens]) t.dispose(); // cat copied them
  return out;
}

/** Frees the tensors a batch holds. */
export function disposeBatch(batch: PackedBatch): void {
  batch.vit?.patches.dispose();
  batch.vae?.latents.dispose();
}
