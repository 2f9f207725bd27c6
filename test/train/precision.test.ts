// Precision modes (docs/precision.md) on the micro model: bf16-mixed follows the fp32 loss curve
// and keeps float32 masters, bf16 keeps no float32 copy, and both resume bit for bit; a resume in
// another mode is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { AdamW, MixedPrecision } from '../../src/nn/index.js';
import { Bagel, MICRO, disposeBatch } from '../../src/model/index.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { SftData, modelConfigForTokenizer, resolveRecipe } from '../../src/train/sft-data.js';
import { parseSftConfig } from '../../src/train/sft-config.js';
import { runTokenizer, sftForwardBackward, trainSft } from '../../src/train/sft.js';
import { checkpointState } from '../../src/train/checkpoint-state.js';
import { loadVae } from '../../src/train/vae-stage.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { trainGrpo } from '../../src/train/grpo.js';
import { randomVae, smallConfig, tensorsOf } from './fixtures/sft-fixtures.js';
import { tinyGrpoConfig, writeTinySft } from './fixtures/grpo-fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'precision-test-'));
const vaePath = randomVae(work);
const { character } = loadSampleCharacter();
test.after(() => rmSync(work, { recursive: true, force: true }));

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

test('bf16-mixed SFT follows the fp32 loss curve: mean of the last 50 of 300 steps within 2%', async () => {
  const curve = async (precision: 'fp32' | 'bf16-mixed'): Promise<number[]> => {
    const dir = join(work, `curve-${precision}`);
    await trainSft(smallConfig(vaePath, { totalSteps: 300, saveEvery: 300, precision, optim: { lr: 2e-3 } }), { runDir: dir, progress: null, handleSigint: false });
    return readMetrics(join(dir, 'metrics.jsonl')).map((m) => m.loss as number);
  };
  const fp32 = await curve('fp32');
  const mixed = await curve('bf16-mixed');
  assert.equal(fp32.length, 300);
  assert.equal(mixed.length, 300);
  const [a, b] = [mean(fp32.slice(-50)), mean(mixed.slice(-50))];
  console.log(`# loss: first ${fp32[0]!.toFixed(4)} / ${mixed[0]!.toFixed(4)}, mean of last 50 fp32 ${a.toFixed(4)}, bf16-mixed ${b.toFixed(4)} (${(100 * (b - a) / a).toFixed(2)}%)`);
  assert.ok(a < 0.8 * fp32[0]!, 'the fp32 run learns');
  assert.ok(Math.abs(b - a) / a < 0.02, `mean of the last 50: fp32 ${a}, bf16-mixed ${b}`);
  assert.notDeepEqual(mixed, fp32, 'the two runs differ (bf16-mixed is really in bfloat16)');
});

/** A micro model, its data and a step function in one precision mode. */
async function microSetup(mode: 'fp32' | 'bf16-mixed' | 'bf16') {
  const config = parseSftConfig(smallConfig(vaePath));
  const tok = runTokenizer(config, [character]);
  const mc = modelConfigForTokenizer('micro', tok);
  const vae = loadVae(vaePath, mc.vae);
  const data = await SftData.create({
    characters: [character], tokenizer: tok, model: mc, vae, recipe: resolveRecipe('full'), packing: config.data.packing,
    imageSize: 32, vitImageSize: 28, textDropProb: 0.1, seed: 1,
  });
  torch.manualSeed(0);
  const model = new Bagel(mc);
  const precision = new MixedPrecision(model, mode);
  const opt = new AdamW(precision.params, { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-15, weightDecay: 0 });
  const step = (i: number): void => torch.scope(() => {
    const b = data.packBatch(i);
    opt.zeroGrad();
    sftForwardBackward(model, b, { afterBackward: () => precision.collectGradients() });
    opt.step();
    precision.syncModel();
    disposeBatch(b.batch);
    b.noise?.dispose();
  });
  const dispose = (): void => {
    opt.dispose();
    precision.dispose();
    model.dispose();
    data.dispose();
    vae.dispose();
  };
  return { model, precision, opt, step, dispose, data, vae };
}

