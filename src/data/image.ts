// Image pipeline on sharp: decode by content, composite alpha on white, resize by the method's
// rules, and convert to and from a plain CHW Float32Array in [-1, 1]. No tensor dependency:
// the engine layer wraps the arrays (docs/architecture.md "Layers").
import sharp from 'sharp';

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'unknown';

/** Format by magic bytes, never by extension: 9 RoleScape-20 `.png` files are JPEG (docs/dataset.md 2). */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && String.fromCharCode(...bytes.subarray(0, 4)) === 'RIFF' && String.fromCharCode(...bytes.subarray(8, 12)) === 'WEBP') return 'webp';
  if (bytes.length >= 4 && String.fromCharCode(...bytes.subarray(0, 4)) === 'GIF8') return 'gif';
  return 'unknown';
}

/** 8-bit RGB pixels, row-major, interleaved (HWC). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Planar float image, channels first, values in [-1, 1] (mean 0.5, std 0.5 as in BAGEL's transforms). */
export interface ChwImage {
  channels: 3;
  height: number;
  width: number;
  data: Float32Array;
}

const WHITE = { r: 255, g: 255, b: 255 };

/** Decodes any supported image to RGB; alpha is composited onto white like the reference
 * `pil_img2rgb` (docs/dataset.md 2) so pixels are comparable. */
export async function decodeImage(bytes: Uint8Array): Promise<RgbImage> {
  if (sniffImageFormat(bytes) === 'unknown') throw new Error('decodeImage: not a PNG, JPEG, WebP or GIF image');
  const { data, info } = await sharp(bytes).flatten({ background: WHITE }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decodeImage: expected 3 channels, got ${info.channels}`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export async function imageSize(bytes: Uint8Array): Promise<{ width: number; height: number; format: ImageFormat; hasAlpha: boolean }> {
  const m = await sharp(bytes).metadata();
  if (m.width === undefined || m.height === undefined) throw new Error('imageSize: no dimensions');
  return { width: m.width, height: m.height, format: sniffImageFormat(bytes), hasAlpha: m.hasAlpha ?? false };
}

/** Parameters of BAGEL's MaxLongEdgeMinShortEdgeResize (docs/method.md 2.1). */
export interface ResizeRule {
  maxSize: number;
  minSize: number;
  stride: number;
  maxPixels: number;
}
/** VAE images: long side ≤ 1024, short side ≥ 512, stride 16 (docs/method.md 2.1). */
export const VAE_RULE: ResizeRule = { maxSize: 1024, minSize: 512, stride: 16, maxPixels: 14 * 14 * 9 * 1024 };
/** ViT images: long side ≤ 980, short side ≥ 378, stride 14 (docs/method.md 2.1). */
export const VIT_RULE: ResizeRule = { maxSize: 980, minSize: 378, stride: 14, maxPixels: 2_007_040 };

/**
 * A method rule scaled down for a model below the published size (docs/fidelity.md "Image
 * sizes"): the long-side bound becomes `maxSide` (a multiple of `stride`), the short-side bound
 * and the pixel cap shrink by the same ratio (the cap by its square), so the aspect ratio is kept
 * as the rule keeps it and every side stays a multiple of the model's stride. At the published
 * size (VAE 1024 / stride 16, ViT 980 / 14) it is the rule itself.
 */
export function scaledRule(rule: ResizeRule, maxSide: number, stride = rule.stride): ResizeRule {
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`scaledRule: stride must be a positive integer, got ${stride}`);
  if (!(maxSide >= stride)) throw new Error(`scaledRule: maxSide ${maxSide} is smaller than the stride ${stride}`);
  const maxSize = Math.floor(maxSide / stride) * stride;
  const ratio = maxSize / rule.maxSize;
  const minSize = Math.min(maxSize, Math.max(stride, Math.round((rule.minSize * ratio) / stride) * stride));
  return { maxSize, minSize, stride, maxPixels: Math.round(rule.maxPixels * ratio * ratio) };
}

/** Python's round(): halves go to the even neighbour. The reference code relies on it. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function makeDivisible(value: number, stride: number): number {
  return Math.max(stride, Math.trunc(pyRound(value / stride) * stride));
}

function applyScale(w: number, h: number, scale: number, stride: number): [number, number] {
  return [makeDivisible(pyRound(w * scale), stride), makeDivisible(pyRound(h * scale), stride)];
}

/** Target size of BAGEL's resize, step for step (transforms.py, docs/method.md 2.1). Note the pixel
 * cap scales by the area ratio, not its square root, as the reference does. */
export function targetSize(width: number, height: number, rule: ResizeRule, imgNum = 1): { width: number; height: number } {
  let scale = Math.min(rule.maxSize / Math.max(width, height), 1.0);
  scale = Math.max(scale, rule.minSize / Math.min(width, height));
  let [w, h] = applyScale(width, height, scale, rule.stride);
  if (w * h > rule.maxPixels / imgNum) {
    [w, h] = applyScale(w, h, rule.maxPixels / imgNum / (w * h), rule.stride);
  }
  if (Math.max(w, h) > rule.maxSize) {
    [w, h] = applyScale(w, h, rule.maxSize / Math.max(w, h), rule.stride);
  }
  return { width: w, height: h };
}

/** Bicubic resize; sharp's cubic kernel reduces with antialiasing when shrinking, like
 * torchvision's `antialias=True` (pixel values differ slightly from torchvision's). */
export async function resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** HWC uint8 → CHW float in [-1, 1]: x / 255 * 2 - 1 (ToTensor then Normalize(0.5, 0.5)). */
export function toChw(img: RgbImage): ChwImage {
  const { width, height, data } = img;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (data[i * 3 + c]! / 255) * 2 - 1;
  }
  return { channels: 3, height, width, data: out };
}

/** CHW float in [-1, 1] → HWC uint8, clamped and rounded (the inverse of toChw). */
export function fromChw(img: ChwImage): RgbImage {
  const { width, height, data } = img;
  const plane = width * height;
  if (data.length !== 3 * plane) throw new Error(`fromChw: expected ${3 * plane} values, got ${data.length}`);
  const out = new Uint8Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round(((data[c * plane + i]! + 1) / 2) * 255);
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data: out };
}

export async function encodePng(img: RgbImage): Promise<Uint8Array> {
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** How to size an image for the model: a method rule, or a fixed size for tiny models. */
export type SizeSpec = { rule: 'vae' } | { rule: 'vit' } | { rule: 'custom'; resize: ResizeRule } | { rule: 'fixed'; width: number; height: number };

export function sizeFor(width: number, height: number, spec: SizeSpec): { width: number; height: number } {
  switch (spec.rule) {
    case 'vae':
      return targetSize(width, height, VAE_RULE);
    case 'vit':
      return targetSize(width, height, VIT_RULE);
    case 'custom':
      return targetSize(width, height, spec.resize);
    case 'fixed':
      return { width: spec.width, height: spec.height };
  }
}

/** bytes → decoded, composited, resized, normalised CHW: the whole input path of one image. */
export async function prepareImage(bytes: Uint8Array, spec: SizeSpec): Promise<ChwImage> {
  const img = await decodeImage(bytes);
  const t = sizeFor(img.width, img.height, spec);
  return toChw(await resizeImage(img, t.width, t.height));
}
