// Inference over KV caches (docs/method.md 1.6-1.8, 4.4) and whole-model checkpoints with the
// published key names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { noGrad, tensor } from '../../src/torch/index.js';
import {
  Bagel, decodeText, generateImage, latentVelocities, latentVelocity, loadCheckpoint, newContext, buildPackedBatch, prefillText, prefillVaeImage,
  prefillVitImage, routingFromFlags, saveCheckpoint, streamText, MICRO, timestepGrid, trainingForward, unpatchify,
} from '../../src/model/index.js';

function model(seed: number): Bagel {
  torch.manualSeed(seed);
  const m = new Bagel(MICRO);
  // llm2vae is zero-initialised; give it weights so velocities are not trivially zero
  noGrad(() => m.llm2vae!.weight.normal_(0, 0.1));
  return m.eval();
}

test('greedy decoding with the cache equals full recomputation over the packed sequence', () => {
  const m = model(0);
  const ctx = newContext(m);
  const prompt = [40, 41, 42];
  prefillText(m, ctx, prompt);
  assert.equal(ctx.nextPosition, 5);
  const streamed: number[] = [];
  const out = decodeText(m, ctx, { maxTokens: 6, onToken: (id) => streamed.push(id) });
  assert.deepEqual(streamed, out);
  assert.equal(ctx.length, 5, 'the caller context is unchanged');
  // recompute: [bos p eos] [bos out...] as one causal sequence; each argmax must match
  torch.scope(() => noGrad(() => {
    const { bos, eos } = MICRO.tokens;
    const seq = [bos, ...prompt, eos, bos, ...out];
    const hidden = m.language_model.model.forward(m.language_model.embed(tensor(seq)), tensor(seq.map((_, i) => i)),
      routingFromFlags(seq.map(() => false)), { kind: 'cached', causal: true });
    const pred = m.logits(hidden).argmax(-1).toArray() as number[];
    for (let k = 0; k < out.length; k++) assert.equal(pred[5 + k], out[k]);
    if (out.length < 6) assert.equal(pred[5 + out.length], eos);
  }));
  ctx.dispose();
  m.dispose();
});

test('streamText yields the same tokens as decodeText', async () => {
  const m = model(1);
  const ctx = newContext(m);
  prefillText(m, ctx, [7, 8]);
  const want = decodeText(m, ctx, { maxTokens: 4 });
  const got: number[] = [];
  for await (const id of streamText(m, ctx, { maxTokens: 4 })) got.push(id);
  assert.deepEqual(got, want);
  ctx.dispose();
  m.dispose();
});

test('image prefill: one shared position each, advancing by 1; latent velocity matches the packed training forward', () => {
  const m = model(2);
  const ctx = newContext(m);
  torch.manualSeed(5);
  const image = torch.randn([3, 28, 28]).keep();
  const cond = torch.randn([MICRO.vae.zChannels, 4, 4]).keep();
  prefillText(m, ctx, [1, 2]);
  prefillVitImage(m, ctx, image);
  prefillVaeImage(m, ctx, cond);
  assert.equal(ctx.nextPosition, 6);
  assert.equal(ctx.length, 4 + (4 + 2) + (4 + 2));
  // velocity at t for a 2x2-token image equals the training forward on the same sequence
  torch.scope(() => noGrad(() => {
    const xt = torch.randn([4, 16]);
    const t = 0.7;
    const v = latentVelocity(m, ctx, xt, t, 2, 2);
    assert.deepEqual(v.shape, [4, 16]);
    // same sequence packed: the generated image is a noise split; x_t built from x0 = 0, eps = xt / t
    const latent = torch.zeros([MICRO.vae.zChannels, 4, 4]);
    const n = Math.log(t / (1 - t)); // sigmoid(n) = t
    const batch = buildPackedBatch([[{ kind: 'text', ids: [1, 2], loss: 0 }, { kind: 'vit_image', image }, { kind: 'vae_image', latent: cond, loss: 0 },
      { kind: 'vae_image', latent, loss: 1 }]], MICRO, { random: () => 0.5 });
    batch.vae!.timestepNormals = batch.vae!.timestepNormals.map((x) => (Number.isFinite(x) ? n : x));
    // training forward's MSE with eps = xt / t and x0 = 0 gives mean((v - eps)^2); compare via velocity directly
    const eps = torch.zeros([8, 16]);
    eps.narrow(0, 4, 4).copy_(xt.div(t));
    const l = trainingForward(m, batch, { noise: eps });
    const want = v.sub(xt.div(t)).pow(2).mean().item();
    assert.ok(Math.abs(l.mse!.item() - want) < 1e-4 * (1 + want), `${l.mse!.item()} vs ${want}`);
  }));
  ctx.dispose();
  m.dispose();
});

