// Activation checkpointing of the decoder and ViT layers (docs/precision.md section 3): the
// unified-SFT gradients of every parameter equal the plain run's bit for bit in float32, with
// both experts, a ViT image and a generated image in the pack; over a frozen base with LoRA
// adapters; and for GRPO's cached-attention velocity over a KV cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { applyLoRA } from '../../src/nn/index.js';
import {
  Bagel, MICRO, latentVelocity, newContext, buildPackedBatch, prefillText, totalLoss, trainingForward, type PackSample,
} from '../../src/model/index.js';

function pack(): PackSample[] {
  torch.manualSeed(11);
  const latent = torch.randn([MICRO.vae.zChannels, 8, 8]).keep();
  const image = torch.randn([3, 28, 28]).keep();
  return [
    [{ kind: 'text', ids: [10, 11, 12], loss: 1 }, { kind: 'vae_image', latent, loss: 1 }],
    [{ kind: 'vit_image', image }, { kind: 'text', ids: [20, 21], loss: 0 }, { kind: 'text', ids: [30, 31, 32, 33], loss: 1 }],
  ];
}

/** Every parameter's gradient (as raw float32 values) after one SFT backward. */
function sftGrads(model: Bagel, on: boolean): Map<string, Float32Array> {
  model.setActivationCheckpointing(on);
  model.zeroGrad();
  const batch = buildPackedBatch(pack(), MICRO, { random: () => 0.5 });
  assert.ok(batch.vit && batch.vae, 'the pack reaches the ViT and both experts');
  torch.manualSeed(5);
  const noise = torch.randn(batch.vae!.latents.shape).keep();
  torch.scope(() => totalLoss(trainingForward(model, batch, { noise })).backward());
  noise.dispose();
  const out = new Map<string, Float32Array>();
  torch.scope(() => {
    for (const [n, p] of model.namedParameters()) {
      const g = p.grad;
      if (g) out.set(n, g.dataSync() as Float32Array);
    }
  });
  return out;
}

function assertSameGrads(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  assert.deepEqual([...b.keys()], [...a.keys()]);
  for (const [n, g] of a) assert.deepEqual(b.get(n), g, `${n}: checkpointed gradient differs`);
}

test('SFT gradients with checkpointed decoder and ViT layers equal the plain ones bit for bit', () => {
  torch.manualSeed(0);
  const model = new Bagel(MICRO);
  torch.noGrad(() => torch.scope(() => {
    // llm2vae starts at zero (no gradient would reach the generation expert through it)
    model.llm2vae!.weight.copy_(torch.randn(model.llm2vae!.weight.shape).mul(0.05));
  }));
  const plain = sftGrads(model, false);
  assert.ok([...plain.keys()].some((k) => k.includes('vit_model.vision_model.encoder.layers.0')), 'the ViT layers get gradients');
  assert.ok([...plain.keys()].some((k) => k.includes('mlp_moe_gen')), 'the generation expert gets gradients');
  const ckpt = sftGrads(model, true);
  assertSameGrads(plain, ckpt);
  assert.equal(torch.liveCheckpoints(), 0);
  model.dispose();
});

test('over a frozen base with LoRA adapters (no input needs a gradient) the adapter gradients are the same', () => {
  torch.manualSeed(1);
  const model = new Bagel(MICRO);
  applyLoRA(model, { targets: ['q_proj', 'v_proj', 'q_proj_moe_gen', 'v_proj_moe_gen'], r: 2, alpha: 4 });
  torch.noGrad(() => torch.scope(() => {
    for (const [n, p] of model.namedParameters()) if (n.endsWith('lora_B.weight')) p.copy_(torch.randn(p.shape).mul(0.1));
  }));
  const plain = sftGrads(model, false);
  assert.ok(plain.size > 0 && [...plain.keys()].every((k) => k.includes('lora_')), 'only adapters have gradients');
  assertSameGrads(plain, sftGrads(model, true));
  model.dispose();
});

test("GRPO's velocity over a KV cache (cached layout) has the same gradients checkpointed", () => {
  torch.manualSeed(2);
  const model = new Bagel(MICRO);
  for (const [n, p] of model.namedParameters()) p.requiresGrad = n.includes('moe_gen');
  torch.noGrad(() => torch.scope(() => model.llm2vae!.weight.copy_(torch.randn(model.llm2vae!.weight.shape).mul(0.05))));
  const ctx = newContext(model);
  prefillText(model, ctx, [5, 6, 7, 8]);
  const prompt = ctx.length;
  const grads = (on: boolean): Float32Array[] => {
    model.setActivationCheckpointing(on);
    model.zeroGrad();
    torch.manualSeed(3);
    torch.scope(() => {
      const x = torch.randn([4, MICRO.latentPatchSize ** 2 * MICRO.vae.zChannels]);
      latentVelocity(model, ctx, x, 0.4, 2, 2, { grad: true }).pow(2).sum().backward();
    });
    return torch.scope(() => model.parameters().filter((p) => p.requiresGrad).map((p) => p.grad!.dataSync() as Float32Array));
  };
  const a = grads(false);
  const b = grads(true);
  assert.equal(b.length, a.length);
  a.forEach((g, i) => assert.deepEqual(b[i], g, `parameter ${i}`));
  assert.equal(ctx.length, prompt, 'the cache holds the prompt only: the recompute wrote nothing');
  ctx.dispose();
  model.dispose();
});
