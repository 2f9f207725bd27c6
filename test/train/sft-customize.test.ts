// Base training and customization: a base run, then the few-shot step on one character with at
// most 10 images, exported as a LoRA adapter or as a full CharacterModel folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseCharacterModel, customize, trainBase } from '../../src/train/customize.js';
import { checklistProbeReport } from '../../src/cli/checklist-probe.js';
import { probeHeldOutAccuracy } from '../../src/reward/index.js';
import { captionedImages } from '../../src/train/grpo-answerer.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { fewShotCharacter } from '../../src/train/sft-data.js';
import { CharacterModel } from '../../src/character/index.js';
import { loraLayers } from '../../src/nn/index.js';
import { randomVae, smallConfig, tensorsOf } from './fixtures/sft-fixtures.js';

test('customize continues from a base run with its tokenizer and VAE, few-shot, as LoRA or full', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sft-custom-'));
  try {
    const vaePath = randomVae(work);
    const base = join(work, 'base');
    const b = await trainBase(smallConfig(vaePath, { totalSteps: 2, saveEvery: 2 }), { runDir: base, progress: null, handleSigint: false });
    assert.ok(b.modelPath && existsSync(b.modelPath));
    const lora = await customize('sample', { base, runDir: join(work, 'lora'), mode: 'lora', maxImages: 10, config: { totalSteps: 2, saveEvery: 2, lora: { r: 2 } }, progress: null, handleSigint: false });
    assert.ok(lora.adapterPath && existsSync(lora.adapterPath));
    const stored = JSON.parse(readFileSync(join(work, 'lora', 'config.json'), 'utf8'));
    assert.equal(stored.init, b.modelPath);
    assert.equal(stored.data.maxImages, 10);
    assert.equal(stored.tokenizer, join(base, 'tokenizer.json'));
    // LoRA mode also writes a LoRA character folder: the adapters and a checked reference to the base.
    assert.ok(lora.characterModelPath && existsSync(join(lora.characterModelPath, 'adapter.safetensors')));
    assert.equal(existsSync(join(lora.characterModelPath, 'model.safetensors')), false);
    const manifest = JSON.parse(readFileSync(join(lora.characterModelPath, 'unicharacter.json'), 'utf8'));
    assert.equal(manifest.base.model.path, b.modelPath);
    assert.equal(manifest.base.model.bytes, statSync(b.modelPath).size);
    assert.equal(manifest.base.model.sha256, createHash('sha256').update(readFileSync(b.modelPath)).digest('hex'));
    assert.equal(manifest.base.vae.path, vaePath);
    const served = await CharacterModel.load(lora.characterModelPath);
    try {
      assert.equal(loraLayers(served.model).length > 0, true);
      assert.equal(served.loaded!.memory.base!.bytes > served.loaded!.memory.ownBytes, true);
    } finally {
      served.dispose();
    }
    const full = await customize('sample', { base, runDir: join(work, 'full'), config: { totalSteps: 2, saveEvery: 2 }, progress: null, handleSigint: false });
    assert.ok(full.characterModelPath && existsSync(join(full.characterModelPath, 'model.safetensors')));
    const ch = JSON.parse(readFileSync(join(full.characterModelPath, 'character.json'), 'utf8'));
    assert.equal(ch.referenceImages.length, 10);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('customize --steps 0 (baseCharacterModel): the base weights, untrained, with the few-shot card; its checklist probe report', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sft-base-cm-'));
  try {
    const base = join(work, 'base');
    const b = await trainBase(smallConfig(randomVae(work), { totalSteps: 2, saveEvery: 2 }), { runDir: base, progress: null, handleSigint: false });
    const dir = baseCharacterModel('sample', { base, out: join(work, 'before'), maxImages: 5 });
    assert.equal(dir, join(work, 'before', 'character'));
    const ch = JSON.parse(readFileSync(join(dir, 'character.json'), 'utf8'));
    assert.equal(ch.referenceImages.length, 5);
    // every weight is the base's, bit for bit
    const want = tensorsOf(b.modelPath!);
    const got = tensorsOf(join(dir, 'model.safetensors'));
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [k, t] of want) assert.equal(t.sub(got.get(k)!).abs().max().item(), 0, k);
    for (const t of [...want.values(), ...got.values()]) t.dispose();
    // the probe report: the five card images (and the sample's 4 test-split images) at the model's
    // 32 px, and the same numbers as the accuracy computed on those images directly; the control
    // is the shuffled-label one
    const r = await checklistProbeReport(dir, 3);
    assert.deepEqual(r.images, { train: 5, heldOut: 4 });
    assert.equal(r.imageSize, 32);
    const imgs = await captionedImages(fewShotCharacter(loadSampleCharacter().character, 5), 32);
    const direct = probeHeldOutAccuracy(imgs.train, imgs.heldOut, { seed: 3 });
    assert.deepEqual([r.probe.accuracy, r.probe.majority, r.probe.n], [direct.accuracy, direct.majority, direct.n]);
    assert.equal(r.shuffled.shuffledLabels, true);
    assert.equal(r.shuffled.n, r.probe.n);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