test('latentVelocities: one pass over several contexts gives each context\'s latentVelocity, and their gradients', () => {
  const m = model(3);
  const cond = newContext(m);
  prefillText(m, cond, [40, 41, 42, 43]);
  const empty = newContext(m);
  const h = 2;
  const w = 3;
  torch.scope(() => {
    const x = torch.randn([h * w, 4 * MICRO.vae.zChannels]);
    const maxDiff = (a: torch.Tensor, b: torch.Tensor): number => a.sub(b).abs().max().item();
    // no grad: each block equals the velocity of its context alone (a cache of 6 rows, none)
    const [vc, vu] = latentVelocities(m, [cond, empty], x, 0.7, h, w) as [torch.Tensor, torch.Tensor];
    assert.deepEqual(vc.shape, [h * w, 4 * MICRO.vae.zChannels]);
    assert.ok(maxDiff(vc, latentVelocity(m, cond, x, 0.7, h, w)) < 1e-5, 'conditional block');
    assert.ok(maxDiff(vu, latentVelocity(m, empty, x, 0.7, h, w)) < 1e-5, 'unconditional block');
    assert.ok(maxDiff(vc, vu) > 1e-3, 'the two contexts give different velocities');
    assert.equal(cond.length, 6, 'the caches are only read');
    assert.equal(empty.length, 0);
    // with grad: the gradient of a weighted sum equals the sum of the separate passes' gradients
    const weight = m.language_model.model.layers.at(0).mlp_moe_gen.down_proj.weight;
    const grad = (f: () => torch.Tensor): torch.Tensor => {
      weight.grad = null;
      f().backward();
      return weight.grad!.clone();
    };
    const joint = grad(() => {
      const [a, b] = latentVelocities(m, [cond, empty], x, 0.7, h, w, { grad: true }) as [torch.Tensor, torch.Tensor];
      return a.mul(2).sub(b).pow(2).mean();
    });
    const apart = grad(() => latentVelocity(m, cond, x, 0.7, h, w, { grad: true }).mul(2).sub(latentVelocity(m, empty, x, 0.7, h, w, { grad: true })).pow(2).mean());
    assert.ok(apart.abs().max().item() > 0, 'the gen expert gets a gradient');
    assert.ok(maxDiff(joint, apart) <= 1e-5 * apart.abs().max().item() + 1e-9, `gradients: ${maxDiff(joint, apart)}`);
    weight.grad = null;
  });
  cond.dispose();
  empty.dispose();
});

test('generateImage: shapes, CFG scale 1 equals no CFG, seeded runs repeat', () => {
  const m = model(3);
  const gen = newContext(m);
  prefillText(m, gen, [3, 4, 5]);
  torch.scope(() => {
    const noise = torch.randn([4, 16]);
    const a = generateImage(m, { gen }, { h: 2, w: 2, numTimesteps: 4, cfgTextScale: 1, noise });
    assert.deepEqual(a.shape, [MICRO.vae.zChannels, 4, 4]);
    const b = generateImage(m, { gen, cfgText: newContext(m) }, { h: 2, w: 2, numTimesteps: 4, cfgTextScale: 1, noise });
    assert.ok(a.equal(b));
    const c = generateImage(m, { gen }, { h: 2, w: 2, numTimesteps: 4, cfgTextScale: 4, cfgInterval: [0, 1], noise });
    assert.ok(!a.equal(c));
  });
  gen.dispose();
  m.dispose();
});

