// Base training and customization: a base run, then the few-shot step on one character with at
// most 10 images, exported as a LoRA adapter or as a full CharacterModel folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { customize, trainBase } from '../../src/train/customize.js';
import { CharacterModel } from '../../src/character/index.js';
import { loraLayers } from '../../src/nn/index.js';
import { randomVae, smallConfig } from './fixtures/sft-fixtures.js';

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