test('bf16-mixed: bfloat16 model and gradients, float32 masters and AdamW state, model = round(master)', async () => {
  const s = await microSetup('bf16-mixed');
  const named = s.model.namedParameters();
  assert.ok(named.every(([, p]) => p.dtype === 'bfloat16'), 'every model parameter is bfloat16');
  assert.ok(s.precision.params.every((m) => m.dtype === 'float32'), 'every master is float32');
  assert.equal(s.precision.params.length, named.length);
  s.step(0);
  s.step(1);
  torch.scope(() => {
    const sd = s.opt.stateDict();
    for (const [k, t] of sd.tensors) if (!k.endsWith('.step')) assert.equal(t.dtype, 'float32', k);
    const masters = s.precision.namedParams();
    const model = new Map(named);
    let finer = 0;
    for (const [n, m] of masters) {
      const p = model.get(n)!;
      assert.equal(p.grad, null, `${n}: the bfloat16 gradient was moved into the master`);
      const g = m.grad;
      if (g) assert.equal(g.dtype, 'float32');
      assert.ok(m.to('bfloat16').equal(p), `${n}: the model holds the master rounded to bfloat16`);
      if (!m.equal(p.to('float32'))) finer++;
    }
    assert.ok(finer > named.length / 2, `${finer} of ${named.length} masters carry more than bfloat16 precision`);
  });
  s.dispose();
});

test('bf16: the optimizer updates the bfloat16 weights themselves; no float32 copy of any weight', async () => {
  const s = await microSetup('bf16');
  const named = s.model.namedParameters();
  assert.equal(s.precision.masterStateDict().size, 0);
  named.forEach(([, p], i) => assert.equal(s.precision.params[i], p, 'the optimizer holds the model parameter itself'));
  s.step(0);
  // parameters the pack reached have a gradient and AdamW state; the others only themselves
  const reached = torch.scope(() => named.filter(([, p]) => p.grad !== null).reduce((a, [, p]) => a + p.numel, 0));
  const numel = named.reduce((a, [, p]) => a + p.numel, 0);
  assert.ok(reached > numel / 2);
  const buffers = s.model.namedBuffers().reduce((a, [, b]) => a + b.numel * torch.ITEM_SIZE[b.dtype], 0);
  torch.scope(() => {
    for (const [k, t] of s.opt.stateDict().tensors) if (!k.endsWith('.step')) assert.equal(t.dtype, 'bfloat16', k);
    for (const [, p] of named) assert.equal(p.grad!.dtype, 'bfloat16');
  });
  // weights 2 + AdamW exp_avg 2 + exp_avg_sq 2 bytes per parameter and the buffers are what the
  // handles hold (gradients hang off the parameters, outside torch.memory()); a float32 copy of
  // the weights would add 4 bytes per parameter
  const s0 = torch.memory().bytes;
  const modelBytes = 2 * numel + 4 * reached + buffers;
  s.opt.dispose();
  s.model.dispose();
  const freed = s0 - torch.memory().bytes;
  assert.equal(freed, modelBytes, `freed ${freed} bytes, expected ${modelBytes} (2 bytes x ${numel} parameters, 4 more for the ${reached} with AdamW state, ${buffers} of buffers)`);
  s.precision.dispose();
  s.data.dispose();
  s.vae.dispose();
});

