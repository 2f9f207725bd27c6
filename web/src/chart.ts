// A loss curve as inline SVG: no chart library, scales to its container.
import { h, svg } from './dom.js';

export interface Point {
  step: number;
  loss: number;
}

/** Loss points from a job's progress, whatever shape the training layer reports. */
export function lossPoints(progress: unknown): Point[] {
  if (!progress || typeof progress !== 'object') return [];
  const p = progress as Record<string, unknown>;
  for (const key of ['loss_history', 'losses', 'history', 'metrics', 'loss_curve']) {
    const v = p[key];
    if (!Array.isArray(v)) continue;
    const pts: Point[] = [];
    v.forEach((e, i) => {
      if (typeof e === 'number' && Number.isFinite(e)) pts.push({ step: i + 1, loss: e });
      else if (e && typeof e === 'object') {
        const r = e as Record<string, unknown>;
        const loss = typeof r.loss === 'number' ? r.loss : undefined;
        if (loss !== undefined && Number.isFinite(loss)) pts.push({ step: typeof r.step === 'number' ? r.step : i + 1, loss });
      }
    });
    if (pts.length) return pts;
  }
  return [];
}

export function lossChart(points: Point[], label: string): Element {
  const W = 600;
  const H = 220;
  const pad = { l: 48, r: 12, t: 12, b: 28 };
  const x0 = points[0]!.step;
  const x1 = Math.max(points.at(-1)!.step, x0 + 1);
  let lo = Math.min(...points.map((p) => p.loss));
  let hi = Math.max(...points.map((p) => p.loss));
  if (hi - lo < 1e-9) {
    hi += 0.5;
    lo -= 0.5;
  }
  const X = (s: number) => pad.l + ((s - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const Y = (l: number) => pad.t + (1 - (l - lo) / (hi - lo)) * (H - pad.t - pad.b);
  const line = points.map((p) => `${X(p.step).toFixed(1)},${Y(p.loss).toFixed(1)}`).join(' ');
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  const chart = svg(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'loss-chart', role: 'img', 'aria-label': label, preserveAspectRatio: 'none' },
    svg('line', { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, class: 'axis' }),
    svg('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b, class: 'axis' }),
    svg('text', { x: pad.l - 6, y: pad.t + 10, 'text-anchor': 'end', class: 'tick' }, fmt(hi)),
    svg('text', { x: pad.l - 6, y: H - pad.b, 'text-anchor': 'end', class: 'tick' }, fmt(lo)),
    svg('text', { x: pad.l, y: H - 8, class: 'tick' }, `step ${x0}`),
    svg('text', { x: W - pad.r, y: H - 8, 'text-anchor': 'end', class: 'tick' }, `step ${points.at(-1)!.step}`),
    svg('polyline', { points: line, class: 'curve', fill: 'none' }),
  );
  return h('figure', { class: 'chart' }, chart, h('figcaption', {}, `${label}: last ${fmt(points.at(-1)!.loss)} at step ${points.at(-1)!.step}`));
}
