import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import {
  Module, ModuleList, ModuleDict, Sequential, Linear, LayerNorm, Embedding, Dropout, ReLU,
} from '../../src/nn/index.js';
import { flat } from './helpers.js';

class Block extends Module {
  readonly proj: Linear;
  readonly norm: LayerNorm;
  readonly scale: torch.Tensor;
  constructor() {
    super();
    this.proj = this.registerModule('proj', new Linear(3, 2));
    this.norm = this.registerModule('norm', new LayerNorm(2));
    this.scale = this.registerParameter('scale', torch.ones([2]));
    this.registerBuffer('running', torch.zeros([2]));
    this.registerBuffer('cache', torch.zeros([5]), { persistent: false });
  }
  forward(x: torch.Tensor): torch.Tensor {
    return this.norm.forward(this.proj.forward(x)).mul(this.scale);
  }
}

class Net extends Module {
  readonly embed = this.registerModule('embed', new Embedding(10, 3));
  readonly layers = this.registerModule('layers', new ModuleList([new Block(), new Block()]));
  readonly heads = this.registerModule('heads', new ModuleDict({ text: new Linear(2, 4, { bias: false }) }));
}

test('dotted names follow registration order, as in PyTorch', () => {
  const net = new Net();
  const names = net.namedParameters().map(([n]) => n);
  assert.deepEqual(names, [
    'embed.weight',
    'layers.0.scale', 'layers.0.proj.weight', 'layers.0.proj.bias', 'layers.0.norm.weight', 'layers.0.norm.bias',
    'layers.1.scale', 'layers.1.proj.weight', 'layers.1.proj.bias', 'layers.1.norm.weight', 'layers.1.norm.bias',
    'heads.text.weight',
  ]);
  assert.deepEqual(net.namedBuffers().map(([n]) => n), ['layers.0.running', 'layers.0.cache', 'layers.1.running', 'layers.1.cache']);
  // state dict: parameters then persistent buffers, module by module; the non-persistent cache is absent
  const keys = torch.scope(() => [...net.stateDict().keys()]);
  assert.deepEqual(keys, [
    'embed.weight',
    'layers.0.scale', 'layers.0.running', 'layers.0.proj.weight', 'layers.0.proj.bias', 'layers.0.norm.weight', 'layers.0.norm.bias',
    'layers.1.scale', 'layers.1.running', 'layers.1.proj.weight', 'layers.1.proj.bias', 'layers.1.norm.weight', 'layers.1.norm.bias',
    'heads.text.weight',
  ]);
  // 30 + 2 * (2 + 6 + 2 + 2 + 2) + 8
  assert.equal(net.numParameters(), 30 + 2 * 14 + 8);
  assert.equal(net.children().length, 3);
  assert.deepEqual(net.namedChildren().map(([n]) => n), ['embed', 'layers', 'heads']);
  assert.equal(net.layers.at(1), net.getModule('layers').getModule('1'));
  assert.equal(net.heads.get('text').outFeatures, 4);
  net.dispose();
});

test('parameters are kept out of scopes and require grad; buffers do not', () => {
  const net = torch.scope(() => new Net());
  for (const p of net.parameters()) {
    assert.equal(p.isDisposed, false);
    assert.equal(p.requiresGrad, true);
  }
  for (const [, b] of net.namedBuffers()) assert.equal(b.requiresGrad, false);
  net.requiresGrad_(false);
  assert.equal(net.numParameters({ trainableOnly: true }), 0);
  net.layers.at(0).requiresGrad_(true);
  assert.equal(net.numParameters({ trainableOnly: true }), 14);
  net.dispose();
  for (const p of net.parameters()) assert.equal(p.isDisposed, true);
});

test('a shared (tied) parameter is listed once but saved under each name', () => {
  // like an LM head tied to the token embedding
  const m = new Module();
  const a = m.registerModule('a', new Linear(2, 2, { bias: false }));
  const b = m.registerModule('b', new Module());
  b.registerParameter('weight', a.weight);
  assert.deepEqual(m.namedParameters().map(([n]) => n), ['a.weight']);
  assert.equal(m.numParameters(), 4);
  assert.deepEqual(torch.scope(() => [...m.stateDict().keys()]), ['a.weight', 'b.weight']);
  m.dispose();
});

test('train() and eval() reach every descendant', () => {
  const seq = new Sequential(new Linear(2, 2), new Dropout(0.5), new ReLU());
  assert.equal(seq.training, true);
  seq.eval();
  for (const m of seq.modules()) assert.equal(m.training, false);
  seq.train();
  for (const m of seq.modules()) assert.equal(m.training, true);
  seq.dispose();
});

test('registration rejects dotted and duplicate names', () => {
  const m = new Module();
  assert.throws(() => m.registerParameter('a.b', torch.zeros([1])), /contain no '\.'/);
  m.registerParameter('w', torch.zeros([1]));
  assert.throws(() => m.registerBuffer('w', torch.zeros([1])), /already registered/);
  m.dispose();
});

