// The published BAGEL folder layout (docs/method.md 4.1): llm_config.json, vit_config.json,
// ae.safetensors, ema.safetensors and tokenizer files, written by the test in exactly that layout
// with tiny configs and the published key names (the ViT patch embedding in its conv form, one
// ViT layer more than BAGEL builds, and the fixed sin-cos tables as the release stores them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { noGrad } from '../../src/torch/index.js';
import { AutoEncoder, Bagel, convPatchWeightToLinear, loadBagelFolder, readBagelFolderConfig, type ModelConfig } from '../../src/model/index.js';

const LLM_CONFIG = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_act: 'silu', tie_word_embeddings: false,
  hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48,
  rope_theta: 1000000.0, rms_norm_eps: 1e-6, vocab_size: 64, max_position_embeddings: 512,
};
const VIT_CONFIG = {
  model_type: 'siglip_vision_model', hidden_act: 'gelu_pytorch_tanh',
  hidden_size: 16, num_hidden_layers: 3, num_attention_heads: 2, intermediate_size: 24, patch_size: 14, image_size: 56,
  num_channels: 3, layer_norm_eps: 1e-6,
};
const SPECIAL = { '<|im_start|>': 60, '<|im_end|>': 61, '<|vision_start|>': 62, '<|vision_end|>': 63 };

const EXPECTED: ModelConfig = {
  name: '',
  llm: { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 48, rmsNormEps: 1e-6, ropeTheta: 1e6, maxPositionEmbeddings: 512 },
  // 3 + 1 + (-2) = 2 layers built; 56 / 14 = 4 patches per side
  vit: { hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 24, patchSize: 14, numChannels: 3, layerNormEps: 1e-6, maxNumPatchPerSide: 4 },
  vae: { inChannels: 3, outChannels: 3, ch: 32, chMult: [1, 2], numResBlocks: 1, zChannels: 4, scaleFactor: 0.3611, shiftFactor: 0.1159, normGroups: 32 },
  latentPatchSize: 2,
  maxLatentSize: 8,
  timestepFreqDim: 256,
  tokens: { bos: 60, eos: 61, startOfImage: 62, endOfImage: 63 },
};

/** Writes a tiny folder in the published layout from freshly initialised modules; returns them. */
function writeFolder(dir: string, o: { tamper?: (m: Map<string, torch.Tensor>) => void } = {}): { src: Bagel; vae: AutoEncoder } {
  writeFileSync(join(dir, 'llm_config.json'), JSON.stringify(LLM_CONFIG));
  writeFileSync(join(dir, 'vit_config.json'), JSON.stringify(VIT_CONFIG));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', added_tokens: Object.entries(SPECIAL).map(([content, id]) => ({ id, content, special: true })), model: { type: 'BPE', vocab: {} },
  }));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 512 }));
  torch.manualSeed(5);
  const src = new Bagel({ ...EXPECTED, name: 'src' });
  noGrad(() => src.llm2vae!.weight.normal_(0, 0.1));
  const vae = new AutoEncoder(EXPECTED.vae);
  torch.scope(() => {
    const sd = src.stateDict();
    // the SigLIP conv form [D, 3, 14, 14] whose (p, q, c) flattening is the Linear weight
    const key = 'vit_model.vision_model.embeddings.patch_embedding.weight';
    sd.set(key, sd.get(key)!.reshape([16, 14, 14, 3]).permute([0, 3, 1, 2]).contiguous());
    // the checkpoint holds num_hidden_layers ViT layers; BAGEL builds one fewer
    for (const [k, t] of [...sd]) {
      const m = /^vit_model\.vision_model\.encoder\.layers\.1\.(.*)$/.exec(k);
      if (m) sd.set(`vit_model.vision_model.encoder.layers.2.${m[1]}`, t.mul(0.5));
    }
    o.tamper?.(sd);
    torch.safetensors.save(join(dir, 'ema.safetensors'), sd);
    torch.safetensors.save(join(dir, 'ae.safetensors'), vae.stateDict());
  });
  return { src, vae };
}

