// loadCheckpoint's checks on what a file holds: dtypes convert within a kind (bfloat16 weights
// into a float32 model) and never across kinds (integers as weights, weights into an integer
// buffer), strict or not, and nothing is loaded when a check fails.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { Linear, Module } from '../../src/nn/index.js';
import { loadCheckpoint } from '../../src/model/index.js';

const dir = mkdtempSync(join(tmpdir(), 'uc-ckpt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A Linear 2 -> 2 and an int64 step counter buffer. */
class Small extends Module {
  readonly fc: Linear;
  readonly steps: torch.Tensor;
  constructor() {
    super();
    this.fc = this.registerModule('fc', new Linear(2, 2));
    this.steps = this.registerBuffer('steps', torch.tensor([0], { dtype: 'int64' }));
  }
}

function save(name: string, tensors: Record<string, () => torch.Tensor>): string {
  const path = join(dir, name);
  torch.scope(() => torch.safetensors.save(path, Object.fromEntries(Object.entries(tensors).map(([k, f]) => [k, f()]))));
  return path;
}

const weight = () => torch.tensor([[1, 2], [3, 4]], { dtype: 'float32' });
const bias = () => torch.tensor([0.5, -0.5], { dtype: 'float32' });
const steps = () => torch.tensor([9], { dtype: 'int64' });

test('bfloat16 weights load into a float32 model (same kind, converted)', () => {
  const path = save('bf16.safetensors', { 'fc.weight': () => weight().to('bfloat16'), 'fc.bias': bias, steps });
  const m = new Small();
  loadCheckpoint(path, m);
  assert.deepEqual(Array.from(m.fc.weight.dataSync() as Float32Array), [1, 2, 3, 4]);
  assert.equal(m.fc.weight.dtype, 'float32');
  assert.deepEqual(Array.from(m.steps.dataSync() as BigInt64Array), [9n]);
});

test('integer weights or float steps are refused naming the file, the keys and both dtypes; nothing loads', () => {
  const intWeights = save('int.safetensors', { 'fc.weight': () => torch.tensor([[1, 2], [3, 4]], { dtype: 'int64' }), 'fc.bias': bias, steps });
  const floatSteps = save('float-steps.safetensors', { 'fc.weight': weight, 'fc.bias': bias, steps: () => torch.tensor([9.7], { dtype: 'float32' }) });
  const boolBias = save('bool.safetensors', { 'fc.weight': weight, 'fc.bias': () => torch.tensor([true, false]), steps });
  for (const strict of [true, false]) {
    const m = new Small();
    const before = Array.from(m.fc.weight.dataSync() as Float32Array);
    assert.throws(() => loadCheckpoint(intWeights, m, { strict }), new RegExp(`^Error: ${intWeights.replace(/[.]/g, '\\.')}: 1 tensor\\(s\\) of the wrong kind of dtype: fc\\.weight \\(int64 in the file, float32 in Small\\)$`));
    assert.throws(() => loadCheckpoint(floatSteps, m, { strict }), /float-steps\.safetensors: .*steps \(float32 in the file, int64 in Small\)/);
    assert.throws(() => loadCheckpoint(boolBias, m, { strict }), /bool\.safetensors: .*fc\.bias \(bool in the file, float32 in Small\)/);
    assert.deepEqual(Array.from(m.fc.weight.dataSync() as Float32Array), before, 'the model is untouched');
    assert.deepEqual(Array.from(m.steps.dataSync() as BigInt64Array), [0n]);
  }
});
