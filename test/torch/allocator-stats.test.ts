import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';

test('CPU allocated bytes count storages exactly, peak included, once tracking is on', () => {
  torch.trackCpuAllocations();
  const before = torch.allocatedBytes('cpu')!;
  torch.resetPeakAllocated('cpu');
  const a = torch.zeros([1000, 250]); // 1e6 bytes of float32
  const mid = torch.allocatedBytes('cpu')!;
  assert.equal(mid.current - before.current, 1_000_000);
  const b = torch.zeros([500], { dtype: 'float64' }); // 4000 bytes
  a.dispose();
  const after = torch.allocatedBytes('cpu')!;
  assert.equal(after.current - before.current, 4000);
  assert.equal(after.peak - before.current, 1_004_000, 'the peak is when both were alive');
  torch.resetPeakAllocated('cpu');
  assert.equal(torch.allocatedBytes('cpu')!.peak, after.current);
  b.dispose();
  assert.equal(torch.allocatedBytes('cpu')!.current, before.current);
});

test('a view allocates nothing; an unsupported device is an error naming it', () => {
  torch.trackCpuAllocations();
  const a = torch.ones([64, 64]);
  const c0 = torch.allocatedBytes('cpu')!.current;
  const v = a.narrow(0, 0, 8);
  assert.equal(torch.allocatedBytes('cpu')!.current, c0);
  v.dispose();
  a.dispose();
  assert.throws(() => torch.allocatedBytes('meta'), /only 'cpu' and 'cuda'/);
});
