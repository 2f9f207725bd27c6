// UNICHAR_TEST_DEVICE (test/torch/device.ts): the device switch of the engine and model tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { testDevice } from './device.js';

test('UNICHAR_TEST_DEVICE: cpu by default, bad values and absent devices are named errors', () => {
  assert.equal(testDevice({}), 'cpu');
  assert.equal(testDevice({ UNICHAR_TEST_DEVICE: '' }), 'cpu');
  assert.equal(testDevice({ UNICHAR_TEST_DEVICE: 'cpu' }), 'cpu');
  assert.throws(() => testDevice({ UNICHAR_TEST_DEVICE: 'gpu' }), /UNICHAR_TEST_DEVICE must be cpu, cuda or cuda:N, got 'gpu'/);
  assert.throws(() => testDevice({ UNICHAR_TEST_DEVICE: 'cuda:x' }), /got 'cuda:x'/);
  if (!torch.cuda.isAvailable()) {
    assert.throws(() => testDevice({ UNICHAR_TEST_DEVICE: 'cuda' }), /UNICHAR_TEST_DEVICE=cuda, but this addon sees no CUDA device/);
  } else {
    assert.equal(testDevice({ UNICHAR_TEST_DEVICE: 'cuda' }), 'cuda');
    const n = torch.cuda.deviceCount();
    assert.throws(() => testDevice({ UNICHAR_TEST_DEVICE: `cuda:${n}` }), new RegExp(`sees ${n} CUDA device`));
  }
});

test('tensors made on the test device stay there through arithmetic and autograd', () => {
  const device = testDevice();
  torch.scope(() => {
    const w = torch.randn([4, 3], { device, requiresGrad: true });
    const x = torch.tensor([[1, 2, 3, 4]], { dtype: 'float32', device });
    const y = x.matmul(w).pow(2).sum();
    y.backward();
    assert.equal(w.grad!.device.startsWith(device === 'cpu' ? 'cpu' : 'cuda'), true);
    // d/dw sum((x w)^2) = 2 x^T (x w)
    const want = x.t().matmul(x.matmul(w)).mul(2).to('cpu');
    assert.ok(w.grad!.to('cpu').sub(want).abs().max().item() < 1e-4);
  });
});
