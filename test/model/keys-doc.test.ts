// docs/bagel-7b-mot-keys.md is generated (scripts/docs-keys.ts) from the model classes built on
// the meta device; this keeps it in step with the code, and checks the facts it rests on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { withDefaultDevice } from '../../src/torch/index.js';
import { Bagel, BAGEL_7B_MOT, MICRO } from '../../src/model/index.js';
import { bagelKeysMarkdown } from '../../scripts/docs-keys.js';

test('docs/bagel-7b-mot-keys.md is what scripts/docs-keys.ts generates now', () => {
  const committed = readFileSync(new URL('../../../docs/bagel-7b-mot-keys.md', import.meta.url), 'utf8');
  assert.equal(committed, bagelKeysMarkdown(), 'regenerate with: npx tsc -p tsconfig.json && node dist/scripts/docs-keys.js');
});

test('the 7B preset on the meta device: 14.6 B parameters in 1223 tensors, published shapes', () => {
  const info = withDefaultDevice('meta', () => {
    const m = new Bagel(BAGEL_7B_MOT);
    const i = m.stateDictInfo();
    m.dispose();
    return i;
  });
  let n = 0;
  for (const [, v] of info) n += v.shape.reduce((a, b) => a * b, 1);
  assert.equal(info.size, 1223);
  assert.ok(n > 14.5e9 && n < 14.7e9, `${n} parameters`);
  // Qwen2-7B attention with 4 KV heads of 128, and the SigLIP-so400m MLP
  assert.deepEqual(info.get('language_model.model.layers.27.self_attn.k_proj_moe_gen.weight')?.shape, [512, 3584]);
  assert.deepEqual(info.get('language_model.model.layers.0.mlp_moe_gen.down_proj.weight')?.shape, [3584, 18944]);
  assert.deepEqual(info.get('vit_model.vision_model.encoder.layers.25.mlp.fc1.weight')?.shape, [4304, 1152]);
  assert.deepEqual(info.get('language_model.lm_head.weight')?.shape, [152064, 3584]);
});

test('meta-device construction names the same tensors with the same shapes as a real one', () => {
  const real = new Bagel(MICRO);
  const meta = withDefaultDevice('meta', () => new Bagel(MICRO));
  try {
    const a = [...real.stateDictInfo()].map(([k, v]) => [k, v.shape]);
    const b = [...meta.stateDictInfo()].map(([k, v]) => [k, v.shape]);
    assert.deepEqual(b, a);
    assert.equal(meta.parameters()[0]!.device, 'meta');
  } finally {
    real.dispose();
    meta.dispose();
  }
});
