// LoRA character folders over one base (docs/serving.md 10): two characters loaded through one
// registry hold one copy of the base (measured with torch.memory()), each replies exactly as when
// loaded alone, alternating between them stays exact, the base is never written to, and a folder
// pointed at another base is refused naming both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memory, ops, safetensors, scope } from '../../src/torch/index.js';
import { isAdapterKey } from '../../src/nn/index.js';
import { decodeSteps, newContext, prefillText } from '../../src/model/index.js';
import { CharacterModel, SharedBases, type ChatTurn } from '../../src/character/index.js';
import { expectedAdapterBytes, untrainedMicro as untrained, writeLoraCharacters } from './fixtures/lora-characters.js';

/** A base folder and two LoRA characters over it. */
async function fixture(work: string): Promise<{ baseDir: string; dirs: [string, string] }> {
  const baseDir = join(work, 'base');
  const dirs: [string, string] = [join(work, 'tessel'), join(work, 'pip')];
  await writeLoraCharacters(baseDir, dirs);
  return { baseDir, dirs };
}

async function greedyTokens(m: CharacterModel, prompt: string): Promise<number[]> {
  const ctx = newContext(m.model);
  try {
    prefillText(m.model, ctx, await m.encode(prompt));
    return [...decodeSteps(m.model, ctx, { temperature: 0, maxTokens: 12 })];
  } finally {
    ctx.dispose();
  }
}

const TURNS: ChatTurn[] = [{ role: 'user', content: [{ text: 'Where are you going with that parcel?' }] }];

async function replies(m: CharacterModel): Promise<{ greedy: number[]; sampled: string }> {
  const greedy = await greedyTokens(m, 'Hello there, courier');
  const sampled = (await m.chat(TURNS, { temperature: 0.9, seed: 5, maxTokens: 10 })).text;
  return { greedy, sampled };
}

test('two LoRA characters on one base: one copy of the base, exact replies, alternating requests, base untouched', async () => {
  const work = mkdtempSync(join(tmpdir(), 'shared-base-'));
  try {
    const { baseDir, dirs } = await fixture(work);
    // Each character alone (its own registry: the base loaded for it only).
    const alone = [];
    for (const dir of dirs) {
      const m = await CharacterModel.load(dir);
      alone.push(await replies(m));
      m.dispose();
    }
    const baseOnly = await CharacterModel.load(baseDir);
    const baseGreedy = await greedyTokens(baseOnly, 'Hello there, courier');
    baseOnly.dispose();
    assert.notDeepEqual(alone[0]!.greedy, alone[1]!.greedy, 'the two characters decode differently');
    assert.ok(alone.some((r) => JSON.stringify(r.greedy) !== JSON.stringify(baseGreedy)), 'the adapters change the base');

    const bases = new SharedBases();
    const m0 = memory().bytes;
    const a = await CharacterModel.load(dirs[0], { bases });
    const m1 = memory().bytes;
    const b = await CharacterModel.load(dirs[1], { bases });
    const m2 = memory().bytes;
    const adapterBytes = expectedAdapterBytes(a);
    const fileBytes = readFileSync(join(baseDir, 'model.safetensors')).length + readFileSync(join(baseDir, 'ae.safetensors')).length;
    // The first brings the base and its adapters; the second only its adapters.
    assert.equal(m2 - m1, adapterBytes, `second character added ${m2 - m1} bytes, its adapters are ${adapterBytes}`);
    assert.ok(m1 - m0 - adapterBytes > 0.9 * fileBytes && m1 - m0 - adapterBytes < 1.1 * fileBytes, `base ${m1 - m0 - adapterBytes} bytes vs files ${fileBytes}`);
    assert.equal(a.loaded!.memory.ownBytes, adapterBytes);
    assert.equal(b.loaded!.memory.ownBytes, adapterBytes);
    assert.equal(a.loaded!.memory.base!.key, b.loaded!.memory.base!.key);
    assert.equal(a.loaded!.memory.base!.bytes, m1 - m0 - adapterBytes);
    assert.deepEqual(bases.report().map((r) => r.users), [[...dirs].sort()]);

    // Alternating requests: each equals that character loaded alone.
    for (const m of [a, b, a, b]) assert.deepEqual(await replies(m), alone[m === a ? 0 : 1]);

    // The base in memory is still the file, bit for bit: adapters are never merged into it.
    scope(() => {
      const file = safetensors.load(join(baseDir, 'model.safetensors')).tensors;
      for (const [k, t] of b.model.stateDict()) {
        if (isAdapterKey(k) || !file.has(k)) continue;
        assert.ok(ops.equal(t, file.get(k)!), `${k} changed`);
      }
    });

    // Freeing one keeps the base for the other; freeing both frees it.
    const held = memory().bytes;
    a.dispose();
    const freed = held - memory().bytes; // its adapters and its UTF-8 masks, not the base
    assert.ok(freed >= adapterBytes && freed < adapterBytes + 0.1 * fileBytes, `freed ${freed} bytes`);
    assert.deepEqual(await replies(b), alone[1]);
    b.dispose();
    assert.equal(memory().bytes, m0);
    assert.deepEqual(bases.report(), []);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a LoRA folder over a different base is refused, naming the expected base and what was found', async () => {
  const work = mkdtempSync(join(tmpdir(), 'shared-base-bad-'));
  try {
    const { baseDir, dirs } = await fixture(work);
    const manifestPath = join(dirs[0], 'unicharacter.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const expected = manifest.base.model as { path: string; sha256: string; bytes: number };
    // Same size, other weights: another seed of the same model.
    const other = untrained(4);
    const otherDir = join(work, 'other');
    other.save(otherDir);
    other.dispose();
    const otherModel = join(otherDir, 'model.safetensors');
    cpSync(join(baseDir, 'model.safetensors'), join(work, 'copy.safetensors'));
    assert.equal(readFileSync(otherModel).length, expected.bytes, 'the other base has the same size');
    const point = (path: string): void => writeFileSync(manifestPath, JSON.stringify({ ...manifest, base: { ...manifest.base, model: { ...expected, path } } }));

    // The recorded base file replaced by other weights of the same size.
    const baseModel = join(baseDir, 'model.safetensors');
    cpSync(otherModel, baseModel);
    await assert.rejects(CharacterModel.load(dirs[0]), (e: Error) => {
      assert.ok(e.message.startsWith(`${dirs[0]}: this LoRA character needs the base model ${baseModel} (${expected.bytes} bytes, sha256 ${expected.sha256})`), e.message);
      assert.match(e.message, new RegExp(`but ${baseModel} has sha256 [0-9a-f]{64} \\(a different base of the same size\\)`));
      return true;
    });
    cpSync(join(work, 'copy.safetensors'), baseModel);
    // A file of another size is refused on its size, before any hashing.
    point(join(baseDir, 'ae.safetensors'));
    await assert.rejects(CharacterModel.load(dirs[0]), /ae\.safetensors has \d+ bytes/);
    point(join(work, 'missing.safetensors'));
    await assert.rejects(CharacterModel.load(dirs[0]), /missing\.safetensors does not exist/);
    // A byte-identical copy elsewhere is the same base.
    point(join(work, 'copy.safetensors'));
    const ok = await CharacterModel.load(dirs[0]);
    ok.dispose();
    // The adapter file must match the model's layers.
    writeFileSync(manifestPath, JSON.stringify(manifest));
    cpSync(join(baseDir, 'model.safetensors'), join(dirs[0], 'adapter.safetensors'));
    await assert.rejects(CharacterModel.load(dirs[0]), /adapter\.safetensors: .*unexpected keys/s);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
