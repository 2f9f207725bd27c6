// The progress line, driven by a fake clock into a fake stream: exact text in line mode and on a
// terminal, rates and ETA, and no exceptions from a broken or missing stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressBar, formatDuration, formatLoss, formatRate, type ProgressStream } from '../../src/train/index.js';

function fakeStream(isTTY: boolean, columns?: number): ProgressStream & { out: string[] } {
  const out: string[] = [];
  return { out, isTTY, ...(columns ? { columns } : {}), write: (s: string) => out.push(s) };
}

function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('the formatters', () => {
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(61.4), '1:01');
  assert.equal(formatDuration(3723), '1:02:03');
  assert.equal(formatDuration(NaN), '?');
  assert.equal(formatRate(950), '950');
  assert.equal(formatRate(12.34), '12.3');
  assert.equal(formatRate(1234), '1.23k');
  assert.equal(formatRate(4.56e7), '45.60M');
  assert.equal(formatLoss(2.345678), '2.346');
  assert.equal(formatLoss(0.0001234), '1.234e-4');
  assert.equal(formatLoss(NaN), 'NaN');
});

test('off a terminal it prints a full line every intervalMs, then a final line', () => {
  const s = fakeStream(false);
  const c = fakeClock();
  const bar = new ProgressBar({ total: 100, stream: s, now: c.now, intervalMs: 10_000, barWidth: 10, label: 'sft' });
  for (let step = 1; step <= 30; step++) {
    c.advance(1000); // one step per second, 500 tokens per step
    bar.update(step, { loss: 3 - step / 100, tokens: 500 });
  }
  assert.deepEqual(s.out, [
    'sft step 1/100 [----------]   1% loss 2.990 500 tok/s elapsed 0:01 ETA 1:39\n',
    'sft step 11/100 [#---------]  11% loss 2.890 500 tok/s elapsed 0:11 ETA 1:29\n',
    'sft step 21/100 [##--------]  21% loss 2.790 500 tok/s elapsed 0:21 ETA 1:19\n',
  ]);
  bar.finish();
  assert.equal(s.out.length, 4);
  assert.equal(s.out[3], 'sft step 30/100 [###-------]  30% loss 2.700 500 tok/s elapsed 0:30 ETA 1:10\n');
  bar.update(31, { loss: 1 });
  assert.equal(s.out.length, 4, 'updates after finish are ignored');
});

test('on a terminal it redraws one line in place, throttled, and log() prints above it', () => {
  const s = fakeStream(true);
  const c = fakeClock();
  const bar = new ProgressBar({ total: 4, stream: s, now: c.now, redrawMs: 100, barWidth: 4 });
  c.advance(50);
  bar.update(1, { loss: 1.5, tokens: 100 });
  c.advance(50);
  bar.update(2, { loss: 1.25, tokens: 100 }); // within redrawMs of the last draw: not drawn
  assert.equal(s.out.length, 1);
  assert.equal(s.out[0], '\rstep 1/4 [#---]  25% loss 1.500 2.00k tok/s elapsed 0:00 ETA 0:00\x1b[K');
  bar.log('saved checkpoint step-2');
  assert.equal(s.out[1], '\r\x1b[Ksaved checkpoint step-2\nstep 1/4 [#---]  25% loss 1.500 2.00k tok/s elapsed 0:00 ETA 0:00');
  c.advance(200);
  bar.update(4, { loss: 1, tokens: 100 }); // the last step is always drawn
  assert.equal(s.out[2], '\rstep 4/4 [####] 100% loss 1.000 1.00k tok/s elapsed 0:00 done\x1b[K');
  bar.finish();
  assert.ok(s.out[3]!.endsWith('\n'), 'finish ends the line');
});

test('ETA and tokens/s follow the recent pace, and a resumed run counts only its own steps', () => {
  const c = fakeClock();
  const bar = new ProgressBar({ total: 1000, start: 900, stream: null, now: c.now, window: 5 });
  assert.ok(Number.isNaN(bar.etaSeconds()));
  for (let step = 901; step <= 910; step++) {
    c.advance(step <= 905 ? 1000 : 2000); // the pace halves
    bar.update(step, { tokens: 100 });
  }
  assert.equal(bar.etaSeconds(), 90 * 2);
  assert.equal(bar.tokensPerSecond(), 50);
  assert.match(bar.render(), /^step 910\/1000 .* 91% /);
});

test('a terminal line is cut to the window width', () => {
  const s = fakeStream(true, 30);
  const bar = new ProgressBar({ total: 10, stream: s, now: () => 0 });
  bar.update(10, { loss: 1 });
  assert.equal(s.out[0], '\r' + 'step 10/10 [####################]'.slice(0, 29) + '\x1b[K');
});

test('a stream that throws, no stream, or no isTTY never throws', () => {
  const broken: ProgressStream = { write: () => { throw new Error('EPIPE'); } };
  const bar = new ProgressBar({ total: 3, stream: broken, intervalMs: 0 });
  bar.update(1, { loss: 1 });
  bar.log('x');
  bar.finish();
  const none = new ProgressBar({ total: 3, stream: null });
  none.update(3);
  none.finish();
  const weird = { write: () => true, get isTTY(): boolean { throw new Error('no tty'); } };
  new ProgressBar({ total: 1, stream: weird }).update(1);
});
