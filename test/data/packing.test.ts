import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_RECIPES, Mixture, parseRecipe } from '../../src/data/mixture.js';
import { DEFAULT_PACKING, estimateTokens, measureSample, drawPacks, type MeasureContext, type Pack } from '../../src/data/packing.js';
import { buildTask } from '../../src/data/samples.js';
import { loadSampleCharacter } from '../../src/data/sample-character/load.js';

const { character } = loadSampleCharacter();
const ctx: MeasureContext = { countTokens: estimateTokens, imageSize: () => ({ width: 256, height: 256 }) };

test('a sample counts text tokens, image tokens by the method rules, and 2 per item', () => {
  const t2i = measureSample(buildTask(character, 't2i')[0]!, ctx);
  // 256² → VAE rule 512² → (512/16)² = 1024 latent tokens.
  assert.equal(t2i.numTokens, estimateTokens((t2i.plan.items[0] as { text: string }).text) + 1024);
  assert.equal(t2i.length, t2i.numTokens + 4);
  const vqa = measureSample(buildTask(character, 'vqa')[0]!, ctx);
  // 256² → ViT rule 378² → 27² = 729 patches.
  const [, q, a] = vqa.plan.items as { text: string }[];
  assert.equal(vqa.numTokens, 729 + estimateTokens(q!.text) + estimateTokens(a!.text));
});

function take(n: number, gen: Generator<Pack>): Pack[] {
  const out: Pack[] = [];
  for (const p of gen) {
    out.push(p);
    if (out.length === n) break;
  }
  return out;
}

test('packs respect max_num_tokens, hold every mandatory group, and reach expected_num_tokens', () => {
  const mix = new Mixture(parseRecipe(BUILTIN_RECIPES.full!), character);
  const cfg = { ...DEFAULT_PACKING, expectedNumTokens: 4096, maxNumTokens: 6144, maxNumTokensPerSample: 4096 };
  const packs = take(30, drawPacks(mix, ctx, cfg, 1));
  for (const p of packs) {
    assert.ok(p.length <= cfg.maxNumTokens, `pack of ${p.length}`);
    assert.equal(p.length, p.samples.reduce((n, s) => n + s.length, 0));
    assert.ok(p.samples.some((s) => s.plan.task.startsWith('t2i') || s.plan.task === 'pure_t2i'));
    assert.ok(p.samples.some((s) => !(s.plan.task.startsWith('t2i') || s.plan.task === 'pure_t2i')));
    for (const s of p.samples) assert.ok(s.length < cfg.maxNumTokensPerSample);
  }
  // Packs emitted on reaching the target are at least that long; only overflow emits shorter ones.
  assert.ok(packs.filter((p) => p.length >= cfg.expectedNumTokens).length > packs.length / 2);
});

test('samples over max_num_tokens_per_sample are skipped; packing is deterministic under a seed', () => {
  const mix = () => new Mixture(parseRecipe(BUILTIN_RECIPES.full!), character);
  const cfg = { ...DEFAULT_PACKING, expectedNumTokens: 3000, maxNumTokens: 4000, maxNumTokensPerSample: 1100 };
  const a = take(10, drawPacks(mix(), ctx, cfg, 3));
  for (const p of a) for (const s of p.samples) assert.ok(s.length < 1100);
  // Every T2I sample is > 1024 tokens + caption, so with this limit only text samples remain.
  assert.ok(a.every((p) => p.samples.every((s) => s.plan.task !== 't2i_with_thinking')));
  const b = take(10, drawPacks(mix(), ctx, cfg, 3));
  assert.deepEqual(a.map((p) => p.samples.map((s) => s.plan.source)), b.map((p) => p.samples.map((s) => s.plan.source)));
});
