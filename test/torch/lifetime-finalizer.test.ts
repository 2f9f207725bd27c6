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

test('gradients a checkpoint recompute hands to the native node are not freed again by GC', async () => {
  // The recompute returns its inputs' gradients to native code, which releases those handles;
  // their wrappers must not stay with the finalizer, or collecting them frees reused ids.
  torch.manualSeed(3);
  const w = torch.randn([4, 4]).requiresGrad_(true).keep();
  const x = torch.randn([2, 4]).requiresGrad_(true).keep();
  for (let round = 0; round < 3; round++) {
    const y = torch.checkpoint((inputs) => inputs[0]!.matmul(w).tanh(), [x]) as torch.Tensor;
    y.sum().backward();
  }
  // Fresh tensors now take the ids the native side released; GC must leave them alone.
  const survivors = Array.from({ length: 16 }, (_, i) => torch.full([i + 1], 2).keep());
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  survivors.forEach((t, i) => {
    assert.deepEqual(t.shape, [i + 1]);
    assert.equal(t.sum().item(), 2 * (i + 1));
  });
  assert.ok(x.grad !== null && w.grad !== null);
});
