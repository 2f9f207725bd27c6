// Tensor creation, metadata, read-back, views and indexing, arithmetic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { ops } from '../../src/torch/index.js';
import { native } from '../../src/torch/native.js';

test('creation from nested arrays infers shape and dtype as PyTorch does', () => {
  torch.scope(() => {
    const a = torch.tensor([[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(a.shape, [2, 3]);
    assert.equal(a.dtype, 'int64');
    assert.equal(torch.tensor([1.5, 2]).dtype, 'float32');
    assert.equal(torch.tensor([true, false]).dtype, 'bool');
    assert.deepEqual(torch.tensor([true, false]).toArray(), [true, false]);
    assert.equal(torch.tensor(3.5).ndim, 0);
    assert.equal(torch.tensor(3.5).item(), 3.5);
    assert.throws(() => torch.tensor([[1, 2], [3]]), /ragged/);
  });
});

test('creation from typed arrays of every kind', () => {
  torch.scope(() => {
    const cases: [ArrayBufferView, string, number[]][] = [
      [new Float32Array([1.5, -2]), 'float32', [1.5, -2]],
      [new Float64Array([1e-300, 2]), 'float64', [1e-300, 2]],
      [new Int32Array([-7, 8]), 'int32', [-7, 8]],
      [new BigInt64Array([-(2n ** 40n), 5n]), 'int64', [-(2 ** 40), 5]],
      [new Uint8Array([0, 255]), 'uint8', [0, 255]],
      [new Int8Array([-128, 127]), 'int8', [-128, 127]],
      [new Int16Array([-300, 300]), 'int16', [-300, 300]],
    ];
    for (const [data, dtype, values] of cases) {
      const t = torch.tensor(data);
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.toArray(), values);
    }
    const shaped = torch.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [3, 2] });
    assert.deepEqual(shaped.toArray(), [[1, 2], [3, 4], [5, 6]]);
    assert.throws(() => torch.tensor(new Float32Array(5), { shape: [2, 2] }), /20 bytes given.*need 16/);
  });
});

test('bfloat16 and float16 from raw bits', () => {
  torch.scope(() => {
    // 1.0 is 0x3f80 in bf16 and 0x3c00 in f16; -2.5 is 0xc020 and 0xc100.
    const bf = torch.fromBits(new Uint16Array([0x3f80, 0xc020]), 'bfloat16', [2]);
    assert.equal(bf.dtype, 'bfloat16');
    assert.deepEqual(bf.toArray(), [1, -2.5]);
    assert.deepEqual(Array.from(bf.dataSync() as Uint16Array), [0x3f80, 0xc020]);
    const h = torch.fromBits(new Uint16Array([0x3c00, 0xc100]), 'float16', [2]);
    assert.deepEqual(h.toArray(), [1, -2.5]);
    assert.deepEqual(Array.from(h.to("bfloat16").dataSync() as Uint16Array), [0x3f80, 0xc020]);
  });
});