test('loadStateDict copies in place, so references (optimizer, fields) stay valid', () => {
  const a = new Block();
  const b = new Block();
  const weightBefore = b.proj.weight;
  torch.scope(() => {
    const sd = a.stateDict();
    const r = b.loadStateDict(sd);
    assert.deepEqual(r, { missing: [], unexpected: [], mismatched: [] });
  });
  assert.equal(b.proj.weight, weightBefore); // the same handle
  assert.equal(b.proj.weight.requiresGrad, true);
  assert.deepEqual(torch.scope(() => flat(b.proj.weight)), torch.scope(() => flat(a.proj.weight)));
  // the loaded tensor is a copy: changing the source does not change the target
  torch.noGrad(() => a.proj.weight.add_(1));
  assert.notDeepEqual(flat(b.proj.weight), flat(a.proj.weight));
  a.dispose();
  b.dispose();
});

test('strict loading throws naming missing, unexpected and mismatched keys; non-strict reports them', () => {
  const m = new Block();
  const before = flat(m.proj.weight);
  torch.scope(() => {
    const sd = new Map<string, torch.Tensor>([
      ['scale', torch.full([2], 3)],
      ['proj.weight', torch.zeros([4, 3])], // wrong shape
      ['proj.bias', torch.full([2], 7)],
      ['extra.thing', torch.zeros([1])],
    ]);
    assert.throws(() => m.loadStateDict(sd), (e: Error) => {
      assert.match(e.message, /missing keys \(3\): running, norm\.weight, norm\.bias/);
      assert.match(e.message, /unexpected keys \(1\): extra\.thing/);
      assert.match(e.message, /size mismatch for proj\.weight: checkpoint has \[4, 3\], module has \[2, 3\]/);
      return true;
    });
    // strict failure copies nothing
    assert.deepEqual(flat(m.scale), [1, 1]);
    const r = m.loadStateDict(sd, { strict: false });
    assert.deepEqual(r.missing, ['running', 'norm.weight', 'norm.bias']);
    assert.deepEqual(r.unexpected, ['extra.thing']);
    assert.deepEqual(r.mismatched, [{ key: 'proj.weight', expected: [2, 3], got: [4, 3] }]);
    assert.deepEqual(flat(m.scale), [3, 3]);
    assert.deepEqual(flat(m.proj.bias!), [7, 7]);
    assert.deepEqual(flat(m.proj.weight), before); // mismatched key left alone
  });
  m.dispose();
});

test('toDtype converts floating tensors in place and keeps handles; integer buffers stay', () => {
  const m = new Block();
  m.registerBuffer('ids', torch.tensor([1, 2, 3]));
  const w = m.proj.weight;
  const values = flat(w);
  for (const dtype of ['bfloat16', 'float16', 'float32'] as const) {
    m.toDtype(dtype);
    assert.equal(m.proj.weight, w);
    for (const p of m.parameters()) {
      assert.equal(p.dtype, dtype);
      assert.equal(p.requiresGrad, true);
      assert.equal(p.isLeaf, true);
    }
    assert.equal(m.getBuffer('running').dtype, dtype);
    assert.equal(m.getBuffer('ids').dtype, 'int64');
  }
  // fp32 -> bf16 -> fp16 -> fp32 loses precision: values equal bf16 rounding of the originals
  const bf = torch.scope(() => flat(torch.tensor(values, { dtype: 'float32' }).to('bfloat16')));
  assert.deepEqual(flat(w), bf);
  // a forward pass works and gradients flow after conversion
  m.toDtype('bfloat16');
  torch.scope(() => {
    const y = m.forward(torch.ones([1, 3], { dtype: 'bfloat16' }));
    assert.equal(y.dtype, 'bfloat16');
    y.sum().backward();
    assert.equal(m.proj.weight.grad!.dtype, 'bfloat16');
  });
  m.dispose();
});

test('zeroGrad sets gradients to null', () => {
  const m = new Linear(2, 2);
  torch.scope(() => m.forward(torch.ones([1, 2])).sum().backward());
  assert.notEqual(m.weight.grad, null);
  m.zeroGrad();
  assert.equal(m.weight.grad, null);
  assert.equal(m.bias!.grad, null);
  m.dispose();
});

test('Sequential applies modules in order', () => {
  const s = new Sequential(new Linear(2, 3), new ReLU(), new Linear(3, 1));
  torch.scope(() => {
    const x = torch.tensor([[1, -2]], { dtype: 'float32' });
    const expected = (s.at(2) as Linear).forward(torch.ops.relu((s.at(0) as Linear).forward(x)));
    assert.deepEqual(flat(s.forward(x)), flat(expected));
  });
  assert.deepEqual([...s.stateDictInfo().keys()], ['0.weight', '0.bias', '2.weight', '2.bias']);
  s.dispose();
});
