// Process groups and the launcher: 2-process collectives on 127.0.0.1 with exact results, a
// dying or idle peer makes the survivor fail with an error within its timeout (never hang),
// environment and argument validation. Workers: fixtures/dist-worker.ts, started by launch().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ProcessGroup,
  readDistEnv,
  launch,
  freePort,
  tensor,
  type LaunchOptions,
  type LaunchResult,
} from '../../src/torch/index.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'dist-worker.js');

interface Captured {
  result: LaunchResult;
  lines: { rank: number; stream: 'stdout' | 'stderr'; line: string }[];
  ms: number;
}

/** Runs the worker on 2 ranks; every run is bounded: an abort kills the ranks after limitMs. */
async function run2(
  args: string[],
  extra: Partial<LaunchOptions> = {},
  limitMs = 25_000,
  timeoutMs = 10_000,
): Promise<Captured> {
  const lines: Captured['lines'] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), limitMs);
  const t0 = Date.now();
  try {
    const result = await launch({
      nproc: 2,
      script: WORKER,
      args,
      env: { UC_TEST_TIMEOUT_MS: String(timeoutMs) },
      onLine: (rank, stream, line) => lines.push({ rank, stream, line }),
      signal: ac.signal,
      ...extra,
    });
    return { result, lines, ms: Date.now() - t0 };
  } finally {
    clearTimeout(timer);
    ac.abort(); // the launch has settled by now; this is a no-op unless something threw
  }
}

function resultOf(c: Captured, rank: number): any {
  const l = c.lines.find((x) => x.rank === rank && x.line.startsWith('RESULT '));
  assert.ok(l, `rank ${rank} printed no RESULT; output:\n${dump(c)}`);
  return JSON.parse(l.line.slice('RESULT '.length));
}

function dump(c: Captured): string {
  return c.lines.map((l) => `[rank ${l.rank}:${l.stream}] ${l.line}`).join('\n');
}

test('2-process collectives on 127.0.0.1 give exact results', { timeout: 60_000 }, async () => {
  const c = await run2(['collectives']);
  assert.equal(c.result.ok, true, dump(c));
  assert.deepEqual(c.result.exitCodes, [0, 0]);
  assert.equal(c.result.failedRank, null);
  for (const rank of [0, 1]) {
    const r = resultOf(c, rank);
    assert.equal(r.rank, rank);
    assert.equal(r.worldSize, 2);
    assert.equal(r.localRank, rank);
    assert.deepEqual(r.sum, [3, 30, -1, 1]);
    assert.deepEqual(r.avg, [0.5, 2, 0.375]);
    assert.deepEqual(r.max, [1, 5, 0]);
    assert.deepEqual(r.min, [0, 4, -7]);
    assert.deepEqual(r.product, [6, 2]);
    assert.deepEqual(r.multi, [[[1, 2], [4, 3]], [201], true]);
    assert.deepEqual(r.broadcast, [11, 12, 13]); // rank 1's values everywhere
    assert.deepEqual(r.allGather, [[[0, 1]], [[10, 11]]]); // in rank order
    assert.equal(r.barrier, true);
  }
});

for (const dying of [1, 0]) {
  test(`a peer that dies (rank ${dying}${dying === 0 ? ', the store host' : ''}) makes the survivor's collective fail, not hang`, { timeout: 60_000 }, async () => {
    const survivor = 1 - dying;
    const c = await run2(['die', String(dying)], { graceMs: 15_000 }, 30_000, 3000);
    assert.equal(c.result.aborted, false, dump(c));
    assert.equal(c.result.ok, false);
    assert.equal(c.result.exitCodes[dying], 7, dump(c));
    // The survivor exited on its own (not killed after the grace period) with the error.
    assert.equal(c.result.exitCodes[survivor], 2, dump(c));
    assert.equal(c.result.ranks[survivor]!.killed, false);
    assert.equal(c.result.failedRank, dying);
    assert.match(c.result.error ?? '', new RegExp(`rank ${dying} failed \\(exit code 7\\)`));
    const failed = c.lines.find((l) => l.rank === survivor && l.line.startsWith('COLLECTIVE_FAILED '));
    assert.ok(failed, dump(c));
    const [, ms, kind] = failed.line.split(' ');
    assert.equal(kind, 'Error:');
    assert.match(failed.line, /allReduce\(\) failed on rank \d of 2/);
    assert.ok(Number(ms) < 5000, `the collective took ${ms} ms to fail`);
    assert.ok(c.ms < 20_000, `the whole run took ${c.ms} ms`);
  });
}

test('a peer that stays alive but skips a collective makes the other time out (timeoutMs)', { timeout: 60_000 }, async () => {
  const c = await run2(['hang', '1'], { graceMs: 200, killAfterMs: 2000 }, 30_000, 3000);
  assert.equal(c.result.aborted, false, dump(c));
  assert.equal(c.result.exitCodes[0], 2, dump(c));
  assert.equal(c.result.failedRank, 0);
  // The idle rank was terminated by the launcher after the grace period.
  assert.equal(c.result.ranks[1]!.killed, true);
  assert.equal(c.result.ranks[1]!.signal, 'SIGTERM');
  const failed = c.lines.find((l) => l.rank === 0 && l.line.startsWith('COLLECTIVE_FAILED '));
  assert.ok(failed, dump(c));
  const ms = Number(failed.line.split(' ')[1]);
  assert.ok(ms >= 2500 && ms < 10_000, `timed out after ${ms} ms (timeoutMs 3000)`);
  assert.match(failed.line, /[Tt]imed out/);
  assert.ok(c.ms < 20_000, `the whole run took ${c.ms} ms`);
});

