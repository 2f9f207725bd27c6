// The request queue in front of the engine (src/serve/engine.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueFullError, RequestQueue, type Lease } from '../../src/serve/index.js';

const never = () => new AbortController().signal;

test('runs up to `concurrency`, queues up to `capacity`, refuses the next with 429', async () => {
  const q = new RequestQueue(2, 1);
  const first = await q.acquire(never());
  const waiting = [q.acquire(never()), q.acquire(never())];
  assert.deepEqual(q.stats, { running: 1, waiting: 2, capacity: 2, concurrency: 1 });
  await assert.rejects(q.acquire(never()), (e: unknown) => e instanceof QueueFullError && e.status === 429 && e.type === 'rate_limit_error');
  first.release();
  const second = await waiting[0]!;
  assert.deepEqual(q.stats, { running: 1, waiting: 1, capacity: 2, concurrency: 1 });
  second.release();
  second.release(); // releasing twice frees one slot only
  (await waiting[1]!).release();
  assert.deepEqual(q.stats, { running: 0, waiting: 0, capacity: 2, concurrency: 1 });
});

test('serves waiters in arrival order', async () => {
  const q = new RequestQueue(10, 1);
  const order: number[] = [];
  const first = await q.acquire(never());
  const all = [1, 2, 3].map((i) =>
    q.acquire(never()).then((l: Lease) => {
      order.push(i);
      l.release();
    }),
  );
  first.release();
  await Promise.all(all);
  assert.deepEqual(order, [1, 2, 3]);
});

test('a waiter whose signal aborts leaves the queue and never runs', async () => {
  const q = new RequestQueue(4, 1);
  const first = await q.acquire(never());
  const ac = new AbortController();
  const gone = q.acquire(ac.signal);
  const next = q.acquire(never());
  ac.abort(new Error('client left'));
  await assert.rejects(gone, /client left/);
  assert.equal(q.stats.waiting, 1);
  first.release();
  (await next).release();
  assert.deepEqual([q.stats.running, q.stats.waiting], [0, 0]);
  await assert.rejects(q.acquire(ac.signal), /client left/, 'an already aborted signal is refused at once');
});

test('run releases its slot whether the work succeeds or fails', async () => {
  const q = new RequestQueue(0, 1);
  await assert.rejects(q.run(never(), async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await q.run(never(), async () => 7), 7);
  assert.equal(q.stats.running, 0);
});
