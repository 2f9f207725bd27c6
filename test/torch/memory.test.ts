// Deterministic memory: dispose, `using`, scopes, and a long training loop with no leak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { ops } from '../../src/torch/index.js';

test('dispose frees the native bytes at once', () => {
  const start = torch.memory();
  const t = torch.zeros([1000]);
  assert.deepEqual(torch.memory(), { tensors: start.tensors + 1, bytes: start.bytes + 4000 });
  const view = t.view([10, 100]); // a view shares the storage: its bytes count once
  assert.deepEqual(torch.memory(), { tensors: start.tensors + 2, bytes: start.bytes + 4000 });
  t.dispose();
  assert.equal(torch.memory().bytes, start.bytes + 4000); // the view keeps the storage alive
  view.dispose();
  assert.deepEqual(torch.memory(), start);
});

test('using disposes at the end of the block', () => {
  const start = torch.memory().tensors;
  {
    using a = torch.ones([3]);
    using b = a.mul(2);
    assert.equal(b.sum().keep().item(), 6);
  }
  // the kept sum is the only survivor
  assert.equal(torch.memory().tensors, start + 1);
});

test('scope frees intermediates and keeps what it returns, in nested structures', () => {
  const start = torch.memory().tensors;
  const out = torch.scope(() => {
    const a = torch.ones([4]);
    const b = a.mul(3);
    const c = b.add(1);
    return { c, list: [b], n: 5 };
  });
  assert.equal(torch.memory().tensors, start + 2);
  assert.deepEqual(out.c.toArray(), [4, 4, 4, 4]);
  out.c.dispose();
  out.list[0]!.dispose();
  assert.equal(torch.memory().tensors, start);
});

test('nested scopes hand returned tensors to the parent; errors still free', () => {
  const start = torch.memory().tensors;
  torch.scope(() => {
    const inner = torch.scope(() => torch.ones([2]).add(1));
    assert.equal(torch.memory().tensors, start + 1);
    assert.deepEqual(inner.toArray(), [2, 2]);
  });
  assert.equal(torch.memory().tensors, start);
  assert.throws(() => torch.scope(() => {
    torch.ones([2]);
    throw new Error('boom');
  }), /boom/);
  assert.equal(torch.memory().tensors, start);
  assert.throws(() => torch.scope(() => Promise.resolve(1) as unknown as number), /must be synchronous/);
});

test('keep() lets a tensor outlive its scope', () => {
  const start = torch.memory().tensors;
  let kept!: torch.Tensor;
  torch.scope(() => {
    kept = torch.ones([2]).keep();
  });
  assert.equal(kept.isDisposed, false);
  kept.dispose();
  assert.equal(torch.memory().tensors, start);
});

test('10,000 small training steps end at the starting tensor count', () => {
  torch.manualSeed(0);
  const w = torch.randn([8, 4]).mul_(0.1).requiresGrad_().keep();
  const b = torch.zeros([4], { requiresGrad: true }).keep();
  const x = torch.randn([16, 8]).keep();
  const y = torch.randn([16, 4]).keep();
  const start = torch.memory();
  let first = 0;
  let last = 0;
  for (let step = 0; step < 10000; step++) {
    const loss = torch.scope(() => {
      const l = ops.mse_loss(x.matmul(w).add(b), y);
      l.backward();
      torch.noGrad(() => {
        for (const p of [w, b]) {
          const g = p.grad!;
          p.sub_(g, 0.05);
          p.grad = null;
        }
      });
      return l.item();
    });
    if (step === 0) first = loss;
    last = loss;
  }
  assert.deepEqual(torch.memory(), start);
  assert.ok(last < first * 0.9, `loss fell from ${first} to ${last}`);
  for (const t of [w, b, x, y]) t.dispose();
});
