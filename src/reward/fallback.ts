// Substitute scorers for when no pretrained weights are given (as on this machine), keeping the
// reward shapes of docs/method.md 6.4 so GRPO runs and improves something measurable. Each has an id
// starting with 'fallback:' that reports carry, so a number from a substitute is never read as
// CLIP, DINOv2, LPIPS or BLIP. None of them is learned; all are deterministic.
//
// * identity  'fallback:colour-edge-histogram': a hand-made image embedding (joint RGB colour
//   histogram + gradient-orientation histogram over a 2x2 grid, square-rooted so the cosine is a
//   Bhattacharyya coefficient) in place of the DINOv2 CLS token. Cosines live in [0, 1].
// * diversity 'fallback:pixel-rms-32': RMS difference of 32x32 area-downsampled images in [0, 1]
//   units in place of LPIPS; same [0, ~1] range and the same group rule.
// * alignment 'fallback:colour-words': the colour words of the prompt (and a small object ->
//   colour lexicon: sky -> blue, grass -> green, ...) against the image's colour-name histogram;
//   (100/30)·cos like CLIP-T. It sees colours only; a prompt without a colour cue scores 0.
// * checklist 'fallback:colour-heuristic-vqa': answers colour questions (multiple choice, or
//   "Is the fox teal?") from the colour-name histogram and nothing else ("unknown" never matches).
import { ops, scope, tensor, type Tensor } from '../torch/index.js';
import type { ChwImage } from '../data/index.js';
import { unitTensors, CLIPT_SCALE, type ImageBatch, type ImageEmbedder, type TextImageScorer, type PairDistance } from './nets/index.js';
import type { Answerer } from './vqa.js';

/** Each image area-downsampled to size x size, as HWC-free planar RGB in [0, 1] (Float32Array 3*size*size). */
export function downsampled(images: ImageBatch, size: number): Float32Array[] {
  return scope(() => unitTensors(images).map((t) =>
    Float32Array.from(ops.adaptive_avg_pool2d(t, [size, size]).clamp(0, 1).dataSync() as Float32Array)));
}

function normalise(v: Float64Array): Float64Array {
  let s = 0;
  for (const x of v) s += x;
  if (s > 0) for (let i = 0; i < v.length; i++) v[i]! /= s;
  return v;
}

// ---------------------------------------------------------------------------------------------
// identity

const COLOUR_LEVELS = 4; // per channel: 64 joint bins
const ORIENTATIONS = 8;
const CELLS = 2;

/** The hand-made identity embedding of one 64x64 planar image. */
export function colourEdgeFeature(px: Float32Array, size: number, colourWeight = 0.7): Float64Array {
  const plane = size * size;
  const colour = new Float64Array(COLOUR_LEVELS ** 3);
  const q = (v: number): number => Math.min(COLOUR_LEVELS - 1, Math.floor(v * COLOUR_LEVELS));
  const gray = new Float64Array(plane);
  for (let i = 0; i < plane; i++) {
    const r = px[i]!, g = px[plane + i]!, b = px[2 * plane + i]!;
    colour[(q(r) * COLOUR_LEVELS + q(g)) * COLOUR_LEVELS + q(b)]! += 1;
    gray[i] = 0.299 * r + 0.587 * g + 0.114 * b;
  }
  const edges = new Float64Array(CELLS * CELLS * ORIENTATIONS);
  for (let y = 1; y < size - 1; y++) {
    for (let x = 1; x < size - 1; x++) {
      const gx = gray[y * size + x + 1]! - gray[y * size + x - 1]!;
      const gy = gray[(y + 1) * size + x]! - gray[(y - 1) * size + x]!;
      const mag = Math.hypot(gx, gy);
      if (mag < 1e-3) continue;
      // Unsigned orientation in [0, pi).
      let a = Math.atan2(gy, gx);
      if (a < 0) a += Math.PI;
      const o = Math.min(ORIENTATIONS - 1, Math.floor((a / Math.PI) * ORIENTATIONS));
      const cell = Math.floor((y * CELLS) / size) * CELLS + Math.floor((x * CELLS) / size);
      edges[cell * ORIENTATIONS + o]! += mag;
    }
  }
  normalise(colour);
  normalise(edges);
  const out = new Float64Array(colour.length + edges.length);
  const wc = Math.sqrt(colourWeight);
  const we = Math.sqrt(1 - colourWeight);
  colour.forEach((v, i) => { out[i] = wc * Math.sqrt(v); });
  edges.forEach((v, i) => { out[colour.length + i] = we * Math.sqrt(v); });
  return out; // unit norm whenever both histograms are non-empty
}