test('loadBagelFolder reads the Qwen2 and SigLIP configs, the ae widths and the special tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'unichar-bagel-'));
  const { src, vae } = writeFolder(dir);
  const cfg = readBagelFolderConfig(dir, { maxLatentSize: 8 });
  assert.deepEqual({ ...cfg, name: '' }, EXPECTED);
  assert.equal(readBagelFolderConfig(dir, { vitSelectLayer: -1 }).vit.numLayers, 3, 'inference_grpo.py builds with -1');
  src.dispose();
  vae.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('loadBagelFolder loads ema.safetensors (conv patch embedding converted, extra ViT layer ignored) and ae.safetensors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'unichar-bagel-'));
  const { src, vae } = writeFolder(dir);
  const f = loadBagelFolder(dir, { maxLatentSize: 8 });
  assert.deepEqual(f.report.model.missing, []);
  assert.deepEqual(f.report.model.unexpected, []);
  assert.equal(f.report.model.ignored.length, 16, 'layer 2 of the ViT: 16 tensors');
  assert.ok(f.report.model.ignored.every((k) => k.startsWith('vit_model.vision_model.encoder.layers.2.')));
  assert.deepEqual(f.report.vae.missing, []);
  assert.ok(f.tokenizerPath?.endsWith('tokenizer.json'));
  torch.scope(() => noGrad(() => {
    const want = src.stateDict();
    for (const [k, t] of f.model.stateDict()) assert.equal(t.sub(want.get(k)!).abs().max().item(), 0, k);
    const wantVae = vae.stateDict();
    for (const [k, t] of f.vae.stateDict()) assert.equal(t.sub(wantVae.get(k)!).abs().max().item(), 0, k);
    // the conversion is the documented permutation of the conv weight
    const conv = want.get('vit_model.vision_model.embeddings.patch_embedding.weight')!.reshape([16, 14, 14, 3]).permute([0, 3, 1, 2]);
    assert.equal(convPatchWeightToLinear(conv).sub(f.model.vit_model!.vision_model.embeddings.patch_embedding.weight).abs().max().item(), 0);
    const img = torch.rand([16, 14 * 14 * 3]);
    const ids = torch.tensor([0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15], { dtype: 'int64' });
    assert.equal(f.model.embedVit(img, ids, [16]).sub(src.embedVit(img, ids, [16])).abs().max().item(), 0);
  }));
  f.model.dispose();
  f.vae.dispose();
  // dtype conversion
  const h = loadBagelFolder(dir, { maxLatentSize: 8, dtype: 'bfloat16' });
  assert.equal(h.model.language_model.lm_head.weight.dtype, 'bfloat16');
  assert.equal(h.vae.decoder.conv_out.weight.dtype, 'bfloat16');
  h.model.dispose();
  h.vae.dispose();
  src.dispose();
  vae.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('loadBagelFolder rejects a broken folder with the offending keys and files named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'unichar-bagel-'));
  const { src, vae } = writeFolder(dir, {
    tamper: (sd) => {
      sd.delete('language_model.model.layers.1.mlp_moe_gen.down_proj.weight');
      sd.set('language_model.model.layers.9.self_attn.q_proj.weight', torch.zeros([2, 2]));
      sd.set('language_model.lm_head.weight', torch.zeros([63, 32]));
    },
  });
  assert.throws(() => loadBagelFolder(dir, { maxLatentSize: 8 }), (e: Error) =>
    /missing keys \(1\): language_model\.model\.layers\.1\.mlp_moe_gen\.down_proj\.weight/.test(e.message)
    && /unexpected keys \(1\): language_model\.model\.layers\.9\.self_attn\.q_proj\.weight/.test(e.message)
    && /size mismatch for language_model\.lm_head\.weight: checkpoint has \[63, 32\], module has \[64, 32\]/.test(e.message));
  const loose = loadBagelFolder(dir, { maxLatentSize: 8, strict: false });
  assert.deepEqual(loose.report.model.missing, ['language_model.model.layers.1.mlp_moe_gen.down_proj.weight']);
  assert.deepEqual(loose.report.model.unexpected, ['language_model.model.layers.9.self_attn.q_proj.weight']);
  assert.deepEqual(loose.report.model.mismatched.map((x) => x.key), ['language_model.lm_head.weight']);
  loose.model.dispose();
  loose.vae.dispose();
  // a config field missing, a file missing
  writeFileSync(join(dir, 'llm_config.json'), JSON.stringify({ ...LLM_CONFIG, num_key_value_heads: 'two' }));
  assert.throws(() => loadBagelFolder(dir), /llm_config\.json: field 'num_key_value_heads' is not a number/);
  const { hidden_size: _h, ...noHidden } = VIT_CONFIG;
  writeFileSync(join(dir, 'llm_config.json'), JSON.stringify(LLM_CONFIG));
  writeFileSync(join(dir, 'vit_config.json'), JSON.stringify(noHidden));
  assert.throws(() => loadBagelFolder(dir), /vit_config\.json: field 'hidden_size' is missing/);
  writeFileSync(join(dir, 'vit_config.json'), JSON.stringify(VIT_CONFIG));
  unlinkSync(join(dir, 'ae.safetensors'));
  assert.throws(() => loadBagelFolder(dir), /ae\.safetensors is missing/);
  src.dispose();
  vae.dispose();
  rmSync(dir, { recursive: true, force: true });
});
