import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import {
  Module, ModuleList, Linear, LayerNorm, AdamW, applyLoRA, mergeLoRA, unmergeLoRA, removeLoRA, loraParameters,
  loraStateDict, loadLoRAStateDict, saveLoRA, loadLoRA, nameMatcher, isAdapterKey, init,
} from '../../src/nn/index.js';
import { assertClose, assertSameF32, flat, seq } from './helpers.js';

class Attn extends Module {
  readonly q_proj = this.registerModule('q_proj', new Linear(4, 4));
  readonly v_proj = this.registerModule('v_proj', new Linear(4, 4));
  readonly o_proj = this.registerModule('o_proj', new Linear(4, 4, { bias: false }));
  forward(x: torch.Tensor): torch.Tensor {
    return this.o_proj.forward(this.q_proj.forward(x).mul(this.v_proj.forward(x)).tanh());
  }
}
class Net extends Module {
  readonly layers = this.registerModule('layers', new ModuleList([new Attn(), new Attn()]));
  readonly norm = this.registerModule('norm', new LayerNorm(4));
  readonly head = this.registerModule('head', new Linear(4, 2));
  forward(x: torch.Tensor): torch.Tensor {
    let h = x;
    for (const l of this.layers) h = h.add(l.forward(h));
    return this.head.forward(this.norm.forward(h));
  }
}

/** Gives every adapter's B random values, so that the update is not zero. */
function randomizeB(m: Module): void {
  for (const [n, p] of m.namedParameters()) if (n.endsWith('lora_B.weight')) init.normal_(p, 0, 0.3);
}

test('name patterns: suffix names, globs with * and **, and regular expressions', () => {
  const names = ['layers.0.q_proj', 'layers.0.v_proj', 'layers.1.q_proj', 'head', 'layers.10.q_proj'];
  const pick = (p: Parameters<typeof nameMatcher>[0]): string[] => names.filter(nameMatcher(p));
  assert.deepEqual(pick('q_proj'), ['layers.0.q_proj', 'layers.1.q_proj', 'layers.10.q_proj']);
  assert.deepEqual(pick('layers.1.*'), ['layers.1.q_proj']);
  assert.deepEqual(pick('layers.*.?_proj'), ['layers.0.q_proj', 'layers.0.v_proj', 'layers.1.q_proj', 'layers.10.q_proj']);
  assert.deepEqual(pick('**_proj'), ['layers.0.q_proj', 'layers.0.v_proj', 'layers.1.q_proj', 'layers.10.q_proj']);
  assert.deepEqual(pick(/^layers\.1\d*\.q_proj$/), ['layers.1.q_proj', 'layers.10.q_proj']);
  assert.deepEqual(pick(['head', /v_proj/]), ['layers.0.v_proj', 'head']);
});

test('applyLoRA wraps the matching Linear layers; A is kaiming-uniform, B zero, so outputs do not change', () => {
  torch.manualSeed(0);
  const net = new Net();
  const x = torch.tensor(seq(3 * 4, 5), { shape: [3, 4] }).keep();
  const before = torch.scope(() => flat(net.forward(x)));
  const names = applyLoRA(net, { targets: ['q_proj', 'v_proj'], r: 2, alpha: 4 });
  assert.deepEqual(names, ['layers.0.q_proj', 'layers.0.v_proj', 'layers.1.q_proj', 'layers.1.v_proj']);
  const keys = torch.scope(() => [...net.stateDict().keys()]);
  assert.ok(keys.includes('layers.0.q_proj.weight'), 'base keys keep their names');
  assert.ok(keys.includes('layers.0.q_proj.lora_A.weight') && keys.includes('layers.1.v_proj.lora_B.weight'));
  const a = net.layers.at(0).q_proj.lora!;
  assert.deepEqual(a.A.weight.shape, [2, 4]);
  assert.deepEqual(a.B.weight.shape, [4, 2]);
  assert.equal(a.scale, 2);
  assert.ok(flat(a.B.weight).every((v) => v === 0));
  const bound = 1 / Math.sqrt(4); // kaiming-uniform with a = sqrt(5) on fan_in 4
  assert.ok(flat(a.A.weight).every((v) => Math.abs(v) <= bound) && flat(a.A.weight).some((v) => v !== 0));
  assertSameF32(torch.scope(() => flat(net.forward(x))), before, 'B = 0 leaves the output unchanged');
  const bare = new Net();
  assert.throws(() => applyLoRA(bare, { targets: 'k_proj', r: 2 }), /no Linear layer matches k_proj/);
  bare.dispose();
  // a second call with a catch-all pattern adapts the rest, never an adapter's own A or B
  assert.deepEqual(applyLoRA(net, { targets: '**', r: 1 }), ['layers.0.o_proj', 'layers.1.o_proj', 'head']);
  assert.equal(isAdapterKey('layers.0.q_proj.lora_A.weight'), true);
  assert.equal(isAdapterKey('layers.0.q_proj.weight'), false);
  net.dispose();
  x.dispose();
});

