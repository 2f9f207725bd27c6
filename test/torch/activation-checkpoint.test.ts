// Activation checkpointing (docs/precision.md section 3): a piece run without a graph and
// recomputed in backward gives the gradients of running it directly, bit for bit, for its inputs
// and for the parameters inside it, with dropout replayed from the saved generator state; nodes
// are released with their graph, and an error in the recompute reaches the caller of backward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { ops, type Tensor } from '../../src/torch/index.js';

/** Leaves w1 [8, 6], w2 [6, 8] and an input x [5, 8] from a seed. */
function leaves(seed: number): { w1: Tensor; w2: Tensor; x: Tensor } {
  torch.manualSeed(seed);
  return {
    w1: torch.randn([8, 6]).requiresGrad_(true).keep(),
    w2: torch.randn([6, 8]).requiresGrad_(true).keep(),
    x: torch.randn([5, 8]).requiresGrad_(true).keep(),
  };
}

/** A residual block with a norm, a GELU and optional dropout: y = h + drop(gelu(norm(h) w1)) w2. */
function block(h: Tensor, w1: Tensor, w2: Tensor, p: number): Tensor {
  return torch.scope(() => {
    const n = ops.layer_norm(h, [8], null, null, 1e-5);
    const a = ops.gelu(n.matmul(w1), 'none');
    const d = p > 0 ? ops.dropout(a, p, true) : a;
    return h.add(d.matmul(w2));
  });
}

function gradsOf(run: (x: Tensor, w1: Tensor, w2: Tensor) => Tensor, seed: number): Float32Array[] {
  const { w1, w2, x } = leaves(seed);
  torch.manualSeed(seed + 100);
  torch.scope(() => run(x, w1, w2).pow(2).sum().backward());
  const out = [x, w1, w2].map((t) => torch.scope(() => t.grad!.dataSync() as Float32Array));
  for (const t of [x, w1, w2]) t.dispose();
  return out;
}

const plain = (p: number) => (x: Tensor, w1: Tensor, w2: Tensor): Tensor => block(block(x, w1, w2, p), w1, w2, p);
const checkpointed = (p: number) => (x: Tensor, w1: Tensor, w2: Tensor): Tensor => {
  const one = (h: Tensor): Tensor => torch.checkpoint((t) => block(t[0]!, w1, w2, p), [h], { hasTrainableParameters: true }) as Tensor;
  return one(one(x));
};

test('checkpointed gradients equal the plain ones bit for bit (inputs and parameters inside)', () => {
  const a = gradsOf(plain(0), 1);
  const b = gradsOf(checkpointed(0), 1);
  a.forEach((g, i) => assert.deepEqual(b[i], g, `gradient ${i}`));
  assert.equal(torch.liveCheckpoints(), 0, 'the nodes went with their graph');
});

test('dropout inside a checkpoint replays the same mask (the generator state is saved and restored)', () => {
  const a = gradsOf(plain(0.3), 2);
  const b = gradsOf(checkpointed(0.3), 2);
  a.forEach((g, i) => assert.deepEqual(b[i], g, `gradient ${i}`));
  // and the generator continues after backward as it would have without the recompute
  const draw = (run: (x: Tensor, w1: Tensor, w2: Tensor) => Tensor): number => {
    const { w1, w2, x } = leaves(3);
    torch.manualSeed(7);
    torch.scope(() => run(x, w1, w2).sum().backward());
    const r = torch.scope(() => torch.rand([1]).item() as number);
    for (const t of [x, w1, w2]) t.dispose();
    return r;
  };
  assert.equal(draw(checkpointed(0.3)), draw(plain(0.3)));
});

test('only the parameters inside need a gradient: a frozen input still gets a node', () => {
  const { w1, w2, x } = leaves(4);
  x.requiresGrad_(false);
  const run = (f: (x: Tensor, w1: Tensor, w2: Tensor) => Tensor): Float32Array[] => {
    w1.grad = null;
    w2.grad = null;
    torch.scope(() => f(x, w1, w2).pow(2).sum().backward());
    return [w1, w2].map((t) => torch.scope(() => t.grad!.dataSync() as Float32Array));
  };
  const a = run(plain(0));
  const b = run(checkpointed(0));
  a.forEach((g, i) => assert.deepEqual(b[i], g));
  for (const t of [x, w1, w2]) t.dispose();
});

test('without gradient mode a checkpoint is the plain call, and nothing is recorded', () => {
  const { w1, w2, x } = leaves(5);
  const y = torch.noGrad(() => torch.checkpoint((t) => block(t[0]!, w1, w2, 0), [x]) as Tensor);
  assert.equal(y.requiresGrad, false);
  assert.equal(torch.liveCheckpoints(), 0);
  for (const t of [x, w1, w2, y]) t.dispose();
});

test('a failing recompute is an Error from backward, and a graph dropped unused releases its nodes', () => {
  const { w1, w2, x } = leaves(6);
  let calls = 0;
  torch.scope(() => {
    const y = torch.checkpoint((t) => {
      calls++;
      if (calls > 1) throw new Error('recompute refused');
      return block(t[0]!, w1, w2, 0);
    }, [x]) as Tensor;
    assert.throws(() => y.sum().backward(), /recompute refused/);
  });
  torch.scope(() => {
    const y = torch.checkpoint((t) => block(t[0]!, w1, w2, 0), [x]) as Tensor;
    assert.equal(torch.liveCheckpoints(), 1);
    y.dispose();
  });
  assert.equal(torch.liveCheckpoints(), 0);
  for (const t of [x, w1, w2]) t.dispose();
});
