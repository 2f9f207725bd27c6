import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { Module, Linear, LayerNorm, Embedding, saveModule, loadModule } from '../../src/nn/index.js';
import { assertSameF32, flat } from './helpers.js';

class Tiny extends Module {
  readonly embed = this.registerModule('embed', new Embedding(7, 4));
  readonly proj = this.registerModule('proj', new Linear(4, 3));
  readonly norm = this.registerModule('norm', new LayerNorm(3));
  constructor() {
    super();
    this.registerBuffer('table', torch.arange(6, undefined, 1, { dtype: 'float32' }));
    this.registerBuffer('scratch', torch.zeros([2]), { persistent: false });
  }
}

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'nn-state-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a state dict round-trips through safetensors bit for bit', () => {
  withDir((dir) => {
    const path = join(dir, 'model.safetensors');
    torch.manualSeed(1);
    const a = new Tiny();
    saveModule(path, a, { step: '12' });
    const header = torch.safetensors.loadHeader(path);
    assert.deepEqual([...header.tensors.keys()].sort(), ['embed.weight', 'norm.bias', 'norm.weight', 'proj.bias', 'proj.weight', 'table']);
    torch.manualSeed(2);
    const b = new Tiny();
    assert.notDeepEqual(flat(b.proj.weight), flat(a.proj.weight));
    const r = loadModule(path, b);
    assert.deepEqual(r.missing, []);
    assert.deepEqual(r.metadata.step, '12');
    const loaded = new Map([...b.namedParameters(), ...b.namedBuffers()]);
    for (const [n, t] of [...a.namedParameters(), ...a.namedBuffers()]) {
      if (n === 'scratch') continue; // non-persistent: not saved
      assertSameF32(flat(loaded.get(n)!), flat(t), n);
    }
    const before = torch.memory().tensors;
    loadModule(path, b);
    assert.equal(torch.memory().tensors, before, 'loading leaves no tensors behind');
    a.dispose();
    b.dispose();
  });
});

test('bf16 checkpoints load into fp32 modules and fp32 ones into bf16 modules (converted on copy)', () => {
  withDir((dir) => {
    const path = join(dir, 'bf16.safetensors');
    const a = new Tiny().toDtype('bfloat16');
    saveModule(path, a);
    assert.equal(torch.safetensors.loadHeader(path).tensors.get('proj.weight')!.dtype, 'BF16');
    const b = new Tiny();
    loadModule(path, b);
    assert.equal(b.proj.weight.dtype, 'float32');
    assert.deepEqual(flat(b.proj.weight), flat(a.proj.weight));
    a.dispose();
    b.dispose();
  });
});

test('strict file loading names the offending keys and the file; non-strict loads the rest', () => {
  withDir((dir) => {
    const path = join(dir, 'partial.safetensors');
    torch.scope(() => torch.safetensors.save(path, {
      'proj.weight': torch.ones([3, 4]),
      'proj.bias': torch.ones([5]),
      'head.weight': torch.ones([2, 2]),
    }));
    const m = new Tiny();
    assert.throws(() => loadModule(path, m), (e: Error) => {
      assert.ok(e.message.startsWith(path), e.message);
      assert.match(e.message, /missing keys \(4\): table, embed\.weight, norm\.weight, norm\.bias\n/);
      assert.match(e.message, /unexpected keys \(1\): head\.weight/);
      assert.match(e.message, /size mismatch for proj\.bias: checkpoint has \[5\], module has \[3\]/);
      return true;
    });
    const r = loadModule(path, m, { strict: false });
    assert.deepEqual(r.unexpected, ['head.weight']);
    assert.deepEqual(r.mismatched.map((x) => x.key), ['proj.bias']);
    assert.deepEqual(flat(m.proj.weight), new Array(12).fill(1));
    m.dispose();
  });
});