test('the adapter adds (alpha/r) B A x, and only adapter parameters get gradients', () => {
  const net = new Net();
  applyLoRA(net, { targets: 'layers.*.q_proj', r: 3, alpha: 6 });
  randomizeB(net);
  const trainable = net.namedParameters({ trainableOnly: true }).map(([n]) => n);
  assert.deepEqual(trainable, ['layers.0.q_proj.lora_A.weight', 'layers.0.q_proj.lora_B.weight', 'layers.1.q_proj.lora_A.weight', 'layers.1.q_proj.lora_B.weight']);
  assert.equal(loraParameters(net).length, 4);
  const q = net.layers.at(0).q_proj;
  torch.scope(() => {
    const xs = seq(2 * 4, 8);
    const x = torch.tensor(xs, { shape: [2, 4] });
    const W = flat(q.weight), b = flat(q.bias!), A = flat(q.lora!.A.weight), B = flat(q.lora!.B.weight);
    const expected: number[] = [];
    for (let n = 0; n < 2; n++) {
      const ax = [0, 1, 2].map((r) => [0, 1, 2, 3].reduce((s, i) => s + A[r * 4 + i]! * xs[n * 4 + i]!, 0));
      for (let o = 0; o < 4; o++) {
        let y = b[o]!;
        for (let i = 0; i < 4; i++) y += W[o * 4 + i]! * xs[n * 4 + i]!;
        for (let r = 0; r < 3; r++) y += 2 * B[o * 3 + r]! * ax[r]!;
        expected.push(y);
      }
    }
    assertClose(flat(q.forward(x)), expected, 1e-5, 1e-6, 'lora forward');
    net.forward(x).pow(2).sum().backward();
    for (const [n, p] of net.namedParameters()) {
      if (n.includes('lora_')) assert.ok(p.grad !== null && flat(p.grad).some((v) => v !== 0), `${n} has a gradient`);
      else assert.equal(p.grad, null, `${n} must stay frozen`);
    }
  });
  net.dispose();
});

test('merge folds W + (alpha/r) B A exactly; merged and unmerged outputs agree; unmerge restores W', () => {
  torch.manualSeed(3);
  const net = new Net();
  applyLoRA(net, { targets: ['q_proj', 'o_proj'], r: 2, alpha: 3 });
  randomizeB(net);
  const q = net.layers.at(1).q_proj;
  const W0 = flat(q.weight);
  const x = torch.tensor(seq(5 * 4, 2), { shape: [5, 4] }).keep();
  const unmerged = torch.scope(() => flat(net.forward(x)));
  const expectedDelta = torch.scope(() => torch.noGrad(() => flat(q.lora!.B.weight.matmul(q.lora!.A.weight).mul(1.5))));
  mergeLoRA(net);
  assert.equal(q.lora!.merged, true);
  // merged weight = W + (alpha/r) B A, elementwise in float32 (one rounding of the sum)
  assertSameF32(flat(q.weight), W0.map((w, i) => Math.fround(w + expectedDelta[i]!)), 'merged weight');
  assertClose(torch.scope(() => flat(net.forward(x))), unmerged, 1e-5, 1e-6, 'merged == unmerged');
  unmergeLoRA(net);
  assertClose(flat(q.weight), W0, 1e-6, 1e-7, 'unmerged by subtraction');
  // keepOriginal restores the weight bit for bit
  const W1 = flat(q.weight);
  mergeLoRA(net, { keepOriginal: true });
  unmergeLoRA(net);
  assertSameF32(flat(q.weight), W1, 'exact unmerge');
  assertSameF32(torch.scope(() => flat(net.forward(x))), torch.scope(() => flat(net.forward(x))), 'deterministic');
  // removeLoRA with merge leaves a plain model that computes the same function
  const withAdapters = torch.scope(() => flat(net.forward(x)));
  const start = torch.memory().tensors;
  removeLoRA(net, { merge: true });
  assert.ok(torch.memory().tensors < start, 'adapter tensors are freed');
  assert.equal(torch.scope(() => [...net.stateDict().keys()]).some((k) => k.includes('lora')), false);
  assertClose(torch.scope(() => flat(net.forward(x))), withAdapters, 1e-5, 1e-6, 'after removeLoRA(merge)');
  net.dispose();
  x.dispose();
});

