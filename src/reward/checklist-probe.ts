// The checklist probe (docs/reward-scorers.md "The checklist probe"): id 'trained:checklist-probe',
// a small answerer trained here for CPU-size runs without BLIP-VQA. It is not a neural VQA model.
// It reads a question as its content words and keeps, per word, a logistic-regression probe over a
// fixed image feature (the 8 x 8 RGB layout of caption-knn.ts and the square-rooted colour-name
// histogram of fallback.ts), trained on checklist items about the character's own images:
// * a yes/no item labels each content word of its question with its answer ("Does the image show
//   snow?" yes: snow = 1 for that image);
// * a multiple-choice item labels the words of its correct option 1 and the words of the other
//   options 0.
// Words the character's captions always contain (its constants: "teal", "scarf") are always true.
// Answers: a yes/no question is "yes" when the mean probability of its known words is above 1/2
// and "no" when it has no known word (nothing the answerer was trained on names it); a multiple-
// choice question takes the option whose known words score highest; an open question gets
// "unknown", which never matches. Held-out accuracy: src/reward/probe-accuracy.ts.
import type { ChwImage } from '../data/index.js';
import { captionWords, layoutFeature, sameWord, STOP_WORDS } from './caption-knn.js';
import { colourNameHistogram, COLOUR_NAMES, downsampled } from './fallback.js';
import type { Answerer } from './vqa.js';

export const CHECKLIST_PROBE_ID = 'trained:checklist-probe';

/** One training item: a question about an image with its expected answer (choices for multiple choice). */
export interface ProbeItem {
  image: ChwImage;
  question: string;
  answer: string;
  choices?: readonly string[];
}

export interface ChecklistProbeOptions {
  /** Side of the layout grid (default 8). */
  gridSide?: number;
  /** L2 weight on the probe weights (default 0.001; the bias is not penalised). */
  l2?: number;
  /** Gradient-descent steps per probe (default 500). */
  steps?: number;
  /** yes/no threshold: 'prior' (default) = a word applies when its probability is above its training base rate; 'half' = above 1/2. */
  rule?: 'prior' | 'half';
  /** Words always true of the character (e.g. the words every caption has). */
  constants?: readonly string[];
}

/** Words with no content for the probe: the caption-kNN stop words and the items' "show". */
const PROBE_STOP = new Set([...STOP_WORDS, 'show', 'shows', 'showing']);

/** The content words of a question or an option. */
export function contentWords(text: string): string[] {
  return captionWords(text).filter((w) => !PROBE_STOP.has(w));
}

/** Whether a question asks yes or no (by its first word). */
export function isYesNoQuestion(question: string): boolean {
  return /^(is|are|does|do|can|has|have)\b/i.test(question.trim());
}

const featureCache = new WeakMap<ChwImage, Map<number, Float64Array>>();

/** The probe's image feature: the layout grid and the colour-name histogram, each L2-normalised, side by side (cached per image object). */
export function probeFeature(image: ChwImage, gridSide = 8): Float64Array {
  const cached = featureCache.get(image)?.get(gridSide);
  if (cached) return cached;
  const f = computeProbeFeature(image, gridSide);
  featureCache.set(image, (featureCache.get(image) ?? new Map<number, Float64Array>()).set(gridSide, f));
  return f;
}

function computeProbeFeature(image: ChwImage, gridSide: number): Float64Array {
  const layout = layoutFeature(downsampled([image], gridSide)[0]!);
  const size = 32;
  const hist = colourNameHistogram(downsampled([image], size)[0]!, size);
  const colour = COLOUR_NAMES.map((n) => Math.sqrt(hist[n]!)); // unit norm: the shares sum to 1
  const out = new Float64Array(layout.length + colour.length);
  out.set(layout);
  out.set(colour, layout.length);
  return out;
}

/** Word labels an item gives: yes/no, every content word of the question; multiple choice, the options' words. */
export function itemWordLabels(item: Pick<ProbeItem, 'question' | 'answer' | 'choices'>): { word: string; label: 0 | 1 }[] {
  const answer = item.answer.trim().toLowerCase();
  if (item.choices && item.choices.length) {
    const right = new Set(contentWords(answer));
    const out: { word: string; label: 0 | 1 }[] = [...right].map((word) => ({ word, label: 1 as const }));
    for (const c of item.choices) {
      if (c.trim().toLowerCase() === answer) continue;
      for (const w of new Set(contentWords(c))) if (!right.has(w)) out.push({ word: w, label: 0 });
    }
    return out;
  }
  if (answer !== 'yes' && answer !== 'no') return [];
  return [...new Set(contentWords(item.question))].map((word) => ({ word, label: answer === 'yes' ? 1 : 0 }));
}

