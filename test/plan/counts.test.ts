import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyLoRA } from '../../src/nn/index.js';
import { AutoEncoder, Bagel, SMALL, TINY, BAGEL_7B_MOT, type ModelConfig } from '../../src/model/index.js';
import { countParameters } from '../../src/plan/index.js';

const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_proj_moe_gen', 'k_proj_moe_gen', 'v_proj_moe_gen', 'o_proj_moe_gen'];

/** Counts of a model really allocated on the CPU: trained parameters, and frozen ones plus buffers. */
function realCounts(c: ModelConfig, lora: boolean): { trainable: number; frozen: number; vae: number } {
  const m = new Bagel(c);
  const vae = new AutoEncoder(c.vae);
  try {
    if (lora) applyLoRA(m, { targets: TARGETS, r: 8 });
    const buffers = (x: { namedBuffers(): [string, { numel: number }][] }): number => x.namedBuffers().reduce((a, [, b]) => a + b.numel, 0);
    return {
      trainable: m.numParameters({ trainableOnly: true }),
      frozen: m.numParameters() - m.numParameters({ trainableOnly: true }) + buffers(m),
      vae: vae.numParameters() + buffers(vae),
    };
  } finally {
    m.dispose();
    vae.dispose();
  }
}

test('meta-device counts equal the really built tiny and small models (full and LoRA)', () => {
  for (const c of [TINY, SMALL]) {
    for (const lora of [false, true]) {
      const got = countParameters(c, lora ? { r: 8, targets: TARGETS } : null);
      assert.deepEqual({ trainable: got.trainable, frozen: got.frozen, vae: got.vae }, realCounts(c, lora), `${c.name} lora=${lora}`);
    }
  }
});

test('one tiny decoder layer has the hand-counted 1,181,824 parameters', () => {
  // per expert: q 256*256+256, k and v 256*128+128 each, o 256*256, q_norm and k_norm 32 each,
  // MLP 3*256*512, two RMSNorms of 256: 590,912; both experts: 1,181,824
  const perExpert = 256 * 256 + 256 + 2 * (256 * 128 + 128) + 256 * 256 + 64 + 3 * 256 * 512 + 2 * 256;
  const c = countParameters(TINY);
  assert.equal(perExpert, 590_912);
  for (const u of c.units.filter((u) => u.name.startsWith('layer '))) assert.equal(u.trainable, 2 * perExpert, u.name);
  assert.equal(c.units.length, TINY.llm.numLayers + 2);
  // head: two final norms, lm_head 256x512, llm2vae 256->16 with bias
  assert.equal(c.units.at(-1)!.trainable, 2 * 256 + 256 * 512 + 256 * 16 + 16);
});

test('the published size counts 14.6 B parameters, small a few hundred million', () => {
  const big = countParameters(BAGEL_7B_MOT);
  assert.ok(Math.abs(big.trainable + big.frozen - 14.6e9) < 0.05e9, `${big.trainable + big.frozen}`);
  const small = countParameters(SMALL);
  const n = small.trainable + small.frozen;
  assert.ok(n > 2e8 && n < 5e8, `small has ${n}`);
  const tiny = countParameters(TINY);
  assert.ok(tiny.trainable * 10 < small.trainable && small.trainable * 10 < big.trainable);
});