export class ColourEdgeHistogramEmbedder implements ImageEmbedder {
  readonly id = 'fallback:colour-edge-histogram';
  constructor(readonly size = 64, readonly colourWeight = 0.7) {}
  embed(images: ImageBatch): Tensor {
    const feats = downsampled(images, this.size).map((px) => colourEdgeFeature(px, this.size, this.colourWeight));
    const D = feats[0]?.length ?? COLOUR_LEVELS ** 3 + CELLS * CELLS * ORIENTATIONS;
    const flat = new Float32Array(feats.length * D);
    feats.forEach((f, i) => flat.set(f, i * D));
    return scope(() => {
      const t = tensor(flat, { shape: [feats.length, D] });
      return t.div(t.norm(2, [-1], true).clamp_min(1e-12));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// diversity

export class PixelRmsDistance implements PairDistance {
  readonly id: string;
  constructor(readonly size = 32) {
    this.id = `fallback:pixel-rms-${size}`;
  }
  distance(a: ImageBatch, b: ImageBatch): number[] {
    const da = downsampled(a, this.size);
    const db = downsampled(b, this.size);
    if (da.length !== db.length) throw new Error(`pixel distance: ${da.length} vs ${db.length} images`);
    return da.map((x, i) => {
      const y = db[i]!;
      let s = 0;
      for (let k = 0; k < x.length; k++) s += (x[k]! - y[k]!) ** 2;
      return Math.sqrt(s / x.length);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// colour names

/** Named colours with RGB prototypes in [0, 255] (several per name where one shade is not enough). */
export const COLOUR_PROTOTYPES: Readonly<Record<string, readonly (readonly [number, number, number])[]>> = {
  red: [[210, 40, 40], [150, 20, 30]],
  orange: [[245, 140, 30]],
  yellow: [[245, 215, 60], [250, 235, 130]],
  green: [[70, 170, 70], [40, 110, 50], [130, 200, 100]],
  teal: [[30, 160, 150], [20, 110, 110]],
  blue: [[60, 110, 220], [150, 200, 245], [30, 50, 130]],
  purple: [[140, 70, 180]],
  pink: [[240, 140, 180]],
  brown: [[130, 85, 50], [190, 140, 90]],
  black: [[20, 20, 25]],
  white: [[245, 245, 240]],
  gray: [[128, 128, 128]],
};
export const COLOUR_NAMES = Object.keys(COLOUR_PROTOTYPES);

const SYNONYMS: Record<string, string> = {
  grey: 'gray', violet: 'purple', crimson: 'red', scarlet: 'red', gold: 'yellow', golden: 'yellow',
  cyan: 'teal', turquoise: 'teal', aqua: 'teal', navy: 'blue', azure: 'blue', silver: 'gray',
};

/** Objects whose usual colour is a cue (used only when the prompt names no colour for them). */
export const OBJECT_COLOURS: Readonly<Record<string, readonly string[]>> = {
  sky: ['blue'], sea: ['blue'], ocean: ['blue'], river: ['blue'], lake: ['blue'], water: ['blue'], puddles: ['blue'], rain: ['blue', 'gray'],
  grass: ['green'], forest: ['green'], tree: ['green'], trees: ['green'], pine: ['green'], meadow: ['green'], leaves: ['green'], garden: ['green'],
  sun: ['yellow'], sunny: ['yellow'], lantern: ['yellow', 'orange'], candle: ['yellow', 'orange'],
  snow: ['white'], snowy: ['white'], cloud: ['white'], clouds: ['white'], fog: ['white', 'gray'], foggy: ['white', 'gray'],
  night: ['black', 'blue'], stars: ['black', 'yellow'], fire: ['orange', 'red'], sunset: ['orange', 'pink'], blueberry: ['blue', 'purple'],
};

/** Fraction of pixels nearest to each named colour (RGB distance to the closest prototype). */
export function colourNameHistogram(px: Float32Array, size: number): Record<string, number> {
  const plane = size * size;
  const counts: Record<string, number> = Object.fromEntries(COLOUR_NAMES.map((n) => [n, 0]));
  for (let i = 0; i < plane; i++) {
    const r = px[i]! * 255, g = px[plane + i]! * 255, b = px[2 * plane + i]! * 255;
    let best = '';
    let bestD = Infinity;
    for (const name of COLOUR_NAMES) {
      for (const [pr, pg, pb] of COLOUR_PROTOTYPES[name]!) {
        const d = (r - pr) ** 2 + (g - pg) ** 2 + (b - pb) ** 2;
        if (d < bestD) { bestD = d; best = name; }
      }
    }
    counts[best]! += 1 / plane;
  }
  return counts;
}

/** Colour cues of a text: explicit colour words (weight 1) and object colours (weight 0.5 each). */
export function colourCues(text: string, lexicon: Readonly<Record<string, readonly string[]>> = OBJECT_COLOURS): Record<string, number> {
  const cues: Record<string, number> = {};
  for (const raw of text.toLowerCase().split(/[^a-z]+/).filter(Boolean)) {
    const w = SYNONYMS[raw] ?? raw;
    if (w in COLOUR_PROTOTYPES) cues[w] = (cues[w] ?? 0) + 1;
    else for (const c of lexicon[w] ?? []) cues[c] = (cues[c] ?? 0) + 0.5;
  }
  return cues;
}

export interface ColourWordsOptions {
  /** Extra word -> colours cues, e.g. the character's name -> its palette ({ tessel: ['teal', 'orange'] }). */
  lexicon?: Record<string, readonly string[]>;
  size?: number;
}

/**
 * Text-image alignment substitute: cos(prompt colour cues, sqrt of the image colour-name
 * histogram) scaled by 100/30 like CLIP-T. The square root keeps a large background from
 * swamping small named objects. 0 for a prompt with no colour cue (the same for a whole group, so
 * it adds no advantage signal there).
 */
export class ColourWordsScorer implements TextImageScorer {
  readonly id = 'fallback:colour-words';
  private readonly lexicon: Record<string, readonly string[]>;
  private readonly size: number;
  constructor(options: ColourWordsOptions = {}) {
    this.lexicon = { ...OBJECT_COLOURS, ...(options.lexicon ?? {}) };
    this.size = options.size ?? 32;
  }
  cosine(images: ImageBatch, prompts: readonly string[]): number[] {
    const px = downsampled(images, this.size);
    if (px.length !== prompts.length) throw new Error(`colour-words: ${px.length} images but ${prompts.length} prompts`);
    return px.map((p, i) => {
      const cues = colourCues(prompts[i]!, this.lexicon);
      const hist = colourNameHistogram(p, this.size);
      let dot = 0, nc = 0, nh = 0;
      for (const name of COLOUR_NAMES) {
        const c = cues[name] ?? 0;
        const h = Math.sqrt(hist[name]!);
        dot += c * h;
        nc += c * c;
        nh += h * h;
      }
      return nc > 0 && nh > 0 ? dot / Math.sqrt(nc * nh) : 0;
    });
  }
  score(images: ImageBatch, prompts: readonly string[]): number[] {
    return this.cosine(images, prompts).map((c) => CLIPT_SCALE * c);
  }
}

// ---------------------------------------------------------------------------------------------
// checklist answers

/** Answers colour questions from the colour-name histogram; anything else gets "unknown". */
export class ColourHeuristicAnswerer implements Answerer {
  readonly id = 'fallback:colour-heuristic-vqa';
  constructor(readonly presence = 0.02, readonly size = 32) {}
  answer(image: ChwImage, question: string, choices?: readonly string[]): string {
    const hist = colourNameHistogram(downsampled([image], this.size)[0]!, this.size);
    const canon = (w: string): string => SYNONYMS[w.toLowerCase()] ?? w.toLowerCase();
    const colourChoices = (choices ?? []).filter((c) => canon(c) in COLOUR_PROTOTYPES);
    if (colourChoices.length > 0) {
      return colourChoices.reduce((best, c) => (hist[canon(c)]! > hist[canon(best)]! ? c : best)).toLowerCase();
    }
    const words = question.toLowerCase().split(/[^a-z]+/).filter(Boolean).map(canon);
    const named = words.find((w) => w in COLOUR_PROTOTYPES);
    if (named && /^(is|are|does|do)\b/i.test(question.trim())) return hist[named]! >= this.presence ? 'yes' : 'no';
    return 'unknown';
  }
}
