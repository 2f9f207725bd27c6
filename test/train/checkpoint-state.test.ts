// checkpointState: which files a checkpoint holds, and that loading restores every part (weights,
// optimizer moments, EMA, the torch generator, JS generators, the data position) exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as torch from '../../src/torch/index.js';
import { AdamW, EMA, Linear } from '../../src/nn/index.js';
import { checkpointState, jsonState } from '../../src/train/index.js';
import { SeededRng } from './fixtures/mlp-run.js';
import { withTempDir } from './helpers.js';

const bits = (t: torch.Tensor): number[] => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

function setup(seed: number) {
  torch.manualSeed(seed);
  const model = new Linear(3, 2);
  const optimizer = new AdamW(model.parameters(), { lr: 0.1 });
  const ema = new EMA(model, 0.5);
  const rng = new SeededRng(seed);
  const position = jsonState({ epoch: 0, index: 0 });
  const step = (): void => torch.scope(() => {
    optimizer.zeroGrad();
    model.forward(torch.randn([4, 3])).square().sum().backward();
    optimizer.step();
    ema.update(model);
    rng.next();
    position.value.index += 4;
  });
  const snapshot = () => torch.scope(() => ({
    w: bits(model.weight),
    ema: [...ema.shadow.values()].map(bits),
    updates: ema.updates,
    rng: rng.getState(),
    pos: { ...position.value },
    opt: [...optimizer.stateDict().tensors].sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, t]) => [k, bits(t.to('float32'))]),
    next: bits(torch.randn([3])),
  }));
  const dispose = (): void => {
    optimizer.dispose();
    ema.dispose();
    model.dispose();
  };
  return { model, optimizer, ema, rng, position, step, snapshot, dispose };
}

test('save writes one file per part; load restores every part exactly', async () => {
  await withTempDir((dir) => {
    const a = setup(1);
    a.step();
    a.step();
    const state = checkpointState({ model: a.model, optimizer: a.optimizer, ema: a.ema, data: a.position, rngs: { batches: a.rng } });
    state.save(dir);
    assert.deepEqual(readdirSync(dir).sort(), ['ema.safetensors', 'model.safetensors', 'optimizer.safetensors', 'rng.safetensors', 'state.json']);
    assert.deepEqual(JSON.parse(readFileSync(`${dir}/state.json`, 'utf8')).data, { epoch: 0, index: 8 });
    const expected = a.snapshot(); // includes the next random numbers after the save

    const b = setup(2);
    b.step();
    const held = b.position.value;
    checkpointState({ model: b.model, optimizer: b.optimizer, ema: b.ema, data: b.position, rngs: { batches: b.rng } }).load(dir);
    assert.deepEqual(b.snapshot(), expected);
    assert.equal(b.position.value, held, 'the data position object is updated in place');
    a.dispose();
    b.dispose();
  });
});

test('loading refuses a checkpoint whose JS state does not match the parts given', async () => {
  await withTempDir((dir) => {
    const a = setup(1);
    checkpointState({ model: a.model, rngs: { batches: a.rng } }).save(dir);
    assert.throws(
      () => checkpointState({ model: a.model, rngs: { order: a.rng } }).load(dir),
      /rngs state does not match: missing order; unexpected batches/,
    );
    assert.throws(() => checkpointState({ model: a.model, optimizer: a.optimizer }).load(dir), /has no optimizer\.safetensors/);
    a.dispose();
  });
});
