// A small checklist answerer fitted here, for CPU-size runs without BLIP-VQA (docs/reward-scorers.md
// "The caption-kNN checklist answerer"): id 'trained:caption-knn'. It is not a neural VQA model. It
// is fitted on the character's own captioned images: each image becomes a feature vector (the
// colour-edge histogram of src/reward/fallback.ts) and a document (its T2I caption, its VQA
// answers and its correct MCQ options). A question about a new image is answered from the k
// training images nearest to it by feature cosine:
// * yes/no: the question's content words that discriminate between the documents (words found in
//   some but not all of them) are looked up in the neighbours' documents; "yes" when the
//   similarity-weighted share of them found is at least one half. A question whose known words
//   are all in every document (a constant of the character: "Is the fox teal?") is "yes"; one with
//   no known word ("Is there a lighthouse?" when no caption names one) is "no".
// * multiple choice: the option named most in the neighbours' documents (weighted), ties broken by
//   how often the whole training set names it.
// * open questions (no choices) get "unknown", which never matches.
// Its accuracy on held-out items and the majority baseline are measured by
// src/reward/answerer-accuracy.ts and reported beside every reward that uses it.
import type { ChwImage } from '../data/index.js';
import { colourEdgeFeature, downsampled } from './fallback.js';
import type { Answerer } from './vqa.js';

export const CAPTION_KNN_ID = 'trained:caption-knn';

/** One training image of the answerer and the text that describes it. */
export interface CaptionKnnEntry {
  image: ChwImage;
  text: string;
}

export interface CaptionKnnOptions {
  /** Neighbours consulted (default 3). */
  k?: number;
  /** Side the images are area-downsampled to before the feature (default 32). */
  size?: number;
  /**
   * The image feature: 'layout' (default) = the image area-averaged to a gridSide x gridSide RGB
   * grid, centred and L2-normalised (where colours are: backgrounds, large objects);
   * 'colour-edge' = the fallback identity embedding (global colour and edge histograms).
   */
  feature?: 'layout' | 'colour-edge';
  /** Side of the 'layout' grid (default 8). */
  gridSide?: number;
  /** yes/no: 'prior' (default) = yes when the neighbours' weighted share is above the share of all training documents; 'half' = when it is at least 1/2. */
  rule?: 'half' | 'prior';
}

/** The 'layout' feature: the grid's RGB values minus their mean, L2-normalised. */
export function layoutFeature(px: Float32Array): Float64Array {
  let m = 0;
  for (const v of px) m += v;
  m /= px.length;
  const out = Float64Array.from(px, (v) => v - m);
  let n = 0;
  for (const v of out) n += v * v;
  n = Math.sqrt(n) || 1;
  for (let i = 0; i < out.length; i++) out[i]! /= n;
  return out;
}

/** Words a question or caption carries no content in (shared with the checklist probe). */
export const STOP_WORDS: ReadonlySet<string> = new Set([
  'a', 'an', 'the', 'is', 'are', 'was', 'were', 'be', 'there', 'this', 'that', 'these', 'those', 'of', 'on', 'in', 'at', 'to', 'with',
  'and', 'or', 'by', 'for', 'from', 'her', 'his', 'its', 'it', 'she', 'he', 'they', 'what', 'which', 'who', 'where', 'how', 'many',
  'does', 'do', 'did', 'image', 'picture', 'shown', 'visible', 'any', 'some', 'one', 'of', 'as', 'into', 'up', 'has', 'have',
]);

