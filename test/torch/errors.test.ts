// Every libtorch failure and every bad JS argument becomes a JS error; the process survives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { ops } from '../../src/torch/index.js';

test('shape mismatches carry the C++ message', () => {
  torch.scope(() => {
    const a = torch.ones([2, 3]);
    assert.throws(() => a.matmul(torch.ones([2, 3])), (e: Error) => e instanceof Error && /mat1 and mat2 shapes cannot be multiplied|size mismatch/.test(e.message));
    assert.throws(() => a.add(torch.ones([4])), /The size of tensor a \(3\) must match the size of tensor b \(4\)/);
    assert.throws(() => a.view([5]), /shape '\[5\]' is invalid for input of size 6/);
  });
});

test('dtype errors carry the C++ message', () => {
  torch.scope(() => {
    const f = torch.ones([2]);
    const i = torch.ones([2], { dtype: 'int64' });
    assert.throws(() => f.add_(torch.tensor([true, false])).mul_(i).bitwise_and(i), /bitwise_and|not implemented|Float/);
    assert.throws(() => ops.embedding(torch.ones([3, 2]), f), /Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int/);
  });
});

test('wrong JS argument types are TypeErrors naming the argument', () => {
  torch.scope(() => {
    const a = torch.ones([2]);
    assert.throws(() => ops.softmax(a, 'x' as unknown as number), TypeError);
    assert.throws(() => ops.softmax(a, 1.5 as number), TypeError);
    assert.throws(
      () => ops.layer_norm(a, 'oops' as unknown as number[]),
      (e: Error) => e instanceof TypeError && /argument 'normalized_shape' must be int\[\], got string/.test(e.message),
    );
    assert.throws(() => (a as any).add('x'), (e: Error) => e instanceof TypeError && /add\(\): no overload accepts \(Tensor, string\)/.test(e.message));
    assert.throws(() => ops.cat([a, 3 as unknown as torch.Tensor]), (e: Error) => e instanceof TypeError && /argument 'tensors' must be an array of Tensors \(element 1 is integer\)/.test(e.message));
    assert.throws(() => torch.zeros([2], { dtype: 'float33' as 'float32' }), /unknown dtype 'float33'/);
    assert.throws(() => torch.zeros([-1]), /negative|Trying to create tensor with negative dimension/);
  });
});

test('unknown operators are errors', () => {
  assert.throws(() => torch.callOp('aten::definitely_not_an_op', ''), /unknown operator aten::definitely_not_an_op/);
  assert.throws(() => torch.callOp('aten::add', 'NoSuchOverload'), /unknown operator aten::add\.NoSuchOverload/);
});

test('a disposed tensor cannot be used', () => {
  const a = torch.ones([2]);
  a.dispose();
  a.dispose(); // idempotent
  assert.equal(a.isDisposed, true);
  assert.throws(() => a.add(a), /disposed Tensor/);
  assert.throws(() => a.shape, /disposed Tensor/);
  assert.equal(a.toString(), 'Tensor(disposed)');
});

test('the process keeps working after many errors', () => {
  for (let k = 0; k < 200; k++) {
    assert.throws(() => torch.scope(() => torch.ones([2]).matmul(torch.ones([3]))));
  }
  torch.scope(() => assert.equal(torch.ones([2]).sum().item(), 2));
});
