// Sharded data parallel SFT on 4 processes (docs/sharding.md 1-4; the body is in
// fixtures/shard-matrix.ts): the weights of one process, per-rank memory as 1/N.
import { test } from 'node:test';
import { shardMatrix } from './fixtures/shard-matrix.js';

test('4 processes x shard none, grad, full end with the weights of one process; memory shrinks as 1/N', { timeout: 300_000 }, async () => {
  await shardMatrix([4]);
});