test('bf16-mixed and bf16 runs interrupted and resumed reproduce the uninterrupted ones bit for bit', async () => {
  for (const precision of ['bf16-mixed', 'bf16'] as const) {
    const cfg = smallConfig(vaePath, { totalSteps: 6, saveEvery: 3, precision, ema: { enabled: true, decay: 0.9 }, optim: { lr: 2e-3 } });
    const full = join(work, `resume-full-${precision}`);
    const split = join(work, `resume-split-${precision}`);
    await trainSft(cfg, { runDir: full, progress: null, handleSigint: false });
    await trainSft(cfg, { runDir: split, progress: null, handleSigint: false, stopAfter: 3 });
    const b2 = await trainSft(cfg, { runDir: split, resume: true, progress: null, handleSigint: false });
    assert.equal(b2.resumedFrom, 3);
    const [ma, mb] = [readMetrics(join(full, 'metrics.jsonl')), readMetrics(join(split, 'metrics.jsonl'))];
    for (const key of ['loss', 'gradNorm']) assert.deepEqual(mb.map((m) => m[key]), ma.map((m) => m[key]), `${precision}: ${key}`);
    const files = ['model.safetensors', 'optimizer.safetensors', 'ema.safetensors', ...(precision === 'bf16-mixed' ? ['master.safetensors'] : [])];
    for (const file of files) {
      const [ta, tb] = [tensorsOf(join(full, 'checkpoints', 'step-6', file)), tensorsOf(join(split, 'checkpoints', 'step-6', file))];
      assert.deepEqual([...tb.keys()], [...ta.keys()]);
      for (const [k, t] of ta) assert.ok(t.equal(tb.get(k)!), `${precision} ${file}: ${k} differs`);
    }
    const model = tensorsOf(join(full, 'checkpoints', 'step-6', 'model.safetensors'));
    assert.equal(model.get('language_model.model.layers.0.mlp.up_proj.weight')!.dtype, 'bfloat16', 'the checkpointed model is bfloat16');
    if (precision === 'bf16-mixed') {
      const masters = tensorsOf(join(full, 'checkpoints', 'step-6', 'master.safetensors'));
      assert.equal(masters.get('language_model.model.layers.0.mlp.up_proj.weight')!.dtype, 'float32');
      // the exported weights are the float32 masters
      const exported = tensorsOf(join(full, 'model.safetensors'));
      assert.ok(exported.get('language_model.model.layers.0.mlp.up_proj.weight')!.equal(masters.get('language_model.model.layers.0.mlp.up_proj.weight')!));
    }
  }
});

test('a checkpoint refuses to resume in another precision mode, naming both', async () => {
  const dir = join(work, 'other-mode');
  const cfg = smallConfig(vaePath, { totalSteps: 4, saveEvery: 2, precision: 'bf16-mixed' });
  await trainSft(cfg, { runDir: dir, progress: null, handleSigint: false, stopAfter: 2 });
  await assert.rejects(trainSft({ ...cfg, precision: 'fp32' }, { runDir: dir, resume: true, progress: null, handleSigint: false }), /precision/);
  // the checkpoint itself records the mode (whatever the run directory's config says)
  torch.manualSeed(0);
  const model = new Bagel({ ...MICRO, name: 'micro' });
  const p = new MixedPrecision(model, 'bf16');
  const state = checkpointState({ model, precision: p, torchRng: false });
  assert.throws(() => state.load(join(dir, 'checkpoints', 'step-2')), /trained with precision 'bf16-mixed' and cannot resume as 'bf16'/);
  p.dispose();
  model.dispose();
});

test('GRPO in bf16-mixed: float32 masters of the generation expert only, bfloat16 rollouts, exported in float32', async () => {
  const from = writeTinySft(work);
  const out = join(work, 'grpo-mixed');
  const quiet = { log: () => {}, progress: null, handleSigint: false } as const;
  const r = await trainGrpo(tinyGrpoConfig(from, out, { epochs: 1, precision: 'bf16-mixed' }), quiet);
  assert.equal(r.step, 1);
  const ck = join(out, 'checkpoints', 'step-1');
  const masters = tensorsOf(join(ck, 'master.safetensors'));
  const model = tensorsOf(join(ck, 'model.safetensors'));
  const start = tensorsOf(join(from, 'model.safetensors'));
  assert.ok(masters.size > 0);
  let moved = 0;
  for (const [k, m] of masters) {
    assert.ok(k.includes('moe_gen'), `${k}: only the generation expert trains (method.md 3.1)`);
    assert.equal(m.dtype, 'float32');
    assert.ok(m.to('bfloat16').equal(model.get(k)!), `${k}: the model holds the master rounded`);
    if (!m.equal(start.get(k)!)) moved++;
  }
  assert.ok(moved > 0, 'the update moved the generation expert');
  // frozen weights stay bfloat16; the fixed position tables (buffers) stay float32
  for (const [k, t] of model) if (!masters.has(k)) assert.equal(t.dtype, k.endsWith('pos_embed') ? 'float32' : 'bfloat16', k);
  const exported = tensorsOf(join(r.modelDir, 'model.safetensors'));
  for (const [k, m] of masters) assert.ok(exported.get(k)!.equal(m), `${k}: exported as its float32 master`);
  await assert.rejects(trainGrpo(tinyGrpoConfig(from, out, { epochs: 2, precision: 'bf16' }), { ...quiet, resume: true }), /precision/);
});