test('launch: environment, [rank i] prefixes, extra env', { timeout: 30_000 }, async () => {
  const port = await freePort();
  const got: string[] = [];
  const c = await run2(['env'], {
    masterPort: port,
    env: { UC_EXTRA: 'x', RANK: 'overridden-by-launcher' },
    onLine: (rank, stream, line) => got.push(`${stream} [rank ${rank}] ${line}`),
  });
  assert.equal(c.result.ok, true);
  assert.equal(c.result.masterPort, port);
  for (const rank of [0, 1]) {
    const line = got.find((l) => l.startsWith(`stdout [rank ${rank}] RESULT `))!;
    assert.ok(line, got.join('\n'));
    assert.deepEqual(JSON.parse(line.slice(`stdout [rank ${rank}] RESULT `.length)), {
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: '2',
      LOCAL_WORLD_SIZE: '2',
      UC_EXTRA: 'x',
    });
    for (const l of ['stdout FIRST first line', 'stdout FIRST second line', 'stdout FIRST no newline at end', 'stderr FIRST to stderr']) {
      assert.ok(got.includes(l.replace('FIRST', `[rank ${rank}]`)), got.join('\n'));
    }
  }
});

test('launch: a failing rank is reported and the others are killed after the grace period', { timeout: 30_000 }, async () => {
  const c = await run2(['fail', '1'], { graceMs: 300, killAfterMs: 2000 });
  assert.equal(c.result.ok, false);
  assert.equal(c.result.aborted, false);
  assert.equal(c.result.failedRank, 1);
  assert.equal(c.result.error, 'rank 1 failed (exit code 5)');
  assert.equal(c.result.exitCodes[1], 5);
  assert.equal(c.result.exitCodes[0], null);
  assert.equal(c.result.ranks[0]!.killed, true);
  assert.equal(c.result.ranks[0]!.signal, 'SIGTERM');
  assert.ok(c.lines.some((l) => l.rank === 1 && l.stream === 'stderr' && l.line === 'failing on purpose'));
  assert.ok(c.ms < 10_000);
});

test('launch: an abort signal terminates every rank', { timeout: 30_000 }, async () => {
  const ac = new AbortController();
  const p = launch({ nproc: 2, script: WORKER, args: ['fail', '9'], onLine: () => {}, signal: ac.signal, killAfterMs: 1000 });
  setTimeout(() => ac.abort(), 500);
  const r = await p;
  assert.equal(r.aborted, true);
  assert.equal(r.ok, false);
  assert.equal(r.failedRank, null);
  assert.ok(r.ranks.every((x) => x.killed));
});

test('launch validates its options', async () => {
  await assert.rejects(launch({ nproc: 0, script: WORKER }), { name: 'TypeError', message: /nproc/ });
  await assert.rejects(launch({ nproc: 1.5, script: WORKER }), { name: 'TypeError', message: /nproc/ });
  await assert.rejects(launch({ nproc: 1, script: '' }), { name: 'TypeError', message: /script/ });
  await assert.rejects(launch({ nproc: 1, script: WORKER, args: [1 as unknown as string] }), { name: 'TypeError', message: /args/ });
  await assert.rejects(launch({ nproc: 1, script: WORKER, masterPort: 70000 }), { name: 'TypeError', message: /masterPort/ });
  await assert.rejects(launch({ nproc: 1, script: WORKER, graceMs: -1 }), { name: 'TypeError', message: /graceMs/ });
});

