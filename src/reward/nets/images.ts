// Images as the scorers take them, and the tensor-side preprocessing the reference scorers apply
// (docs/method.md 3.4): torchvision Resize(shortest side) + CenterCrop + mean/std normalisation on
// float images in [0, 1]. Every scorer accepts either decoded CHW images in [-1, 1] (src/data/image.ts)
// or a float tensor batch [B, 3, H, W] in [0, 1] (what the sampler decodes), so the same object
// serves the GRPO reward and the evaluation metric.
import { ops, scope, tensor, type Tensor } from '../../torch/index.js';
import { decodeImage, pyRound, toChw, type ChwImage } from '../../data/index.js';
import { readFileSync } from 'node:fs';

/** A list of decoded images (CHW, [-1, 1]) or one tensor [B, 3, H, W] in [0, 1]. */
export type ImageBatch = readonly ChwImage[] | Tensor;

/** Number of images in a batch. */
export function batchSize(images: ImageBatch): number {
  return Array.isArray(images) ? images.length : (images as Tensor).shape[0]!;
}

/** Each image as its own float32 tensor [1, 3, H, W] in [0, 1] (sizes may differ between images). */
export function unitTensors(images: ImageBatch): Tensor[] {
  if (!Array.isArray(images)) {
    const t = images as Tensor;
    if (t.ndim !== 4 || t.shape[1] !== 3) throw new Error(`reward: image tensor must be [B, 3, H, W], got [${t.shape.join(', ')}]`);
    return scope(() => {
      const f = t.to('float32');
      return Array.from({ length: t.shape[0]! }, (_, i) => f.narrow(0, i, 1).contiguous());
    });
  }
  return (images as readonly ChwImage[]).map((im) => scope(() =>
    tensor(im.data, { shape: [1, 3, im.height, im.width] }).add(1).div(2)));
}

/** Reads image files (any format sharp decodes) into CHW [-1, 1] images at their own size. */
export async function loadImages(paths: readonly string[]): Promise<ChwImage[]> {
  const out: ChwImage[] = [];
  for (const p of paths) out.push(toChw(await decodeImage(new Uint8Array(readFileSync(p)))));
  return out;
}

export interface Preprocess {
  /** Shortest side after resizing (torchvision Resize(int)). */
  resize: number;
  /** Square centre crop. */
  crop: number;
  mode: 'bilinear' | 'bicubic';
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/**
 * Resize so the shorter side is `resize` (long side int(resize * long / short), as torchvision
 * computes it; no antialiasing, as torchvision's tensor path in the reference), centre crop
 * (offsets int(round((H - crop) / 2)), Python rounding), then (x - mean) / std.
 * x: [1, 3, H, W] in [0, 1]; returns [1, 3, crop, crop].
 */
export function preprocess(x: Tensor, p: Preprocess): Tensor {
  return scope(() => {
    const [, , H, W] = x.shape as [number, number, number, number];
    const short = Math.min(H, W);
    const long = Math.max(H, W);
    const newLong = Math.trunc((p.resize * long) / short);
    const [h, w] = H <= W ? [p.resize, newLong] : [newLong, p.resize];
    let y = x;
    if (h !== H || w !== W) {
      y = p.mode === 'bilinear'
        ? ops.upsample_bilinear2d(x, [h, w], false, null)
        : ops.upsample_bicubic2d(x, [h, w], false, null);
    }
    const top = Math.trunc(pyRound((h - p.crop) / 2));
    const left = Math.trunc(pyRound((w - p.crop) / 2));
    if (top < 0 || left < 0) throw new Error(`reward: crop ${p.crop} larger than the resized image ${h}x${w}`);
    y = y.narrow(2, top, p.crop).narrow(3, left, p.crop);
    const mean = tensor([...p.mean], { shape: [1, 3, 1, 1] });
    const std = tensor([...p.std], { shape: [1, 3, 1, 1] });
    return y.sub(mean).div(std);
  });
}

/** Preprocesses every image of a batch and stacks them: [B, 3, crop, crop]. */
export function preprocessBatch(images: ImageBatch, p: Preprocess): Tensor {
  return scope(() => ops.cat(unitTensors(images).map((t) => preprocess(t, p)), 0));
}

/** Cosine similarity matrix of two sets of row vectors [N, D] x [M, D] -> [N, M]. */
export function cosineMatrix(a: Tensor, b: Tensor): Tensor {
  return scope(() => l2normalize(a).matmul(l2normalize(b).t()));
}

/** Rows divided by their L2 norm. */
export function l2normalize(x: Tensor): Tensor {
  return scope(() => x.div(x.norm(2, [-1], true).clamp_min(1e-12)));
}

/** The rows of a [N, M] tensor as number arrays. */
export function rows(t: Tensor): number[][] {
  return t.toArray() as number[][];
}
