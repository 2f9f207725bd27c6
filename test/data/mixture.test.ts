import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_RECIPES, Mixture, parseRecipe } from '../../src/data/mixture.js';
import { loadSampleCharacter } from '../../src/data/sample-character/load.js';

const { character } = loadSampleCharacter();

test('built-in recipes parse with the docs/method.md 2.5 weights', () => {
  const full = parseRecipe(BUILTIN_RECIPES.full!);
  assert.deepEqual(full.groups.t2i_pretrain!.tasks, ['t2i', 't2i_with_thinking', 'pure_t2i']);
  assert.equal(full.groups.t2i_pretrain!.weight, 20000);
  assert.equal(full.groups.vlm_sft!.weight, 1);
  assert.equal(parseRecipe(BUILTIN_RECIPES.base!).groups.t2i_pretrain!.weight, 8000);
  assert.ok(Object.values(full.groups).every((g) => g.is_mandatory));
});

test('bad recipes are rejected with the failing path', () => {
  assert.throws(() => parseRecipe('name: x\ngroups:\n  g: { tasks: [nope], weight: 1 }\n'), /groups\.g\.tasks\.0/);
  assert.throws(() => parseRecipe('name: x\ngroups:\n  g: { tasks: [vlm, vqa], weight: 1, num_used_data: [3] }\n'), /num_used_data/);
  assert.throws(() => parseRecipe('name: x\ngroups: {}\n'), /at least one group/);
  assert.throws(() => parseRecipe('name: [unclosed'), /invalid YAML/);
});

test('caps limit each task; streams are deterministic under the seed and cycle through every record', () => {
  const recipe = parseRecipe('name: t\nseed: 7\ngroups:\n  vlm_sft: { tasks: [knowledge_qa, vqa], weight: 1, num_used_data: [5, 3], shuffle_lines: true }\n');
  const a = new Mixture(recipe, character).streams[0]!;
  assert.equal(a.records.length, 8);
  const b = new Mixture(recipe, character).streams[0]!;
  const seqA = Array.from({ length: 24 }, () => a.next().source);
  const seqB = Array.from({ length: 24 }, () => b.next().source);
  assert.deepEqual(seqA, seqB);
  assert.equal(new Set(seqA.slice(0, 8)).size, 8); // one epoch visits each record once
  assert.notDeepEqual(seqA.slice(0, 8), seqA.slice(8, 16)); // reshuffled per epoch
  const other = new Mixture({ ...recipe, seed: 8 }, character).streams[0]!;
  assert.notDeepEqual(Array.from({ length: 8 }, () => other.next().source), seqA.slice(0, 8));
});