const GOOD = { MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500', RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '1' };

test('readDistEnv reads torchrun variables', () => {
  assert.deepEqual(readDistEnv(GOOD), { masterAddr: '127.0.0.1', masterPort: 29500, rank: 1, worldSize: 2, localRank: 1 });
});

test('environment validation names the variable', () => {
  const cases: [Record<string, string | undefined>, RegExp][] = [
    [{ ...GOOD, MASTER_ADDR: undefined }, /MASTER_ADDR is not set/],
    [{ ...GOOD, MASTER_ADDR: '  ' }, /MASTER_ADDR is not set/],
    [{ ...GOOD, MASTER_PORT: undefined }, /MASTER_PORT is not set/],
    [{ ...GOOD, MASTER_PORT: 'abc' }, /MASTER_PORT="abc" is invalid/],
    [{ ...GOOD, MASTER_PORT: '0' }, /MASTER_PORT="0" is invalid/],
    [{ ...GOOD, MASTER_PORT: '70000' }, /MASTER_PORT="70000" is invalid/],
    [{ ...GOOD, MASTER_PORT: '29500.5' }, /MASTER_PORT="29500.5" is invalid/],
    [{ ...GOOD, WORLD_SIZE: undefined }, /WORLD_SIZE is not set/],
    [{ ...GOOD, WORLD_SIZE: '0' }, /WORLD_SIZE="0" is invalid/],
    [{ ...GOOD, RANK: undefined }, /RANK is not set/],
    [{ ...GOOD, RANK: '-1' }, /RANK="-1" is invalid/],
    [{ ...GOOD, RANK: '2' }, /RANK="2" is invalid \(expected an integer in \[0, WORLD_SIZE=2\)\)/],
    [{ ...GOOD, LOCAL_RANK: undefined }, /LOCAL_RANK is not set/],
    [{ ...GOOD, LOCAL_RANK: 'one' }, /LOCAL_RANK="one" is invalid/],
  ];
  for (const [env, re] of cases) {
    assert.throws(() => readDistEnv(env), re);
    // fromEnv validates before touching the network.
    assert.throws(() => ProcessGroup.fromEnv({ env, timeoutMs: 1000 }), re);
  }
  assert.throws(() => ProcessGroup.fromEnv({ env: GOOD, backend: 'mpi' as 'gloo' }), { name: 'TypeError', message: /backend/ });
  assert.throws(() => ProcessGroup.fromEnv({ env: GOOD, timeoutMs: 0 }), { name: 'TypeError', message: /timeoutMs/ });
});

test('ProcessGroup.create validates its options', () => {
  const ok = { host: '127.0.0.1', port: 29500, rank: 0, worldSize: 2 };
  const bad: [object, RegExp][] = [
    [{ ...ok, host: '' }, /host/],
    [{ ...ok, port: 0 }, /port/],
    [{ ...ok, port: '29500' }, /port/],
    [{ ...ok, worldSize: 0 }, /worldSize/],
    [{ ...ok, rank: 2 }, /rank/],
    [{ ...ok, rank: -1 }, /rank/],
    [{ ...ok, localRank: -1 }, /localRank/],
    [{ ...ok, backend: 'mpi' }, /backend/],
    [{ ...ok, timeoutMs: -5 }, /timeoutMs/],
  ];
  for (const [o, re] of bad) assert.throws(() => ProcessGroup.create(o as never), { name: 'TypeError', message: re });
});

test('a rendezvous nobody joins fails with an Error after timeoutMs', async () => {
  const port = await freePort();
  const t0 = Date.now();
  // Rank 1 of 2 with no rank 0 hosting the store: the connection attempt times out.
  assert.throws(
    () => ProcessGroup.create({ host: '127.0.0.1', port, rank: 1, worldSize: 2, timeoutMs: 1500 }),
    (e: Error) => e.constructor === Error && /rank 1 of 2 could not join the gloo group at 127\.0\.0\.1:\d+/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 10_000);
});

test('a 1-process group: methods, argument validation, destroy', async () => {
  const port = await freePort();
  const pg = ProcessGroup.create({ host: '127.0.0.1', port, rank: 0, worldSize: 1, timeoutMs: 5000 });
  try {
    assert.equal(pg.rank, 0);
    assert.equal(pg.worldSize, 1);
    assert.equal(pg.localRank, 0);
    assert.equal(pg.backend, 'gloo');
    const x = tensor([1, 2, 3], { dtype: 'float32' });
    assert.equal(pg.allReduce(x, 'avg'), x);
    assert.deepEqual(x.toArray(), [1, 2, 3]);
    const g = pg.allGather(x);
    assert.equal(g.length, 1);
    assert.deepEqual(g[0]!.toArray(), [1, 2, 3]);
    pg.broadcast([x], 0);
    pg.barrier();

    assert.throws(() => pg.allReduce(x, 'mean' as 'sum'), { name: 'TypeError', message: /op must be one of/ });
    assert.throws(() => pg.allReduce([x, 3 as never]), { name: 'TypeError', message: /tensors\[1\] must be a Tensor/ });
    assert.throws(() => pg.allReduce({} as never), { name: 'TypeError', message: /tensors must be a Tensor/ });
    const i = tensor([1, 2], { dtype: 'int64' });
    assert.throws(() => pg.allReduce(i, 'avg'), { name: 'TypeError', message: /'avg' needs floating tensors; tensors is int64/ });
    assert.deepEqual(i.toArray(), [1, 2]); // untouched
    assert.throws(() => pg.broadcast(x, 1), { name: 'TypeError', message: /root must be an integer in \[0, worldSize=1\)/ });
    assert.throws(() => pg.broadcast(x, 0.5), { name: 'TypeError', message: /root/ });
    assert.throws(() => pg.allGather([x] as never), { name: 'TypeError', message: /tensor must be a Tensor/ });
    const d = tensor([1]);
    d.dispose();
    assert.throws(() => pg.allReduce(d), { name: 'TypeError', message: /disposed/ });
  } finally {
    pg.destroy();
  }
  pg.destroy();
  assert.equal(pg.isAlive, false);
  assert.throws(() => pg.barrier(), /destroyed/);
  assert.throws(() => pg.allReduce(tensor([1.5])), /destroyed/);
});
