import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { EMA, Linear, Module } from '../../src/nn/index.js';
import { assertClose, flat } from './helpers.js';

function setAll(m: Module, value: number): void {
  torch.noGrad(() => torch.scope(() => {
    for (const p of m.parameters()) p.fill_(value);
  }));
}

test('EMA follows shadow <- d * shadow + (1 - d) * param (closed form after k updates)', () => {
  const m = new Linear(2, 3);
  setAll(m, 0);
  const ema = new EMA(m, 0.9);
  // constant param value 1 from now on: shadow_k = 1 - 0.9^k
  setAll(m, 1);
  for (let k = 1; k <= 5; k++) {
    ema.update(m);
    for (const s of ema.shadow.values()) assertClose(flat(s), new Array(s.numel).fill(1 - 0.9 ** k), 1e-6, 0, `update ${k}`);
  }
  assert.equal(ema.updates, 5);
  // changing parameters: track each step by hand
  let ref = 1 - 0.9 ** 5;
  for (const v of [3, -2, 0.5]) {
    setAll(m, v);
    ema.update(m);
    ref = 0.9 * ref + 0.1 * v;
  }
  assertClose(flat(ema.shadow.get('weight')!), new Array(6).fill(ref), 1e-6, 0);
  ema.dispose();
  m.dispose();
});

test('EMA copyTo writes the averages into the model in place; copyFrom resets them', () => {
  const m = new Linear(2, 2);
  const ema = new EMA(m, 0.5);
  const w = m.weight;
  const start = flat(w);
  setAll(m, 4);
  ema.update(m); // shadow = (start + 4) / 2
  ema.copyTo(m);
  assert.equal(m.weight, w);
  assertClose(flat(w), start.map((v) => (v + 4) / 2), 1e-6, 0);
  assert.equal(w.requiresGrad, true);
  setAll(m, 7);
  ema.copyFrom(m);
  assert.deepEqual(flat(ema.shadow.get('bias')!), [7, 7]);
  ema.dispose();
  m.dispose();
});

test('EMA state dict loads into the model itself and back into an EMA', () => {
  const m = new Linear(3, 2);
  const ema = new EMA(m, 0.99);
  setAll(m, 2);
  ema.update(m);
  const other = new Linear(3, 2);
  torch.scope(() => {
    other.loadStateDict(ema.stateDict()); // names match the model's
    const ema2 = new EMA(other, 0.99);
    setAll(other, 0);
    ema2.loadStateDict(ema.stateDict());
    assert.deepEqual(flat(ema2.shadow.get('weight')!), flat(ema.shadow.get('weight')!));
    assert.throws(() => ema2.loadStateDict(new Map([['weight', torch.zeros([2, 3])]])), /missing keys \(1\): bias/);
    ema2.dispose();
  });
  ema.dispose();
  m.dispose();
  other.dispose();
});

test('trainableOnly tracks only parameters that require grad', () => {
  const m = new Linear(2, 2);
  m.bias!.requiresGrad_(false);
  const ema = new EMA(m, 0.9, { trainableOnly: true });
  assert.deepEqual([...ema.shadow.keys()], ['weight']);
  ema.dispose();
  m.dispose();
});