test('factories', () => {
  torch.scope(() => {
    assert.deepEqual(torch.zeros([2, 2]).toArray(), [[0, 0], [0, 0]]);
    assert.deepEqual(torch.ones([3], { dtype: 'int32' }).toArray(), [1, 1, 1]);
    assert.deepEqual(torch.full([2], 7).toArray(), [7, 7]);
    assert.deepEqual(torch.arange(4).toArray(), [0, 1, 2, 3]);
    assert.equal(torch.arange(4).dtype, 'int64');
    assert.deepEqual(torch.arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
    assert.deepEqual(torch.eye(2).toArray(), [[1, 0], [0, 1]]);
    assert.deepEqual(torch.linspace(0, 1, 3).toArray(), [0, 0.5, 1]);
    const r = torch.rand([1000]);
    const v = r.dataSync() as Float32Array;
    assert.ok(v.every((x) => x >= 0 && x < 1));
    const n = torch.randn([20000]);
    assert.ok(Math.abs(n.mean().item()) < 0.05 && Math.abs(n.std().item() - 1) < 0.05);
    assert.equal(torch.zeros([2], { requiresGrad: true }).requiresGrad, true);
  });
});

test('to() converts dtype and device', () => {
  torch.scope(() => {
    const a = torch.tensor([1.7, -2.2]);
    assert.deepEqual(a.to('int32').toArray(), [1, -2]);
    assert.equal(a.to({ dtype: 'float64', device: 'cpu' }).dtype, 'float64');
    assert.equal(a.device, 'cpu');
    assert.throws(() => a.to('cuda:0'));
  });
});

test('views and indexing', () => {
  torch.scope(() => {
    const x = torch.arange(12).reshape([3, 4]);
    assert.deepEqual(x.select(0, 1).toArray(), [4, 5, 6, 7]);
    assert.deepEqual(x.narrow(1, 1, 2).toArray(), [[1, 2], [5, 6], [9, 10]]);
    assert.deepEqual(x.slice(1, 0, 4, 2).toArray(), [[0, 2], [4, 6], [8, 10]]);
    assert.deepEqual(x.index([torch.tensor([2, 0])]).toArray(), [[8, 9, 10, 11], [0, 1, 2, 3]]);
    assert.deepEqual(x.permute([1, 0]).shape, [4, 3]);
    assert.deepEqual(x.transpose(0, 1).contiguous().view([-1]).narrow(0, 0, 4).toArray(), [0, 4, 8, 1]);
    assert.deepEqual(ops.cat([x, x], 0).shape, [6, 4]);
    assert.deepEqual(ops.stack([x, x], 0).shape, [2, 3, 4]);
    // A view shares storage: writing through it changes the base.
    x.select(0, 0).fill_(-1);
    assert.deepEqual(x.select(0, 0).toArray(), [-1, -1, -1, -1]);
    // Boolean masks index too.
    const m = x.gt(8);
    assert.deepEqual(x.masked_select(m).toArray(), [9, 10, 11]);
  });
});

test('broadcasting arithmetic as methods, with Tensor or scalar operands', () => {
  torch.scope(() => {
    const a = torch.tensor([[1, 2], [3, 4]], { dtype: 'float32' });
    const b = torch.tensor([10, 20], { dtype: 'float32' });
    assert.deepEqual(a.add(b).toArray(), [[11, 22], [13, 24]]);
    assert.deepEqual(a.add(b, 2).toArray(), [[21, 42], [23, 44]]);
    assert.deepEqual(a.sub(1).toArray(), [[0, 1], [2, 3]]);
    assert.deepEqual(a.mul(b).toArray(), [[10, 40], [30, 80]]);
    assert.deepEqual(a.div(2).toArray(), [[0.5, 1], [1.5, 2]]);
    assert.deepEqual(a.pow(2).toArray(), [[1, 4], [9, 16]]);
    assert.deepEqual(a.matmul(a).toArray(), [[7, 10], [15, 22]]);
    assert.equal(a.sum().item(), 10);
    assert.deepEqual(a.sum(0).toArray(), [4, 6]);
    const [values, indices] = a.max(1);
    assert.deepEqual(values.toArray(), [2, 4]);
    assert.deepEqual(indices.toArray(), [1, 1]);
    // In-place ops return the same JS object.
    const c = a.clone();
    assert.equal(c.add_(1), c);
    assert.deepEqual(c.toArray(), [[2, 3], [4, 5]]);
  });
});

test('printable preview', () => {
  torch.scope(() => {
    const s = torch.tensor([[1, 2], [3, 4]], { dtype: 'float32' }).toString();
    assert.match(s, /^Tensor\(shape=\[2, 2\], dtype=float32, device=cpu\)/);
    assert.match(s, /1\s+2\n\s*3\s+4/);
    assert.match(torch.zeros([100, 100]).toString(), /^Tensor\(shape=\[100, 100\], dtype=float32, device=cpu\)$/);
  });
});

test('callOp reaches any operator by name and overload', () => {
  torch.scope(() => {
    const a = torch.tensor([1, 2], { dtype: 'float32' });
    const r = torch.callOp('aten::add', 'Tensor', a, a, 3) as torch.Tensor;
    assert.deepEqual(r.toArray(), [4, 8]);
    assert.throws(() => torch.callOp('aten::no_such_op', ''), /unknown operator aten::no_such_op/);
  });
});

test('opName names the operator behind an id; callOp registers each operator once', () => {
  const id = native.opId('mul', 'Tensor');
  assert.equal(native.opName(id), 'aten::mul.Tensor');
  assert.throws(() => native.opName(id + 1_000_000), /opName: no operator has id/);
  torch.scope(() => {
    const a = torch.tensor([1, 2], { dtype: 'float32' });
    torch.callOp('aten::sub', 'Tensor', a, a, 1);
    const next = native.opId('mul', 'Tensor');
    for (let k = 0; k < 5; k++) torch.callOp('aten::sub', 'Tensor', a, a, 1);
    // ids count up by one per registration: five more calls registered nothing
    assert.equal(native.opId('mul', 'Tensor'), next + 1);
  });
});

test('devices and threads', () => {
  assert.equal(typeof torch.cuda.isAvailable(), 'boolean');
  const before = torch.getNumThreads();
  torch.setNumThreads(1);
  assert.equal(torch.getNumThreads(), 1);
  torch.setNumThreads(before);
  assert.throws(() => torch.setNumThreads(0), TypeError);
  assert.match(torch.version(), /^\d+\.\d+/);
});