/** Lower-case words of a text. */
export function captionWords(text: string): string[] {
  return text.toLowerCase().replace(/’/g, "'").split(/[^a-z']+/).map((w) => w.replace(/'s$/, '').replace(/'/g, '')).filter(Boolean);
}

/** Whether two words name the same thing: equal, or one a prefix of the other of 4+ letters (snow / snowy, rain / raining). */
export function sameWord(a: string, b: string): boolean {
  if (a === b) return true;
  const [s, l] = a.length <= b.length ? [a, b] : [b, a];
  return s.length >= 4 && l.startsWith(s);
}

const mentions = (doc: readonly string[], w: string): boolean => doc.some((d) => sameWord(d, w));

export class CaptionKnnAnswerer implements Answerer {
  readonly id = CAPTION_KNN_ID;
  readonly k: number;
  private readonly size: number;
  private readonly kind: 'layout' | 'colour-edge';
  private readonly gridSide: number;
  private readonly rule: 'half' | 'prior';
  private readonly feats: Float64Array[];
  private readonly docs: string[][];

  private constructor(entries: readonly CaptionKnnEntry[], o: CaptionKnnOptions) {
    this.k = o.k ?? 3;
    this.size = o.size ?? 32;
    this.kind = o.feature ?? 'layout';
    this.gridSide = o.gridSide ?? 8;
    this.rule = o.rule ?? 'prior';
    if (!(this.k >= 1)) throw new Error(`CaptionKnnAnswerer: k must be >= 1, got ${this.k}`);
    this.feats = entries.map((e) => this.feature(e.image));
    this.docs = entries.map((e) => captionWords(e.text));
  }

  /** Fits the answerer on captioned images (at least one). */
  static fit(entries: readonly CaptionKnnEntry[], o: CaptionKnnOptions = {}): CaptionKnnAnswerer {
    if (entries.length === 0) throw new Error('CaptionKnnAnswerer: no captioned images to fit on');
    return new CaptionKnnAnswerer(entries, o);
  }

  private feature(image: ChwImage): Float64Array {
    if (this.kind === 'layout') return layoutFeature(downsampled([image], this.gridSide)[0]!);
    return colourEdgeFeature(downsampled([image], this.size)[0]!, this.size);
  }

  /** The k nearest training images with their cosine weights. */
  neighbours(image: ChwImage): { i: number; w: number }[] {
    const f = this.feature(image);
    const sims = this.feats.map((g, i) => {
      let d = 0;
      for (let j = 0; j < f.length; j++) d += f[j]! * g[j]!;
      return { i, w: Math.max(d, 1e-6) };
    });
    return sims.sort((a, b) => b.w - a.w || a.i - b.i).slice(0, this.k);
  }

  /** How many training documents mention the word. */
  private docCount(w: string): number {
    return this.docs.filter((d) => mentions(d, w)).length;
  }

  answer(image: ChwImage, question: string, choices?: readonly string[]): string {
    if (choices && choices.length) return this.choose(image, choices);
    const content = captionWords(question).filter((w) => !STOP_WORDS.has(w));
    const known = content.filter((w) => this.docCount(w) > 0);
    if (known.length === 0) return /^(is|are|does|do|can|has|have)\b/i.test(question.trim()) ? 'no' : 'unknown';
    if (!/^(is|are|does|do|can|has|have)\b/i.test(question.trim())) return 'unknown';
    const telling = known.filter((w) => this.docCount(w) < this.docs.length);
    if (telling.length === 0) return 'yes';
    const nb = this.neighbours(image);
    let found = 0, total = 0;
    for (const { i, w } of nb) {
      found += w * telling.filter((t) => mentions(this.docs[i]!, t)).length / telling.length;
      total += w;
    }
    const prior = telling.reduce((a, t) => a + this.docCount(t) / this.docs.length, 0) / telling.length;
    return found / total > (this.rule === "prior" ? prior : 0.5 - 1e-12) ? "yes" : "no";
  }

  private choose(image: ChwImage, choices: readonly string[]): string {
    const nb = this.neighbours(image);
    const optionWords = choices.map((c) => captionWords(c).filter((w) => !STOP_WORDS.has(w)));
    const named = (doc: readonly string[], ws: readonly string[]): boolean => ws.length > 0 && ws.every((w) => mentions(doc, w));
    const local = optionWords.map((ws) => nb.reduce((a, { i, w }) => a + (named(this.docs[i]!, ws) ? w : 0), 0));
    const global = optionWords.map((ws) => this.docs.filter((d) => named(d, ws)).length);
    let best = 0;
    for (let c = 1; c < choices.length; c++) {
      if (local[c]! > local[best]! || (local[c] === local[best] && global[c]! > global[best]!)) best = c;
    }
    return choices[best]!.toLowerCase();
  }
}
