// The loss plot of a run: a small self-contained SVG (no scripts, no external files, no
// libraries) drawn from metrics.jsonl, one line per series (loss, ce, mse, ...), rewritten at
// intervals while training runs. Open loss.svg in any browser.
import { readMetrics, type MetricsRecord } from './run-dir.js';
import { writeFileAtomic } from './fs-atomic.js';

export interface LossPlotOptions {
  /** Metric names to draw (default: defaultSeries(records)). */
  series?: string[];
  title?: string;
  width?: number;
  height?: number;
  /** Logarithmic y axis (non-positive values are left out). */
  logY?: boolean;
  /** Points per series at most; longer series are averaged in equal buckets (default 1500). */
  maxPoints?: number;
  /**
   * A shaded band of +- one `se` metric around the `series` metric (e.g. an evaluation reward and
   * its standard error over seeds), drawn under the lines; points without both values are left out.
   * Not downsampled: meant for short per-epoch curves.
   */
  band?: { series: string; se: string };
  /** The x axis label (default 'step'; a GRPO run's records count epochs). */
  xLabel?: string;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Loss-like numeric metrics: "loss", anything ending in "loss", and ce, mse, kl. */
export function defaultSeries(records: readonly MetricsRecord[]): string[] {
  const names = new Set<string>();
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      if (typeof v === 'number' && (/loss$/i.test(k) || /^(ce|mse|kl)$/i.test(k))) names.add(k);
    }
  }
  return [...names].sort((a, b) => (a === 'loss' ? -1 : b === 'loss' ? 1 : a < b ? -1 : 1));
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round tick values covering [lo, hi] (about `count` of them, steps of 1, 2 or 5 x 10^k). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function label(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return String(Number(v.toPrecision(6)));
}

// Averages a long series into at most maxPoints buckets (equal runs of consecutive points).
function downsample(points: [number, number][], maxPoints: number): [number, number][] {
  if (points.length <= maxPoints) return points;
  const out: [number, number][] = [];
  const per = points.length / maxPoints;
  for (let b = 0; b < maxPoints; b++) {
    const from = Math.floor(b * per);
    const to = Math.floor((b + 1) * per);
    let sx = 0;
    let sy = 0;
    for (let i = from; i < to; i++) {
      sx += points[i]![0];
      sy += points[i]![1];
    }
    out.push([sx / (to - from), sy / (to - from)]);
  }
  return out;
}

type Series = { name: string; points: [number, number][] };

/** The plot area inside the margins, and the data-to-pixel maps of both axes. */
interface Frame {
  m: { left: number; right: number; top: number; bottom: number };
  pw: number;
  ph: number;
  x0: number;
  x1: number;
  /** y range in plotted units (log10 of the value on a log axis). */
  y0: number;
  y1: number;
  sx: (x: number) => number;
  sy: (y: number) => number;
}

// The right margin holds the legend: a metric name and its last value, up to ~22 characters.
const MARGIN = { left: 64, right: 160, top: 32, bottom: 44 };
const r2 = (v: number): string => String(Math.round(v * 100) / 100);

