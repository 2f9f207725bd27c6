// The VAE stage: training reduces the reconstruction error on the sample character's images,
// writes reconstruction grids and ae.safetensors, and the saved file loads back frozen with its
// calibrated scale and shift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MICRO } from '../../src/model/index.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { loadCharacterImages } from '../../src/train/sft-data.js';
import { loadVae, reconstructionError, trainVae } from '../../src/train/vae-stage.js';

test('the VAE stage reduces reconstruction error on the sample character and saves a frozen ae.safetensors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vae-stage-'));
  try {
    const { character } = loadSampleCharacter();
    const images = await loadCharacterImages([character], 32);
    images.keep();
    const t0 = Date.now();
    const r = await trainVae({ images, config: MICRO.vae, steps: 60, lr: 2e-3, batchSize: 4, runDir: dir, sampleEvery: 30, seed: 0 });
    const ms = Date.now() - t0;
    console.log(`# vae stage: 60 steps at 32x32 in ${ms} ms; L1 ${r.reconstructionBefore.toFixed(4)} -> ${r.reconstructionAfter.toFixed(4)}; scale ${r.config.scaleFactor.toFixed(4)} shift ${r.config.shiftFactor.toFixed(4)}`);
    assert.ok(r.reconstructionAfter < 0.6 * r.reconstructionBefore, `L1 ${r.reconstructionBefore} -> ${r.reconstructionAfter}`);
    assert.ok(r.vae.parameters().every((p) => !p.requiresGrad), 'frozen after training');
    assert.ok(existsSync(join(dir, 'ae.safetensors')));
    const samples = readdirSync(join(dir, 'samples')).filter((n) => n.endsWith('vae-recon.png'));
    assert.deepEqual(samples.sort(), ['step-000000-vae-recon.png', 'step-000030-vae-recon.png', 'step-000060-vae-recon.png']);
    const back = loadVae(join(dir, 'ae.safetensors'), MICRO.vae);
    assert.equal(back.config.scaleFactor, r.config.scaleFactor);
    assert.equal(back.config.shiftFactor, r.config.shiftFactor);
    assert.ok(Math.abs(reconstructionError(back, images) - r.reconstructionAfter) < 1e-6);
    assert.ok(back.parameters().every((p) => !p.requiresGrad));
    back.dispose();
    r.vae.dispose();
    images.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
