// The VAE stage: training reduces the reconstruction error on the sample character's images,
// writes reconstruction grids and ae.safetensors, and the saved file loads back frozen with its
// calibrated scale and shift. It checkpoints like every stage: a child killed with SIGKILL
// mid-stage resumes to the same weights and metrics as an uninterrupted run, and inside
// Unified-SFT a stop during the VAE stage resumes with the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { MICRO } from '../../src/model/index.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { loadCharacterImages } from '../../src/train/sft-data.js';
import { loadVae, reconstructionError, trainVae } from '../../src/train/vae-stage.js';
import { readLatestCheckpoint, readMetrics } from '../../src/train/run-dir.js';
import { trainSft } from '../../src/train/sft.js';
import { startChild, withTempDir } from './helpers.js';
import { VAE_RUN, vaeRunOptions } from './fixtures/vae-run.js';
import { smallConfig } from './fixtures/sft-fixtures.js';

test('the VAE stage reduces reconstruction error on the sample character and saves a frozen ae.safetensors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vae-stage-'));
  try {
    const { character } = loadSampleCharacter();
    const images = await loadCharacterImages([character], 32);
    images.keep();
    const t0 = Date.now();
    const r = await trainVae({ images, config: MICRO.vae, steps: 60, lr: 2e-3, batchSize: 4, runDir: dir, sampleEvery: 30, seed: 0, progress: null });
    const ms = Date.now() - t0;
    console.log(`# vae stage: 60 steps at 32x32 in ${ms} ms; L1 ${r.reconstructionBefore.toFixed(4)} -> ${r.reconstructionAfter.toFixed(4)}; scale ${r.config.scaleFactor.toFixed(4)} shift ${r.config.shiftFactor.toFixed(4)}`);
    assert.ok(r.reconstructionAfter < 0.6 * r.reconstructionBefore, `L1 ${r.reconstructionBefore} -> ${r.reconstructionAfter}`);
    assert.ok(r.vae!.parameters().every((p) => !p.requiresGrad), 'frozen after training');
    assert.ok(existsSync(join(dir, 'ae.safetensors')));
    const samples = readdirSync(join(dir, 'samples')).filter((n) => n.endsWith('vae-recon.png'));
    assert.deepEqual(samples.sort(), ['step-000000-vae-recon.png', 'step-000030-vae-recon.png', 'step-000060-vae-recon.png']);
    const back = loadVae(join(dir, 'ae.safetensors'), MICRO.vae);
    assert.equal(back.config.scaleFactor, r.config.scaleFactor);
    assert.equal(back.config.shiftFactor, r.config.shiftFactor);
    assert.ok(Math.abs(reconstructionError(back, images) - r.reconstructionAfter) < 1e-6);
    assert.ok(back.parameters().every((p) => !p.requiresGrad));
    back.dispose();
    r.vae!.dispose();
    images.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The tensors and metadata of a safetensors file, kept alive for comparison. */
function readSafetensors(path: string): { tensors: Map<string, torch.Tensor>; metadata: Record<string, string> } {
  const f = torch.safetensors.load(path);
  for (const t of f.tensors.values()) t.keep();
  return f;
}

function assertSameFile(a: string, b: string): void {
  const [x, y] = [readSafetensors(a), readSafetensors(b)];
  assert.deepEqual([...y.tensors.keys()], [...x.tensors.keys()]);
  for (const [k, t] of x.tensors) assert.ok(t.equal(y.tensors.get(k)!), `${k} differs`);
  assert.deepEqual(y.metadata, x.metadata);
  for (const t of [...x.tensors.values(), ...y.tensors.values()]) t.dispose();
}

const numbers = (root: string) => readMetrics(join(root, 'metrics.jsonl')).map((m) => ({ step: m.step, loss: m.loss, l1: m.l1, l2: m.l2, kl: m.kl }));

test('SIGKILL mid-stage, then resume: the same weights, scale, shift and metrics as an uninterrupted run', async () => {
  await withTempDir(async (work) => {
    const images = await loadCharacterImages([loadSampleCharacter().character], VAE_RUN.imageSize);
    images.keep();
    const ref = join(work, 'ref');
    const a = await trainVae(vaeRunOptions(images, ref));
    assert.deepEqual([a.step, a.interrupted, a.resumedFrom, a.lastCheckpoint], [12, false, null, 12]);

    const cut = join(work, 'cut');
    const child = startChild('vae-child.js', [cut, '0']);
    await child.waitFor(/^STEP 6$/, 120_000); // checkpoint 4 is on disk, step 8's is not
    child.proc.kill('SIGKILL');
    const exit = await child.exited;
    assert.equal(exit.signal, 'SIGKILL');
    const latest = readLatestCheckpoint(cut);
    assert.ok(latest && latest.step >= 4 && latest.step < 12, `latest checkpoint ${latest?.step}`);
    assert.ok(!existsSync(join(cut, 'ae.safetensors')));

    // Without resume the used folder is refused; with it the run continues from the checkpoint.
    await assert.rejects(trainVae(vaeRunOptions(images, cut)), /already holds a run.*resume/);
    const b = await trainVae({ ...vaeRunOptions(images, cut), resume: true });
    assert.equal(b.resumedFrom, latest.step);
    assert.equal(b.step, 12);
    assert.ok(!b.interrupted);
    assert.deepEqual(numbers(cut), numbers(ref));
    assert.deepEqual(b.metrics, a.metrics);
    assert.equal(b.reconstructionBefore, a.reconstructionBefore);
    assert.equal(b.reconstructionAfter, a.reconstructionAfter);
    assert.equal(b.config.scaleFactor, a.config.scaleFactor);
    assert.equal(b.config.shiftFactor, a.config.shiftFactor);
    assertSameFile(join(ref, 'ae.safetensors'), join(cut, 'ae.safetensors'));
    const samples = readdirSync(join(cut, 'samples')).filter((n) => n.endsWith('.png')).sort();
    assert.deepEqual(samples, ['step-000000-vae-recon.png', 'step-000006-vae-recon.png', 'step-000012-vae-recon.png']);
    a.vae!.dispose();
    b.vae!.dispose();

    // A stop (signal) saves the step it ended on; resuming a finished run trains nothing more.
    const stopped = join(work, 'stopped');
    const ac = new AbortController();
    const s = await trainVae({ ...vaeRunOptions(images, stopped), signal: ac.signal, onStep: (k) => k === 5 && ac.abort() });
    assert.deepEqual([s.step, s.interrupted, s.lastCheckpoint, s.vae, s.path], [5, true, 5, null, null]);
    assert.equal(readLatestCheckpoint(stopped)?.step, 5);
    const c = await trainVae({ ...vaeRunOptions(images, stopped), resume: true });
    assert.equal(c.resumedFrom, 5);
    assertSameFile(join(ref, 'ae.safetensors'), join(stopped, 'ae.safetensors'));
    const again = await trainVae({ ...vaeRunOptions(images, stopped), resume: true, onStep: () => assert.fail('no step after the end') });
    assert.equal(again.resumedFrom, 12);
    assert.equal(again.reconstructionAfter, a.reconstructionAfter);
    c.vae!.dispose();
    again.vae!.dispose();
    images.dispose();
  });
});

test('Unified-SFT stopped during its VAE stage returns at step 0 and resumes the stage with the run', async () => {
  await withTempDir(async (work) => {
    const character = loadSampleCharacter().character;
    const vae = { steps: 6, saveEvery: 2, sampleEvery: 0, batchSize: 3, lr: 2e-3, seed: 3 };
    const cfg = smallConfig('', { totalSteps: 2, saveEvery: 2, vae });
    delete (cfg.vae as { path?: string }).path;
    const root = join(work, 'sft');
    // Stop once the VAE stage has its first checkpoint.
    const ac = new AbortController();
    const poll = setInterval(() => existsSync(join(root, 'vae', 'checkpoints', 'latest')) && ac.abort(), 20);
    const r1 = await trainSft(cfg, { runDir: root, characters: [character], signal: ac.signal, progress: null, handleSigint: false });
    clearInterval(poll);
    assert.equal(r1.step, 0);
    assert.ok(r1.interrupted);
    assert.ok(r1.vaeStage?.interrupted, 'stopped in the VAE stage');
    assert.ok(r1.vaeStage.step >= 2 && r1.vaeStage.step < 6, `VAE stage stopped at ${r1.vaeStage.step}`);
    assert.equal(readLatestCheckpoint(join(root, 'vae'))?.step, r1.vaeStage.step);
    assert.equal(r1.modelPath, null);
    assert.ok(!existsSync(join(root, 'vae', 'ae.safetensors')));
    assert.equal(readLatestCheckpoint(root), null, 'no SFT checkpoint was claimed or written');

    const r2 = await trainSft(cfg, { runDir: root, characters: [character], resume: true, progress: null, handleSigint: false });
    assert.equal(r2.vaeStage?.resumedFrom, r1.vaeStage.step);
    assert.equal(r2.step, 2);
    assert.ok(!r2.interrupted);
    assert.ok(r2.modelPath && existsSync(r2.modelPath));

    // The VAE is the one an uninterrupted stage on the same images gives.
    const images = await loadCharacterImages([character], 32);
    const ref = await trainVae({ images, config: MICRO.vae, ...vae, runDir: join(work, 'ref'), progress: null, handleSigint: false });
    assertSameFile(join(work, 'ref', 'ae.safetensors'), join(root, 'vae', 'ae.safetensors'));
    assert.deepEqual(numbers(join(root, 'vae')), numbers(join(work, 'ref')));
    ref.vae!.dispose();
    images.dispose();
  });
});
