// Regression: a kept tensor that is disposed explicitly must leave the finalizer, or garbage
// collection of its wrapper later frees whatever tensor has reused its native id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as torch from '../../src/torch/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('disposing a kept tensor unregisters it from the finalizer (a reused id survives GC)', async () => {
  let a: torch.Tensor | null = torch.ones([3]).keep();
  await new Promise((r) => setTimeout(r, 5));
  a.dispose();
  const b = torch.zeros([5]).keep();
  a = null;
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(b.shape, [5]);
  assert.equal(b.sum().item(), 0);
  b.dispose();
});