test('generateImage: text and image CFG in one decoder pass equal a hand-rolled Euler loop of one latentVelocity per branch', () => {
  const m = model(6);
  torch.manualSeed(7);
  const image = torch.randn([MICRO.vae.zChannels, 4, 4]).keep();
  // the contexts of image editing (docs/method.md 4.4): cfgImg = texts only, cfgText = gen before its last text
  const cfgImg = newContext(m);
  prefillText(m, cfgImg, [3, 4]);
  const cfgText = newContext(m);
  prefillText(m, cfgText, [3, 4]);
  prefillVaeImage(m, cfgText, image);
  const gen = newContext(m);
  prefillText(m, gen, [3, 4]);
  prefillVaeImage(m, gen, image);
  prefillText(m, gen, [5, 6, 7]);
  const [h, w, steps, g, gi] = [2, 3, 6, 4, 1.5];
  torch.scope(() => {
    const noise = torch.randn([h * w, 4 * MICRO.vae.zChannels]);
    // guidance only for tau in (0.4, 1]: the grid of 6 steps without shift has steps on both sides
    const grid = timestepGrid(steps, 1);
    assert.ok(grid.slice(0, -1).some((t) => t <= 0.4) && grid.slice(0, -1).some((t) => t > 0.4));
    const norm = (t: torch.Tensor): number => t.pow(2).sum().sqrt().item();
    let x = noise;
    for (let j = 0; j < steps - 1; j++) {
      const tau = grid[j]!;
      const cond = latentVelocity(m, gen, x, tau, h, w);
      let v = cond;
      if (tau > 0.4) {
        const uText = latentVelocity(m, cfgText, x, tau, h, w);
        const uImg = latentVelocity(m, cfgImg, x, tau, h, w);
        const vText = uText.add(cond.sub(uText).mul(g));
        const vImg = uImg.add(vText.sub(uImg).mul(gi));
        v = vImg.mul(Math.min(Math.max(norm(cond) / (norm(vImg) + 1e-8), 0), 1));
      }
      x = x.add(v.mul(grid[j + 1]! - tau));
    }
    const want = unpatchify(x, h, w, 2, MICRO.vae.zChannels);
    const opts = { h, w, numTimesteps: steps, timestepShift: 1, cfgTextScale: g, cfgImgScale: gi, noise };
    const joint = generateImage(m, { gen, cfgText, cfgImg }, opts);
    const separate = generateImage(m, { gen, cfgText, cfgImg }, { ...opts, cfgPasses: 'separate' });
    const diff = (a: torch.Tensor, b: torch.Tensor): number => a.sub(b).abs().max().item();
    assert.ok(diff(joint, want) < 1e-5, `joint pass vs hand-rolled: ${diff(joint, want)}`);
    assert.ok(diff(separate, want) < 1e-5, `separate passes vs hand-rolled: ${diff(separate, want)}`);
    // the image branch matters (so three contexts were used), and the text-only case (two contexts) agrees too
    const textOnly = { ...opts, cfgImgScale: 1 };
    const t2 = generateImage(m, { gen, cfgText }, textOnly);
    assert.ok(diff(t2, joint) > 1e-4, 'image guidance changes the result');
    assert.ok(diff(t2, generateImage(m, { gen, cfgText }, { ...textOnly, cfgPasses: 'separate' })) < 1e-5, 'text CFG only');
    assert.throws(() => generateImage(m, { gen }, { ...opts, cfgPasses: 'batched' as 'joint' }), /cfgPasses must be 'joint' or 'separate', got batched/);
  });
  for (const c of [gen, cfgText, cfgImg]) c.dispose();
  image.dispose();
  m.dispose();
});

test('checkpoint: published key names round-trip bit-exactly; strict loads name the bad keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bagel-ckpt-'));
  try {
    const a = model(4);
    const b = model(5);
    const path = join(dir, 'model.safetensors');
    saveCheckpoint(path, a);
    const header = torch.safetensors.loadHeader(path);
    assert.ok(header.tensors.has('language_model.model.layers.0.self_attn.q_proj_moe_gen.weight'));
    assert.ok(header.tensors.has('vit_model.vision_model.embeddings.patch_embedding.weight'));
    assert.ok(header.tensors.has('latent_pos_embed.pos_embed'));
    const r = loadCheckpoint(path, b);
    assert.deepEqual([r.missing, r.unexpected, r.mismatched], [[], [], []]);
    torch.scope(() => {
      for (const [k, t] of a.stateDict()) assert.ok(t.equal(b.stateDict().get(k)!), k);
    });
    // a broken file: a key dropped and one renamed
    torch.scope(() => {
      const sd = a.stateDict();
      const w = sd.get('language_model.lm_head.weight')!;
      sd.delete('language_model.lm_head.weight');
      sd.set('language_model.lm_head.weights', w);
      sd.delete('connector.fc1.bias');
      torch.safetensors.save(join(dir, 'broken.safetensors'), sd);
    });
    assert.throws(() => loadCheckpoint(join(dir, 'broken.safetensors'), b),
      /missing keys \(2\): .*language_model\.lm_head\.weight.*connector\.fc1\.bias|missing keys \(2\): .*connector\.fc1\.bias.*language_model\.lm_head\.weight/s);
    const loose = loadCheckpoint(join(dir, 'broken.safetensors'), b, { strict: false });
    assert.deepEqual(loose.unexpected, ['language_model.lm_head.weights']);
    assert.equal(loose.missing.length, 2);
    // bf16 storage
    saveCheckpoint(join(dir, 'bf16.safetensors'), a, { dtype: 'bfloat16' });
    assert.equal(torch.safetensors.loadHeader(join(dir, 'bf16.safetensors')).tensors.get('vae2llm.weight')!.dtype, 'BF16');
    loadCheckpoint(join(dir, 'bf16.safetensors'), b);
    torch.scope(() => {
      const x = a.stateDict().get('vae2llm.weight')!;
      const y = b.stateDict().get('vae2llm.weight')!;
      assert.ok(x.sub(y).abs().max().item() < 1e-2 && !x.equal(y));
    });
    a.dispose();
    b.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
