// Gradients of the operations the model is built from, checked against central finite
// differences in float64 (matmul, softmax, log_softmax, composed layer norm and RMS
// norm, gelu(tanh), silu, conv2d, embedding, cross entropy, mse, masked attention).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { ops, type Tensor } from '../../src/torch/index.js';
import { gradcheck, input } from './gradcheck.js';

// A fixed weighting makes every output element matter to the scalar being differentiated.
function weightedSum(y: Tensor, seed: number): Tensor {
  const w = torch.tensor(input(y.shape, seed).values, { dtype: 'float64', shape: y.shape });
  return y.mul(w).sum();
}

test('matmul', () => {
  gradcheck(([a, b]) => weightedSum(a!.matmul(b!), 1), [input([3, 4], 2), input([4, 2], 3)]);
});

test('softmax and log_softmax', () => {
  gradcheck(([x]) => weightedSum(x!.softmax(-1), 4), [input([2, 5], 5)]);
  gradcheck(([x]) => weightedSum(x!.log_softmax(1), 6), [input([3, 4], 7)]);
});

test('layer norm composed from ops', () => {
  gradcheck(
    ([x, g, b]) => {
      const mean = x!.mean(-1, true);
      const centered = x!.sub(mean);
      const variance = centered.pow(2).mean(-1, true);
      const y = centered.mul(variance.add(1e-5).rsqrt()).mul(g!).add(b!);
      return weightedSum(y, 8);
    },
    [input([3, 6], 9), input([6], 10), input([6], 11)],
  );
});

test('RMS norm composed from ops', () => {
  gradcheck(
    ([x, g]) => weightedSum(x!.mul(x!.pow(2).mean(-1, true).add(1e-6).rsqrt()).mul(g!), 12),
    [input([4, 5], 13), input([5], 14)],
  );
});

test('gelu (tanh approximation) and silu', () => {
  gradcheck(([x]) => weightedSum(ops.gelu(x!, 'tanh'), 15), [input([7], 16)]);
  gradcheck(([x]) => weightedSum(ops.silu(x!), 17), [input([7], 18)]);
});

test('conv2d', () => {
  gradcheck(
    ([x, w, b]) => weightedSum(ops.conv2d(x!, w!, b!, [1, 1], [1, 1], [1, 1], 1), 19),
    [input([1, 2, 4, 4], 20), input([3, 2, 3, 3], 21), input([3], 22)],
    { tol: 1e-5 },
  );
});

test('embedding (gradient with respect to the table)', () => {
  const ids = [[1, 3, 1], [0, 2, 3]];
  gradcheck(
    ([w]) => torch.scope(() => {
      const idx = torch.tensor(ids);
      return weightedSum(ops.embedding(w!, idx), 23);
    }),
    [input([4, 3], 24)],
  );
});

test('cross entropy and mse', () => {
  gradcheck(
    ([logits]) => {
      const target = torch.tensor([2, 0, 1]);
      return ops.cross_entropy_loss(logits!, target);
    },
    [input([3, 4], 25)],
  );
  gradcheck(([a, b]) => ops.mse_loss(a!, b!), [input([2, 3], 26), input([2, 3], 27)]);
});

test('masked attention composed from ops', () => {
  // q, k, v: (heads 2, length 3, dim 4); a causal mask adds -inf above the diagonal.
  gradcheck(
    ([q, k, v]) => {
      const mask = torch.tensor(
        [[0, -Infinity, -Infinity], [0, 0, -Infinity], [0, 0, 0]],
        { dtype: 'float64' },
      );
      const scores = q!.matmul(k!.transpose(-1, -2)).div(2).add(mask);
      return weightedSum(scores.softmax(-1).matmul(v!), 28);
    },
    [input([2, 3, 4], 29), input([2, 3, 4], 30), input([2, 3, 4], 31)],
  );
});

test('backward with explicit gradient, retainGraph and grad accumulation', () => {
  torch.scope(() => {
    const x = torch.tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const y = x.mul(x); // dy/dx = 2x
    const g = torch.tensor([1, 10, 100], { dtype: 'float64' });
    y.backward(g, { retainGraph: true });
    assert.deepEqual(x.grad!.toArray(), [2, 40, 600]);
    y.backward(g); // accumulates
    assert.deepEqual(x.grad!.toArray(), [4, 80, 1200]);
    assert.throws(() => y.backward(g), /backward through the graph a second time/);
    x.grad = null;
    assert.equal(x.grad, null);
  });
});

test('detach, noGrad and enableGrad', () => {
  torch.scope(() => {
    const x = torch.tensor([1.5], { requiresGrad: true });
    assert.equal(x.mul(2).requiresGrad, true);
    assert.equal(x.detach().mul(2).requiresGrad, false);
    torch.noGrad(() => {
      assert.equal(torch.isGradEnabled(), false);
      assert.equal(x.mul(2).requiresGrad, false);
      torch.enableGrad(() => assert.equal(x.mul(2).requiresGrad, true));
    });
    assert.equal(torch.isGradEnabled(), true);
  });
});

test('autograd.grad with createGraph gives second derivatives', () => {
  torch.scope(() => {
    const x = torch.tensor([0.5, -1.25], { dtype: 'float64', requiresGrad: true });
    const y = x.pow(3).sum(); // dy/dx = 3x^2, d2y/dx2 = 6x
    const [g] = torch.grad(y, x, { createGraph: true });
    assert.deepEqual(g!.toArray(), [0.75, 4.6875]);
    const [h] = torch.grad(g!.sum(), x);
    assert.deepEqual(h!.toArray(), [3, -7.5]);
  });
});
