// Rule-based text metrics of the benchmark (docs/ecosystem.md 5): ROUGE-L and BLEU for text
// role-play against reference replies (RoleBench reports ROUGE-L; BLEU is the usual companion),
// and the VQA answer normalisation used for exact-match accuracy. Pure functions, no model.

/**
 * Tokens for ROUGE-L and BLEU, as the `rouge_score` default tokenizer does: lower-case, every run
 * of characters other than ASCII letters and digits becomes a separator, no stemming. Non-ASCII
 * words (e.g. CJK) are kept as whole tokens so they still count.
 */
export function metricTokens(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9\u0080-\uffff]+/g, ' ').trim().split(/\s+/).filter((t) => t.length > 0);
}

/** Length of the longest common subsequence of two token lists (O(n·m) dynamic programme). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

export interface RougeL {
  precision: number;
  recall: number;
  /** F1 (beta = 1), what RoleBench reports as ROUGE-L. */
  f: number;
}

/** Sentence ROUGE-L of a candidate against one reference: P = LCS/|cand|, R = LCS/|ref|, F = 2PR/(P+R). */
export function rougeL(candidate: string, reference: string): RougeL {
  const c = metricTokens(candidate);
  const r = metricTokens(reference);
  const lcs = lcsLength(c, r);
  if (lcs === 0) return { precision: 0, recall: 0, f: 0 };
  const precision = lcs / c.length;
  const recall = lcs / r.length;
  return { precision, recall, f: (2 * precision * recall) / (precision + recall) };
}

/** Counts of every n-gram of one order. */
export function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const k = tokens.slice(i, i + n).join('\u0001');
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** Clipped matches and candidate n-gram total for one order (Papineni et al. 2002, modified precision). */
function clippedMatches(cand: readonly string[], ref: readonly string[], n: number): { matches: number; total: number } {
  const c = ngramCounts(cand, n);
  const r = ngramCounts(ref, n);
  let matches = 0;
  let total = 0;
  for (const [k, v] of c) {
    total += v;
    matches += Math.min(v, r.get(k) ?? 0);
  }
  return { matches, total };
}

export interface BleuResult {
  bleu: number;
  /** Modified n-gram precisions p_1..p_N (after smoothing, for sentence BLEU). */
  precisions: number[];
  brevityPenalty: number;
  candidateLength: number;
  referenceLength: number;
}

function bleuFrom(matches: number[], totals: number[], c: number, r: number, epsilon: number): BleuResult {
  const precisions = matches.map((m, i) => {
    const t = totals[i]!;
    if (t === 0) return 0;
    return (m === 0 && epsilon > 0 ? epsilon : m) / t;
  });
  const brevityPenalty = c === 0 ? 0 : c > r ? 1 : Math.exp(1 - r / c);
  const bleu = precisions.some((p) => p === 0) ? 0 : brevityPenalty * Math.exp(precisions.reduce((s, p) => s + Math.log(p), 0) / precisions.length);
  return { bleu, precisions, brevityPenalty, candidateLength: c, referenceLength: r };
}

/**
 * Corpus BLEU-N (default 4, uniform weights): clipped n-gram matches and candidate n-gram counts
 * summed over all pairs before dividing, one brevity penalty exp(1 - r/c) over the summed lengths
 * (c ≤ r), no smoothing — the standard corpus-level definition. One reference per candidate.
 */
export function corpusBleu(pairs: readonly { candidate: string; reference: string }[], maxN = 4): BleuResult {
  const matches = new Array<number>(maxN).fill(0);
  const totals = new Array<number>(maxN).fill(0);
  let c = 0;
  let r = 0;
  for (const p of pairs) {
    const ct = metricTokens(p.candidate);
    const rt = metricTokens(p.reference);
    c += ct.length;
    r += rt.length;
    for (let n = 1; n <= maxN; n++) {
      const m = clippedMatches(ct, rt, n);
      matches[n - 1]! += m.matches;
      totals[n - 1]! += m.total;
    }
  }
  return bleuFrom(matches, totals, c, r, 0);
}

/**
 * Sentence BLEU-N with NLTK's smoothing "method1": a zero match count of an order that has
 * candidate n-grams becomes epsilon (0.1), so short replies do not all collapse to 0.
 */
export function sentenceBleu(candidate: string, reference: string, maxN = 4, epsilon = 0.1): BleuResult {
  const ct = metricTokens(candidate);
  const rt = metricTokens(reference);
  const matches: number[] = [];
  const totals: number[] = [];
  for (let n = 1; n <= maxN; n++) {
    const m = clippedMatches(ct, rt, n);
    matches.push(m.matches);
    totals.push(m.total);
  }
  return bleuFrom(matches, totals, ct.length, rt.length, epsilon);
}

// ---------------------------------------------------------------------------------------------
// VQA answer normalisation (after the official VQA evaluation, vqaEval.py: processPunctuation and
// processDigitArticle), used for exact-match accuracy with one reference answer.

const NUMBER_WORDS: Record<string, string> = {
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5',
  six: '6', seven: '7', eight: '8', nine: '9', ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
/** A few of vqaEval's contraction fixes (apostrophe-less forms to the usual spelling). */
const CONTRACTIONS: Record<string, string> = {
  dont: "don't", doesnt: "doesn't", isnt: "isn't", arent: "aren't", cant: "can't", wont: "won't",
  didnt: "didn't", wasnt: "wasn't", werent: "weren't", im: "i'm", youre: "you're", shes: "she's", hes: "he's", its: "it's",
};

/**
 * Normalises a VQA answer for exact match:
 * 1. lower-case and trim;
 * 2. a period is removed unless it sits between two digits (vqaEval's periodStrip keeps "2.5");
 * 3. a comma between digits is removed ("1,000" → "1000", vqaEval's commaStrip);
 * 4. every other punctuation character is removed (apostrophes too: "tessel's" → "tessels"),
 *    then any remaining non-word symbol becomes a space;
 * 5. number words zero…ten (and "none") become digits, articles a/an/the are dropped, and
 *    apostrophe-less contractions are restored ("dont" → "don't") as vqaEval's contraction map does;
 * 6. whitespace is collapsed.
 */
export function normalizeVqaAnswer(answer: string): string {
  let s = answer.toLowerCase().trim();
  s = s.replace(/(\d),(\d)/g, '$1$2');
  s = s.replace(/(?<!\d)\.|\.(?!\d)/g, '');
  s = s.replace(/[!"#$%&'()*+,\-/:;<=>?@[\\\]^_`{|}~\u2018\u2019\u201c\u201d]/g, (ch) => (ch === "'" || ch === '\u2019' ? '' : ' '));
  const words = s.split(/\s+/).filter((w) => w.length > 0);
  const out: string[] = [];
  for (const w of words) {
    const mapped = NUMBER_WORDS[w] ?? w;
    if (ARTICLES.has(mapped)) continue;
    out.push(CONTRACTIONS[mapped] ?? mapped);
  }
  return out.join(' ');
}

/** 1 when the normalised prediction equals the normalised reference, else 0. */
export function vqaExactMatch(prediction: string, reference: string): number {
  return normalizeVqaAnswer(prediction) === normalizeVqaAnswer(reference) ? 1 : 0;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
