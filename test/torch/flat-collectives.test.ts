// Flat-buffer collectives for sharded data parallel (docs/sharding.md section 2) on Gloo over
// 127.0.0.1 with 4 processes: reduceScatter sums each chunk in rank order (checked against the
// float32 sum computed here in that order, with values whose sum depends on the order), the
// accumulating form adds onto what is there, allGatherInto places every rank's shard (sync and
// async), resizeStorage frees and regrows a view's memory, and a rank that dies makes the
// others' reduceScatter fail with an error within the timeout instead of hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, type LaunchResult } from '../../src/torch/index.js';
import { contribution } from './fixtures/flat-worker.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'flat-worker.js');
const W = 4;
const S = 5;

async function run(args: string[], timeoutMs: number, graceMs = 5000): Promise<{ result: LaunchResult; lines: { rank: number; line: string }[]; ms: number }> {
  const lines: { rank: number; line: string }[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 40_000);
  const t0 = Date.now();
  try {
    const result = await launch({
      nproc: W, script: WORKER, args, env: { UC_TEST_TIMEOUT_MS: String(timeoutMs), OMP_NUM_THREADS: '1' }, graceMs,
      onLine: (rank, _s, line) => lines.push({ rank, line }), signal: ac.signal,
    });
    return { result, lines, ms: Date.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

test('4 ranks: reduceScatter in rank order, allGatherInto, resizeStorage', { timeout: 60_000 }, async () => {
  const { result, lines } = await run(['flat'], 10_000);
  const dump = lines.map((l) => `[${l.rank}] ${l.line}`).join('\n');
  assert.ok(result.ok, dump);
  let orderMattered = false;
  for (let rank = 0; rank < W; rank++) {
    const l = lines.find((x) => x.rank === rank && x.line.startsWith('RESULT '));
    assert.ok(l, dump);
    const r = JSON.parse(l.line.slice(7));
    const expected: number[] = [];
    const twice: number[] = [];
    for (let i = 0; i < S; i++) {
      let acc = Math.fround(contribution(0, rank, i));
      for (let q = 1; q < W; q++) acc = Math.fround(acc + Math.fround(contribution(q, rank, i)));
      expected.push(acc);
      let acc2 = acc;
      for (let q = 0; q < W; q++) acc2 = Math.fround(acc2 + Math.fround(contribution(q, rank, i)));
      twice.push(acc2);
      let reversed = Math.fround(contribution(W - 1, rank, i));
      for (let q = W - 2; q >= 0; q--) reversed = Math.fround(reversed + Math.fround(contribution(q, rank, i)));
      if (reversed !== acc) orderMattered = true;
    }
    assert.deepEqual(r.reduced, expected, `rank ${rank}: reduceScatter`);
    assert.deepEqual(r.accumulated, twice, `rank ${rank}: accumulate`);
    const gathered = Array.from({ length: W * S }, (_, k) => 100 * Math.floor(k / S) + (k % S));
    assert.deepEqual(r.gathered, gathered);
    assert.deepEqual(r.gatheredAsync, gathered.map((v) => 2 * v));
    assert.equal(r.busy, 64 * 64 * 64);
    assert.deepEqual([r.before, r.freed], [W * S * 4, 0]);
    assert.deepEqual(r.regrown, [W * S * 4, 100, 101, 102, 103, 104]); // rank 1's shard in the view
    assert.match(r.badShape, /reduceScatter\(\): input has 20 elements; expected worldSize 4 x output's 6/);
  }
  assert.ok(orderMattered, 'the test values must make the order of the sum visible');
});

test('a rank that dies makes the others\' reduceScatter fail within the timeout', { timeout: 60_000 }, async () => {
  const { result, lines, ms } = await run(['die', '2'], 3000, 15_000);
  const dump = lines.map((l) => `[${l.rank}] ${l.line}`).join('\n');
  assert.equal(result.exitCodes[2], 7, dump);
  for (const rank of [0, 1, 3]) {
    assert.equal(result.exitCodes[rank], 2, `rank ${rank} exits on its own with the error\n${dump}`);
    const f = lines.find((l) => l.rank === rank && l.line.startsWith('COLLECTIVE_FAILED '));
    assert.ok(f, dump);
    assert.match(f.line, /distributed: (reduceScatter|allGatherInto)\(\) failed on rank \d of 4/);
    assert.ok(Number(f.line.split(' ')[1]) < 8000, f.line);
  }
  assert.ok(ms < 25_000, `the run took ${ms} ms`);
});
