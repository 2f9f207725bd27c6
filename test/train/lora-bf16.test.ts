// LoRA customization over a frozen bfloat16 base (docs/precision.md section 4): bf16-mixed with
// activation checkpointing keeps the base bfloat16 and untouched, the adapters and their AdamW
// state float32, resumes bit for bit, and saves adapters alone that load over the base weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { MixedPrecision, isAdapterKey, loadLoRA } from '../../src/nn/index.js';
import { Bagel, loadCheckpoint, buildPackedBatch, saveCheckpoint, trainingForward, totalLoss, type PackSample } from '../../src/model/index.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { modelConfigForTokenizer } from '../../src/train/sft-data.js';
import { parseSftConfig } from '../../src/train/sft-config.js';
import { runTokenizer, trainSft } from '../../src/train/sft.js';
import { readMetrics } from '../../src/train/run-dir.js';
import { randomVae, smallConfig, tensorsOf } from './fixtures/sft-fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'lora-bf16-test-'));
const vaePath = randomVae(work);
const { character } = loadSampleCharacter();
test.after(() => rmSync(work, { recursive: true, force: true }));

test('LoRA over a frozen bf16 base with checkpointing: only adapters change, float32 adapters and state, exact resume, adapters load over the base', async () => {
  const tok = runTokenizer(parseSftConfig(smallConfig(vaePath)), [character]);
  const mc = modelConfigForTokenizer('micro', tok);
  torch.manualSeed(3);
  const base = new Bagel(mc);
  const basePath = join(work, 'base.safetensors');
  saveCheckpoint(basePath, base);
  base.dispose();
  const cfg = smallConfig(vaePath, {
    init: basePath, totalSteps: 4, saveEvery: 2, precision: 'bf16-mixed', activationCheckpointing: true,
    lora: { enabled: true, r: 4, alpha: 8 }, export: 'lora', optim: { lr: 5e-3 },
  });
  const full = join(work, 'full');
  const split = join(work, 'split');
  const r = await trainSft(cfg, { runDir: full, progress: null, handleSigint: false });
  await trainSft(cfg, { runDir: split, progress: null, handleSigint: false, stopAfter: 2 });
  await trainSft(cfg, { runDir: split, resume: true, progress: null, handleSigint: false });
  const [ma, mb] = [readMetrics(join(full, 'metrics.jsonl')), readMetrics(join(split, 'metrics.jsonl'))];
  assert.deepEqual(mb.map((m) => m.loss), ma.map((m) => m.loss), 'the resumed run repeats the losses');

  const ck = (dir: string, f: string): string => join(dir, 'checkpoints', 'step-4', f);
  for (const f of ['model.safetensors', 'optimizer.safetensors']) {
    const [a, b] = [tensorsOf(ck(full, f)), tensorsOf(ck(split, f))];
    for (const [k, t] of a) assert.ok(t.equal(b.get(k)!), `${f}: ${k} differs after resume`);
  }
  assert.ok(!existsSync(ck(full, 'master.safetensors')), 'float32 adapters need no master copy');
  const start = tensorsOf(basePath);
  const after = tensorsOf(ck(full, 'model.safetensors'));
  let movedB = 0;
  for (const [k, t] of after) {
    if (isAdapterKey(k)) {
      assert.equal(t.dtype, 'float32', `${k}: adapters are float32`);
      if (k.endsWith('lora_B.weight') && t.abs().max().item() > 0) movedB++;
    } else if (k.endsWith('pos_embed')) {
      assert.ok(t.equal(start.get(k)!), `${k}: buffers stay float32 and unchanged`);
    } else {
      assert.equal(t.dtype, 'bfloat16', `${k}: the frozen base is bfloat16`);
      assert.ok(t.equal(start.get(k)!.to('bfloat16')), `${k}: the base did not change`);
    }
  }
  assert.ok(movedB > 0, 'the adapters trained');
  for (const [k, t] of tensorsOf(ck(full, 'optimizer.safetensors'))) if (!k.endsWith('.step')) assert.equal(t.dtype, 'float32', `${k}: AdamW state is float32`);

  // The adapter file holds the adapters alone and, loaded over the base weights in bfloat16,
  // gives the same model as the checkpoint.
  const adapter = tensorsOf(r.adapterPath!);
  assert.ok([...adapter.keys()].every(isAdapterKey));
  for (const [k, t] of adapter) assert.ok(t.equal(after.get(k)!), `${k}: exported as trained`);
  const loss = (m: Bagel): number => torch.scope(() => {
    torch.manualSeed(4);
    const latent = torch.randn([mc.vae.zChannels, 8, 8]);
    const sample: PackSample[] = [[{ kind: 'text', ids: [10, 11, 12], loss: 1 }, { kind: 'vae_image', latent, loss: 1 }]];
    const batch = buildPackedBatch(sample, mc, { random: () => 0.5 });
    const noise = torch.randn(batch.vae!.latents.shape);
    return torch.noGrad(() => totalLoss(trainingForward(m, batch, { noise })).item() as number);
  });
  const over = new Bagel(mc);
  loadCheckpoint(basePath, over);
  const plainBase = new MixedPrecision(over, 'bf16-mixed');
  const baseLoss = loss(over);
  loadLoRA(r.adapterPath!, over);
  const fromFile = loss(over);
  const ref = new Bagel(mc);
  loadCheckpoint(basePath, ref);
  loadLoRA(r.adapterPath!, ref);
  const refPrecision = new MixedPrecision(ref, 'bf16-mixed');
  ref.loadStateDict(after);
  assert.equal(fromFile, loss(ref), 'base + adapter file = the trained model');
  assert.notEqual(fromFile, baseLoss, 'the adapters change the model');
  for (const p of [plainBase, refPrecision]) p.dispose();
  over.dispose();
  ref.dispose();
});
