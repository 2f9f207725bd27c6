// Unified-SFT (docs/method.md 2) on the tiny config: the loss falls on a fixed batch, an
// interrupted and resumed run reproduces the uninterrupted one bit for bit on CPU (losses,
// weights and EMA), and LoRA-only training changes only the adapter weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { AdamW, clipGradNorm, isAdapterKey } from '../../src/nn/index.js';
import { Bagel, disposeBatch, saveCheckpoint } from '../../src/model/index.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { SftData, modelConfigForTokenizer, resolveRecipe } from '../../src/train/sft-data.js';
import { parseSftConfig } from '../../src/train/sft-config.js';
import { runTokenizer, sftForwardBackward, trainSft } from '../../src/train/sft.js';
import { loadVae } from '../../src/train/vae-stage.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { randomVae, smallConfig, tensorsOf } from './fixtures/sft-fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'sft-test-'));
const vaePath = randomVae(work);
const { character } = loadSampleCharacter();
test.after(() => rmSync(work, { recursive: true, force: true }));

test('the SFT loss (0.25 CE + 1.0 MSE) falls over steps on a fixed packed batch', async () => {
  const config = parseSftConfig(smallConfig(vaePath));
  const tok = runTokenizer(config, [character]);
  const mc = modelConfigForTokenizer('micro', tok);
  assert.equal(mc.llm.vocabSize, tok.vocabSize);
  assert.deepEqual(mc.tokens, { bos: tok.bos, eos: tok.eos, startOfImage: tok.startOfImage, endOfImage: tok.endOfImage });
  const vae = loadVae(vaePath, mc.vae);
  const data = await SftData.create({
    characters: [character], tokenizer: tok, model: mc, vae, recipe: resolveRecipe('full'), packing: config.data.packing,
    imageSize: 32, vitImageSize: 28, textDropProb: 0.1, seed: 1,
  });
  torch.manualSeed(0);
  const model = new Bagel(mc);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, betas: [0.9, 0.95], eps: 1e-15, weightDecay: 0 });
  const b = data.packBatch(0);
  assert.ok(b.batch.vae && b.batch.ceIndexes.length > 0, 'the pack holds a T2I image and CE targets (both groups are mandatory)');
  const losses: number[] = [];
  for (let step = 0; step < 10; step++) {
    torch.scope(() => {
      opt.zeroGrad();
      losses.push(sftForwardBackward(model, b).loss);
      clipGradNorm(model.parameters(), 1.0);
      opt.step();
    });
  }
  assert.ok(losses.at(-1)! < 0.8 * losses[0]!, `losses ${losses.map((x) => x.toFixed(3)).join(' ')}`);
  disposeBatch(b.batch);
  b.noise?.dispose();
  data.dispose();
  opt.dispose();
  model.dispose();
  vae.dispose();
});

test('batches are deterministic: the same step gives the same tokens, latents and noise', async () => {
  const config = parseSftConfig(smallConfig(vaePath));
  const tok = runTokenizer(config, [character]);
  const mc = modelConfigForTokenizer('micro', tok);
  const vae = loadVae(vaePath, mc.vae);
  const make = () => SftData.create({ characters: [character], tokenizer: tok, model: mc, vae, recipe: resolveRecipe('full'), packing: config.data.packing, imageSize: 32, vitImageSize: 28, textDropProb: 0.1, seed: 7 });
  const [d1, d2] = [await make(), await make()];
  d1.packBatch(0); // d1 has moved past pack 0; pack 3 must not depend on that
  const [x, y] = [d1.packBatch(3), d2.packBatch(3)];
  assert.deepEqual(x.batch.textIds, y.batch.textIds);
  assert.deepEqual(x.batch.vae?.timestepNormals, y.batch.vae?.timestepNormals);
  assert.ok(x.batch.vae!.latents.equal(y.batch.vae!.latents));
  assert.ok(x.noise!.equal(y.noise!));
  for (const d of [d1, d2]) d.dispose();
  vae.dispose();
});