/** A logistic probe: weights and bias, fitted by full-batch gradient descent on mean log-loss + l2/2 |w|^2. */
export interface Probe {
  w: Float64Array;
  b: number;
  /** Share of its training labels that are 1. */
  prior: number;
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/**
 * Fits one probe on feature rows and 0/1 labels (deterministic: zero start, fixed step). Gradient
 * descent from w = 0 keeps w in the span of the rows, w = X^T a, so it runs on a with the Gram
 * matrix K = X X^T: z = K a, and the step on w, w -= lr (X^T r / n + l2 w), is a -= lr (r / n + l2 a)
 * (the same iterates, n^2 instead of n * d work per step).
 */
export function fitProbe(xs: readonly Float64Array[], ys: readonly number[], l2: number, steps: number): Probe {
  if (xs.length === 0 || xs.length !== ys.length) throw new Error(`fitProbe: ${xs.length} rows, ${ys.length} labels`);
  const n = xs.length;
  const d = xs[0]!.length;
  const K = xs.map((a) => xs.map((b) => { let s = 0; for (let j = 0; j < d; j++) s += a[j]! * b[j]!; return s; }));
  // Rows have squared norm 2 (probeFeature) plus the bias's 1, so the mean log-loss is 3/4-smooth:
  // the step 1/L is stable and needs no tuning.
  const lr = 1 / (0.75 + l2);
  const alpha = new Float64Array(n);
  let b = 0;
  const r = new Float64Array(n);
  for (let t = 0; t < steps; t++) {
    let gb = 0;
    for (let i = 0; i < n; i++) {
      let z = b;
      for (let k = 0; k < n; k++) z += K[i]![k]! * alpha[k]!;
      r[i] = sigmoid(z) - ys[i]!;
      gb += r[i]!;
    }
    for (let i = 0; i < n; i++) alpha[i]! -= lr * (r[i]! / n + l2 * alpha[i]!);
    b -= lr * gb / n;
  }
  const w = new Float64Array(d);
  xs.forEach((x, i) => { for (let j = 0; j < d; j++) w[j]! += alpha[i]! * x[j]!; });
  return { w, b, prior: ys.reduce((a, y) => a + y, 0) / n };
}

export function probeProbability(p: Probe, x: Float64Array): number {
  let z = p.b;
  for (let j = 0; j < x.length; j++) z += p.w[j]! * x[j]!;
  return sigmoid(z);
}

export class ChecklistProbeAnswerer implements Answerer {
  readonly id = CHECKLIST_PROBE_ID;
  private constructor(
    private readonly probes: Map<string, Probe>,
    private readonly constants: readonly string[],
    private readonly gridSide: number,
    private readonly rule: 'prior' | 'half',
  ) {}

  /** Trains one probe per word the items label (at least one item). */
  static fit(items: readonly ProbeItem[], o: ChecklistProbeOptions = {}): ChecklistProbeAnswerer {
    if (items.length === 0) throw new Error('ChecklistProbeAnswerer: no checklist items to train on');
    const gridSide = o.gridSide ?? 8;
    const l2 = o.l2 ?? 0.001;
    const steps = o.steps ?? 500;
    if (!(l2 >= 0) || !(steps >= 1)) throw new Error(`ChecklistProbeAnswerer: l2 must be >= 0 and steps >= 1, got ${l2} and ${steps}`);
    const feats = new Map<ChwImage, Float64Array>();
    const rows = new Map<string, { xs: Float64Array[]; ys: number[] }>();
    for (const it of items) {
      if (!feats.has(it.image)) feats.set(it.image, probeFeature(it.image, gridSide));
      for (const { word, label } of itemWordLabels(it)) {
        const key = [...rows.keys()].find((k) => sameWord(k, word)) ?? word;
        const r = rows.get(key) ?? { xs: [], ys: [] };
        r.xs.push(feats.get(it.image)!);
        r.ys.push(label);
        rows.set(key, r);
      }
    }
    const probes = new Map([...rows].map(([k, r]) => [k, fitProbe(r.xs, r.ys, l2, steps)] as const));
    return new ChecklistProbeAnswerer(probes, (o.constants ?? []).map((c) => c.toLowerCase()), gridSide, o.rule ?? 'prior');
  }

  /** The words with a probe. */
  get words(): string[] {
    return [...this.probes.keys()];
  }

  /** P(word applies to the image): 1 for a constant, null for a word with no probe. */
  probability(image: ChwImage, word: string, feature: Float64Array = probeFeature(image, this.gridSide)): number | null {
    return this.evidence(word, feature)?.p ?? null;
  }

  /** A word's probability and the threshold it is read against (rule), null for a word with no probe. */
  private evidence(word: string, feature: Float64Array): { p: number; threshold: number } | null {
    if (this.constants.some((c) => sameWord(c, word))) return { p: 1, threshold: 0.5 };
    const key = [...this.probes.keys()].find((k) => sameWord(k, word));
    if (key === undefined) return null;
    const probe = this.probes.get(key)!;
    return { p: probeProbability(probe, feature), threshold: this.rule === 'prior' ? probe.prior : 0.5 };
  }

  /** Mean margin (probability minus threshold) of a text's known words, or null when none is known. */
  private textMargin(text: string, feature: Float64Array): number | null {
    const es = contentWords(text).map((w) => this.evidence(w, feature)).filter((e) => e !== null);
    return es.length ? es.reduce((a, e) => a + e.p - e.threshold, 0) / es.length : null;
  }

  answer(image: ChwImage, question: string, choices?: readonly string[]): string {
    const feature = probeFeature(image, this.gridSide);
    if (choices && choices.length) {
      let best = 0;
      let bestScore = -Infinity;
      choices.forEach((c, i) => {
        const s = this.textMargin(c, feature) ?? -2;
        if (s > bestScore) { best = i; bestScore = s; }
      });
      return choices[best]!.toLowerCase();
    }
    if (!isYesNoQuestion(question)) return 'unknown';
    const m = this.textMargin(question, feature);
    return m !== null && m > 0 ? 'yes' : 'no';
  }
}