test('adapter-only state dicts: save, load into a bare base model, strict errors by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nn-lora-'));
  try {
    torch.manualSeed(5);
    const base = new Net();
    const path = join(dir, 'base.safetensors');
    torch.scope(() => torch.safetensors.save(path, base.stateDict()));
    applyLoRA(base, { targets: 'v_proj', r: 2, alpha: 8, dropout: 0.1 });
    randomizeB(base);
    base.eval();
    const x = torch.tensor(seq(2 * 4, 1), { shape: [2, 4] }).keep();
    const tuned = torch.scope(() => flat(base.forward(x)));
    const keys = torch.scope(() => [...loraStateDict(base).keys()]);
    assert.deepEqual(keys, ['layers.0.v_proj.lora_A.weight', 'layers.0.v_proj.lora_B.weight', 'layers.1.v_proj.lora_A.weight', 'layers.1.v_proj.lora_B.weight']);
    const adapterPath = join(dir, 'adapter.safetensors');
    saveLoRA(adapterPath, base, { character: 'test' });
    const header = torch.safetensors.loadHeader(adapterPath);
    assert.deepEqual([...header.tensors.keys()].sort(), [...keys].sort());
    assert.equal(header.metadata.lora_r, '2');
    assert.equal(header.metadata.lora_alpha, '8');
    // a second model from the same base weights, without adapters, takes the file
    const other = new Net();
    torch.scope(() => other.loadStateDict(torch.safetensors.load(path).tensors));
    other.eval();
    loadLoRA(adapterPath, other);
    assert.equal(other.layers.at(0).v_proj.lora!.scale, 4);
    assertSameF32(torch.scope(() => flat(other.forward(x))), tuned, 'same function after loading the adapter');
    assert.deepEqual(other.namedParameters({ trainableOnly: true }).map(([n]) => n).every((n) => n.includes('lora_')), true);
    // strict errors name keys
    torch.scope(() => {
      const sd = loraStateDict(other);
      sd.delete('layers.1.v_proj.lora_B.weight');
      sd.set('layers.0.q_proj.lora_A.weight', torch.zeros([2, 4]));
      sd.set('layers.0.v_proj.lora_A.weight', torch.zeros([3, 4]));
      assert.throws(() => loadLoRAStateDict(other, sd), (e: Error) => {
        assert.match(e.message, /missing keys \(1\): layers\.1\.v_proj\.lora_B\.weight/);
        assert.match(e.message, /unexpected keys \(1\): layers\.0\.q_proj\.lora_A\.weight/);
        assert.match(e.message, /size mismatch for layers\.0\.v_proj\.lora_A\.weight: checkpoint has \[3, 4\], module has \[2, 4\]/);
        return true;
      });
      const r = loadLoRAStateDict(other, sd, { strict: false });
      assert.deepEqual(r.missing, ['layers.1.v_proj.lora_B.weight']);
    });
    base.dispose();
    other.dispose();
    x.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('LoRA fine-tuning moves only the adapters and lowers the loss', () => {
  torch.manualSeed(11);
  const net = new Net();
  applyLoRA(net, { targets: ['q_proj', 'v_proj', 'o_proj'], r: 4, alpha: 8 });
  const frozen = torch.scope(() => new Map([...net.stateDict()].filter(([k]) => !k.includes('lora_')).map(([k, t]) => [k, flat(t)])));
  const opt = new AdamW(loraParameters(net), { lr: 0.02, weightDecay: 0 });
  const x = torch.tensor(seq(16 * 4, 3), { shape: [16, 4] }).keep();
  const y = torch.tensor(seq(16 * 2, 4), { shape: [16, 2] }).keep();
  const losses: number[] = [];
  for (let i = 0; i < 60; i++) {
    losses.push(torch.scope(() => {
      const loss = torch.ops.mse_loss(net.forward(x), y);
      loss.backward();
      opt.step();
      opt.zeroGrad();
      return loss.item();
    }));
  }
  assert.ok(losses.at(-1)! < 0.7 * losses[0]!, `loss ${losses[0]} -> ${losses.at(-1)}`);
  torch.scope(() => {
    for (const [k, t] of net.stateDict()) if (frozen.has(k)) assert.deepEqual(flat(t), frozen.get(k), `${k} must not change`);
  });
  opt.dispose();
  net.dispose();
  x.dispose();
  y.dispose();
});
