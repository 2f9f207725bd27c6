// The FLUX VAE and the SigLIP ViT with its connector (docs/method.md 1.3-1.4): key names, shapes,
// posterior sampling with scale/shift, the conv -> Linear(588) patch order, and no attention
// across packed images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { noGrad, ops, tensor } from '../../src/torch/index.js';
import { AutoEncoder, Bagel, convPatchWeightToLinear, patchify, SiglipVisionModel, MICRO, BAGEL_7B_MOT } from '../../src/model/index.js';

test('VAE: FLUX key names, shapes, posterior sampled (not its mean), scale and shift', () => {
  torch.manualSeed(0);
  const vae = new AutoEncoder(MICRO.vae);
  const keys = new Set(vae.stateDictInfo().keys());
  for (const k of ['encoder.conv_in.weight', 'encoder.down.0.block.0.norm1.weight', 'encoder.down.1.block.0.nin_shortcut.weight',
    'encoder.down.0.downsample.conv.weight', 'encoder.mid.attn_1.q.weight', 'encoder.mid.block_2.conv2.bias', 'encoder.norm_out.weight',
    'encoder.conv_out.weight', 'decoder.conv_in.weight', 'decoder.up.2.block.1.conv1.weight', 'decoder.up.1.upsample.conv.weight',
    'decoder.mid.attn_1.proj_out.weight', 'decoder.conv_out.bias']) assert.ok(keys.has(k), k);
  assert.ok(!keys.has('encoder.down.2.downsample.conv.weight') && !keys.has('decoder.up.0.upsample.conv.weight'));
  torch.scope(() => noGrad(() => {
    const x = torch.rand([1, 3, 16, 16]).mul(2).sub(1);
    const moments = vae.encoder.forward(x);
    assert.deepEqual(moments.shape, [1, 2 * MICRO.vae.zChannels, 4, 4]);
    const [mean] = moments.chunk(2, 1) as [torch.Tensor];
    const zMean = vae.encode(x, { sample: false });
    const want = mean.sub(MICRO.vae.shiftFactor).mul(MICRO.vae.scaleFactor);
    assert.ok(zMean.sub(want).abs().max().item() < 1e-6);
    const z1 = vae.encode(x);
    const z2 = vae.encode(x);
    assert.ok(z1.sub(z2).abs().max().item() > 1e-3, 'two encodes draw different samples');
    assert.deepEqual(vae.decode(z1).shape, [1, 3, 16, 16]);
    const unit = vae.decodeToUnit(z1);
    assert.ok(unit.min().item() >= 0 && unit.max().item() <= 1);
  }));
  // the 7B preset: downsample 8, z 16
  assert.equal(2 ** (BAGEL_7B_MOT.vae.chMult.length - 1), 8);
  vae.dispose();
});

test('ViT patch embedding as Linear(588) in (p, q, c) order equals the conv', () => {
  torch.manualSeed(1);
  torch.scope(() => noGrad(() => {
    const conv = torch.randn([5, 3, 14, 14]);
    const bias = torch.randn([5]);
    const img = torch.randn([3, 28, 42]);
    const viaConv = ops.conv2d(img.unsqueeze(0), conv, bias, [14, 14], [0, 0], [1, 1], 1) // [1, 5, 2, 3]
      .squeeze(0).reshape([5, 6]).t();
    const viaLinear = ops.linear(patchify(img, 14), convPatchWeightToLinear(conv), bias);
    assert.ok(viaConv.sub(viaLinear).abs().max().item() < 1e-4);
  }));
});

test('ViT: SigLIP key names; packed images do not attend to each other', () => {
  torch.manualSeed(2);
  const vit = new SiglipVisionModel(MICRO.vit);
  const keys = new Set(vit.stateDictInfo().keys());
  for (const k of ['vision_model.embeddings.patch_embedding.weight', 'vision_model.embeddings.position_embedding.weight',
    'vision_model.encoder.layers.1.self_attn.out_proj.bias', 'vision_model.encoder.layers.0.layer_norm1.weight',
    'vision_model.encoder.layers.0.mlp.fc2.weight', 'vision_model.post_layernorm.bias']) assert.ok(keys.has(k), k);
  assert.deepEqual(vit.vision_model.embeddings.patch_embedding.weight.shape, [MICRO.vit.hiddenSize, 588]);
  torch.scope(() => noGrad(() => {
    const ids = tensor([0, 1, 16, 17, 0, 1, 2, 3]);
    const patches = torch.randn([8, 588]);
    const out1 = vit.forward(patches, ids, [4, 4]);
    const changed = patches.clone();
    changed.narrow(0, 4, 4).mul_(3);
    const out2 = vit.forward(changed, ids, [4, 4]);
    assert.ok(out1.narrow(0, 0, 4).sub(out2.narrow(0, 0, 4)).abs().max().item() === 0);
    assert.ok(out1.narrow(0, 4, 4).sub(out2.narrow(0, 4, 4)).abs().max().item() > 1e-3);
  }));
  vit.dispose();
});

test('Bagel: top-level key prefixes of the published checkpoint', () => {
  torch.manualSeed(3);
  const model = new Bagel(MICRO);
  const prefixes = new Set([...model.stateDictInfo().keys()].map((k) => k.split('.')[0]));
  assert.deepEqual([...prefixes].sort(), ['connector', 'language_model', 'latent_pos_embed', 'llm2vae', 'time_embedder', 'vae2llm', 'vit_model', 'vit_pos_embed']);
  const info = model.stateDictInfo();
  assert.deepEqual(info.get('latent_pos_embed.pos_embed')!.shape, [MICRO.maxLatentSize ** 2, MICRO.llm.hiddenSize]);
  assert.deepEqual(info.get('vit_pos_embed.pos_embed')!.shape, [MICRO.vit.maxNumPatchPerSide ** 2, MICRO.llm.hiddenSize]);
  assert.deepEqual(info.get('vae2llm.weight')!.shape, [MICRO.llm.hiddenSize, 16]);
  assert.ok(info.has('connector.fc1.weight') && info.has('connector.fc2.bias') && info.has('time_embedder.mlp.2.weight'));
  assert.ok(info.has('language_model.lm_head.weight'));
  model.dispose();
});