/** The SVG text of a plot of `series` against step. */
export function renderLossPlot(records: readonly MetricsRecord[], options: LossPlotOptions = {}): string {
  const width = options.width ?? 720;
  const height = options.height ?? 360;
  const title = options.title ?? 'training loss';
  const logY = options.logY ?? false;
  const data = seriesPoints(records, options.series ?? defaultSeries(records), logY, options.maxPoints ?? 1500);
  if (options.band && logY) throw new Error('renderLossPlot: a band (+- se) is drawn on a linear y axis only; logY and band were both given');
  const band = options.band ? bandPoints(records, options.band) : [];
  const all = [...data.flatMap((d) => d.points), ...band.flatMap(([x, lo, hi]): [number, number][] => [[x, lo], [x, hi]])];
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${MARGIN.left}" y="20" font-size="13" font-weight="bold">${escapeXml(title)}</text>`);
  if (all.length === 0) {
    out.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666666">no data yet</text>`);
  } else {
    const frame = plotFrame(all, width, height, logY);
    drawAxes(out, frame, logY, height, options.xLabel ?? 'step');
    if (band.length > 0) drawBand(out, frame, band, options.band!);
    drawSeries(out, frame, data);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The finite (and, on a log axis, positive) points of each series, downsampled. */
function seriesPoints(records: readonly MetricsRecord[], names: string[], logY: boolean, maxPoints: number): Series[] {
  return names.map((name) => {
    const pts: [number, number][] = [];
    for (const r of records) {
      const v = r[name];
      if (typeof v === 'number' && Number.isFinite(v) && Number.isFinite(r.step) && (!logY || v > 0)) pts.push([r.step, v]);
    }
    return { name, points: downsample(pts, maxPoints) };
  });
}

/** Axis ranges over every point, y padded by 5% (a flat series by 0.5), and the pixel maps. */
function plotFrame(all: [number, number][], width: number, height: number, logY: boolean): Frame {
  const m = MARGIN;
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const x0 = Math.min(...all.map((p) => p[0]));
  let x1 = Math.max(...all.map((p) => p[0]));
  if (x1 === x0) x1 = x0 + 1;
  const f = logY ? Math.log10 : (v: number) => v;
  let y0 = Math.min(...all.map((p) => f(p[1])));
  let y1 = Math.max(...all.map((p) => f(p[1])));
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  } else {
    const pad = (y1 - y0) * 0.05;
    y0 -= pad;
    y1 += pad;
  }
  if (!logY && y0 < 0 && Math.min(...all.map((p) => p[1])) >= 0) y0 = 0; // losses are usually >= 0
  const sx = (x: number): number => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => m.top + ph - ((f(y) - y0) / (y1 - y0)) * ph;
  return { m, pw, ph, x0, x1, y0, y1, sx, sy };
}

/** Grid lines, the plot border, tick labels and the x axis label. */
function drawAxes(out: string[], { m, pw, ph, x0, x1, y0, y1, sx, sy }: Frame, logY: boolean, height: number, xLabel: string): void {
  out.push(`<g stroke="#dddddd" stroke-width="1">`);
  const yTicks = logY
    ? niceTicks(y0, y1, 5).map((e) => 10 ** e)
    : niceTicks(y0, y1, 5);
  for (const t of yTicks) out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${r2(sy(t))}" y2="${r2(sy(t))}"/>`);
  const xTicks = niceTicks(x0, x1, 6).filter((t) => Number.isInteger(t) || x1 - x0 < 6);
  for (const t of xTicks) out.push(`<line x1="${r2(sx(t))}" x2="${r2(sx(t))}" y1="${m.top}" y2="${m.top + ph}"/>`);
  out.push('</g>');
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333333"/>`);
  out.push('<g fill="#333333">');
  for (const t of yTicks) out.push(`<text x="${m.left - 6}" y="${r2(sy(t) + 4)}" text-anchor="end">${escapeXml(label(t))}</text>`);
  for (const t of xTicks) out.push(`<text x="${r2(sx(t))}" y="${m.top + ph + 16}" text-anchor="middle">${escapeXml(label(t))}</text>`);
  out.push(`<text x="${m.left + pw / 2}" y="${height - 8}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  out.push('</g>');
}

/** [step, value - se, value + se] of each record with both values finite. */
function bandPoints(records: readonly MetricsRecord[], b: { series: string; se: string }): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (const r of records) {
    const v = r[b.series];
    const se = r[b.se];
    if (typeof v === 'number' && typeof se === 'number' && Number.isFinite(v) && Number.isFinite(se) && Number.isFinite(r.step)) out.push([r.step, v - se, v + se]);
  }
  return out;
}

/** The band as one polygon: along the upper edge, back along the lower one. */
function drawBand(out: string[], { sx, sy }: Frame, band: [number, number, number][], b: { series: string; se: string }): void {
  const upper = band.map(([x, , hi]) => `${r2(sx(x))},${r2(sy(hi))}`);
  const lower = band.map(([x, lo]) => `${r2(sx(x))},${r2(sy(lo))}`).reverse();
  out.push(`<polygon class="band" data-series="${escapeXml(b.series)}" data-se="${escapeXml(b.se)}" fill="#1f77b4" fill-opacity="0.15" stroke="none" points="${[...upper, ...lower].join(' ')}"/>`);
}

/** One polyline per series and a legend entry with its last value. */
function drawSeries(out: string[], { m, pw, sx, sy }: Frame, data: Series[]): void {
  data.forEach((d, i) => {
    const color = COLORS[i % COLORS.length]!;
    if (d.points.length > 0) {
      const pts = d.points.map(([x, y]) => `${r2(sx(x))},${r2(sy(y))}`).join(' ');
      out.push(`<polyline class="series" data-series="${escapeXml(d.name)}" fill="none" stroke="${color}" stroke-width="1.5" stroke-linejoin="round" points="${pts}"/>`);
    }
    const ly = m.top + 12 + i * 18;
    const last = d.points.length ? ` ${label(d.points[d.points.length - 1]![1])}` : '';
    out.push(`<line x1="${m.left + pw + 12}" x2="${m.left + pw + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${m.left + pw + 38}" y="${ly}">${escapeXml(d.name + last)}</text>`);
  });
}

/** Reads metrics.jsonl and (re)writes the SVG plot atomically, so a viewer never sees half a file. */
export function writeLossPlot(metricsPath: string, outPath: string, options: LossPlotOptions = {}): void {
  writeFileAtomic(outPath, renderLossPlot(readMetrics(metricsPath), options));
}