test('a run interrupted after 3 steps and resumed reproduces the uninterrupted run bit for bit', async () => {
  const cfg = smallConfig(vaePath, { totalSteps: 6, saveEvery: 2, ema: { enabled: true, decay: 0.9 }, optim: { schedule: 'cosine', warmupSteps: 2, lr: 2e-3 } });
  const full = join(work, 'full');
  const split = join(work, 'split');
  const t0 = Date.now();
  const a = await trainSft(cfg, { runDir: full, progress: null, handleSigint: false });
  const t1 = Date.now();
  assert.equal(a.step, 6);
  assert.ok(!a.interrupted);
  const b1 = await trainSft(cfg, { runDir: split, progress: null, handleSigint: false, stopAfter: 3 });
  assert.equal(b1.step, 3);
  assert.ok(b1.interrupted);
  assert.equal(b1.lastCheckpoint, 3);
  const b2 = await trainSft(cfg, { runDir: split, resume: true, progress: null, handleSigint: false });
  assert.equal(b2.resumedFrom, 3);
  assert.equal(b2.step, 6);
  console.log(`# 6 tiny SFT steps in ${t1 - t0} ms (including setup and export)`);
  const ma = readMetrics(join(full, 'metrics.jsonl'));
  const mb = readMetrics(join(split, 'metrics.jsonl'));
  assert.deepEqual(mb.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  for (const key of ['loss', 'ce', 'mse', 'gradNorm', 'lr', 'numCe', 'numMse', 'tokens']) {
    assert.deepEqual(mb.map((m) => m[key]), ma.map((m) => m[key]), key);
  }
  for (const file of ['model.safetensors', 'ema.safetensors']) {
    const [ta, tb] = [tensorsOf(join(full, file)), tensorsOf(join(split, file))];
    assert.deepEqual([...tb.keys()], [...ta.keys()]);
    for (const [k, t] of ta) assert.ok(t.equal(tb.get(k)!), `${file}: ${k} differs`);
  }
  assert.ok(existsSync(join(full, 'character', 'unicharacter.json')), 'a single-character run exports a CharacterModel folder');
  assert.ok(existsSync(join(full, 'samples', 'step-000006-image.png')));
});

test('LoRA-only training changes only the adapter weights', async () => {
  const config = parseSftConfig(smallConfig(vaePath));
  const tok = runTokenizer(config, [character]);
  torch.manualSeed(3);
  const base = new Bagel(modelConfigForTokenizer('micro', tok));
  const basePath = join(work, 'base.safetensors');
  saveCheckpoint(basePath, base);
  base.dispose();
  const dir = join(work, 'lora');
  const r = await trainSft(smallConfig(vaePath, { init: basePath, totalSteps: 3, saveEvery: 3, lora: { enabled: true, r: 4, alpha: 8 }, export: 'lora', optim: { lr: 5e-3 } }), { runDir: dir, progress: null, handleSigint: false });
  assert.ok(r.adapterPath && existsSync(r.adapterPath));
  assert.equal(r.modelPath, null);
  const before = tensorsOf(basePath);
  const after = tensorsOf(join(dir, 'checkpoints', 'step-3', 'model.safetensors'));
  let adapters = 0;
  let changedB = 0;
  for (const [k, t] of after) {
    if (isAdapterKey(k)) {
      adapters++;
      if (k.endsWith('lora_B.weight') && t.abs().max().item() > 0) changedB++;
      continue;
    }
    assert.ok(t.equal(before.get(k)!), `${k} changed`);
  }
  assert.ok(adapters > 0 && changedB > 0, `${adapters} adapter tensors, ${changedB} B matrices moved`);
  const adapter = tensorsOf(r.adapterPath!);
  assert.ok([...adapter.keys()].every(isAdapterKey));
});
