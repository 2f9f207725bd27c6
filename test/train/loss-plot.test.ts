// The loss plot: a well-formed self-contained SVG with one polyline per series.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultSeries, niceTicks, renderLossPlot, writeLossPlot, type MetricsRecord } from '../../src/train/index.js';
import { withTempDir } from './helpers.js';

/** Checks that every tag is closed in order (a small XML well-formedness check, no parser needed). */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, attrs, self] = m;
    assert.ok(!/[<&](?![a-z#]+;)/.test(attrs!), `unescaped character in <${name}${attrs}>`);
    if (self) continue;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, [], 'every element is closed');
  const text = svg.replace(/<[^>]*>/g, '');
  assert.ok(!/[<>]|&(?![a-z#0-9]+;)/.test(text), 'text content is escaped');
}

const records: MetricsRecord[] = Array.from({ length: 50 }, (_, i) => ({
  step: i + 1, loss: 3 / (i + 1) + 0.1, ce: 2 / (i + 1), mse: 1 / (i + 1), lr: 1e-3, tokens: 100,
}));

test('a plot of loss, ce and mse is valid SVG with one polyline per series', () => {
  const svg = renderLossPlot(records, { title: 'sft <tiny> & co' });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assertWellFormed(svg);
  assert.match(svg, /sft &lt;tiny&gt; &amp; co/);
  for (const name of ['loss', 'ce', 'mse']) {
    const m = new RegExp(`<polyline [^>]*data-series="${name}"[^>]*points="([^"]+)"`).exec(svg);
    assert.ok(m, `series ${name}`);
    const pts = m[1]!.split(' ').map((p) => p.split(',').map(Number));
    assert.equal(pts.length, 50);
    assert.ok(pts.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && x! >= 0 && x! <= 720 && y! >= 0 && y! <= 360));
    assert.ok(pts[0]![1]! < pts[49]![1]!, `${name} falls (y grows downward)`);
  }
  assert.ok(!svg.includes('data-series="lr"'), 'only loss-like metrics by default');
  assert.ok(!/NaN|Infinity/.test(svg));
});

test('series choice, log scale, gaps and downsampling', () => {
  assert.deepEqual(defaultSeries(records), ['loss', 'ce', 'mse']);
  const withBad: MetricsRecord[] = [...records, { step: 51, loss: NaN }, { step: 52, loss: 0 }];
  const log = renderLossPlot(withBad, { series: ['loss'], logY: true });
  assertWellFormed(log);
  assert.ok(!/NaN|Infinity/.test(log));
  const pts = /points="([^"]+)"/.exec(log)![1]!.split(' ');
  assert.equal(pts.length, 50, 'NaN and (on a log axis) zero are left out');
  const many = Array.from({ length: 5000 }, (_, i) => ({ step: i, loss: Math.sin(i) + 2 }));
  const down = /points="([^"]+)"/.exec(renderLossPlot(many, { maxPoints: 200 }))![1]!.split(' ');
  assert.equal(down.length, 200);
  const empty = renderLossPlot([]);
  assertWellFormed(empty);
  assert.match(empty, /no data yet/);
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 47, 5), [10, 20, 30, 40]);
});

test('writeLossPlot reads metrics.jsonl and writes the SVG', async () => {
  await withTempDir((dir) => {
    const metrics = join(dir, 'metrics.jsonl');
    writeFileSync(metrics, records.map((r) => JSON.stringify(r)).join('\n') + '\n{"step": 51, "lo');
    writeLossPlot(metrics, join(dir, 'loss.svg'));
    const svg = readFileSync(join(dir, 'loss.svg'), 'utf8');
    assertWellFormed(svg);
    assert.match(svg, /data-series="ce"/);
  });
});

test('a band of +- se around a series: one polygon whose edges the line bisects, heights in the ratio of the errors', () => {
  // Steps 0, 1, 2 with values 1, 2, 1.5 and errors 0.5, 0.25, 0 (step 3 has no error: left out).
  const recs: MetricsRecord[] = [
    { step: 0, eval_reward: 1, eval_reward_se: 0.5 }, { step: 1, eval_reward: 2, eval_reward_se: 0.25 },
    { step: 2, eval_reward: 1.5, eval_reward_se: 0 }, { step: 3, eval_reward: 1.7 },
  ];
  const svg = renderLossPlot(recs, { series: ['eval_reward'], band: { series: 'eval_reward', se: 'eval_reward_se' } });
  assertWellFormed(svg);
  const polygons = [...svg.matchAll(/<polygon class="band"[^>]* points="([^"]+)"/g)].map((m) => m[1]!);
  assert.equal(polygons.length, 1);
  const pts = polygons[0]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
  assert.equal(pts.length, 6, 'three steps up, three back');
  const upper = pts.slice(0, 3);
  const lower = pts.slice(3).reverse();
  const line = svg.match(/<polyline class="series" data-series="eval_reward"[^>]* points="([^"]+)"/)![1]!.split(' ').map((p) => p.split(',').map(Number));
  for (let i = 0; i < 3; i++) {
    assert.equal(upper[i]![0], line[i]![0]);
    assert.equal(lower[i]![0], line[i]![0]);
    assert.ok(Math.abs((upper[i]![1] + lower[i]![1]) / 2 - line[i]![1]!) <= 0.01, `step ${i}: the line is midway`);
  }
  const height = (i: number): number => lower[i]![1] - upper[i]![1];
  assert.ok(Math.abs(height(1) / height(0) - 0.5) < 1e-3, `${height(1)} / ${height(0)}`);
  assert.equal(height(2), 0);
  // The band widens the frame: its top (value 1.5 at step 0) is inside the plot.
  assert.ok(upper[0]![1] >= 32, 'inside the top margin');
});

test("the x axis label is 'step' unless xLabel names another", () => {
  const recs: MetricsRecord[] = [{ step: 0, loss: 1 }, { step: 1, loss: 0.5 }];
  assert.match(renderLossPlot(recs), />step<\/text>/);
  const svg = renderLossPlot(recs, { xLabel: 'epoch <0 & 1>' });
  assertWellFormed(svg);
  assert.match(svg, />epoch &lt;0 &amp; 1&gt;<\/text>/);
  assert.doesNotMatch(svg, />step<\/text>/);
});

test('a band on a logarithmic axis is refused by name (its lower edge can be <= 0)', () => {
  const recs: MetricsRecord[] = [{ step: 0, r: 1, se: 2 }, { step: 1, r: 2, se: 0.1 }];
  assert.throws(() => renderLossPlot(recs, { series: ['r'], band: { series: 'r', se: 'se' }, logY: true }), /logY and band/);
});
