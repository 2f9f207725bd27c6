// Character model folders under hostile input (issue 20, "What to build" 6): seeded, bounded
// mutations of a small saved folder (the manifest's JSON and values, the safetensors headers and
// bytes, character.json, tokenizer.json, missing files) load or fail with an error naming the
// file, never a crash, a JavaScript error, a leaked tensor or a huge allocation; a manifest that
// declares a huge model is refused before it is allocated (test/fuzz/fuzz.ts for the knobs).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { MICRO } from '../../src/model/index.js';
import { loadSampleCharacter, type Rng } from '../../src/data/index.js';
import { CHARACTER_MODEL_FILES, CharacterModel } from '../../src/character/index.js';
import { JS_INTERNALS, fuzz, mutateBytes, swapValue } from '../fuzz/fuzz.js';

const root = mkdtempSync(join(tmpdir(), 'uc-model-fuzz-'));
const dir = join(root, 'model');
const FILES = Object.values(CHARACTER_MODEL_FILES);
let pristine: Map<string, Buffer>;

before(() => {
  const { character } = loadSampleCharacter();
  const texts = [character.description, character.profile, ...character.dialogue.slice(0, 10).map((s) => `${s.user} ${s.reply}`)];
  const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
  m.save(dir);
  m.dispose();
  pristine = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
  assert.deepEqual([...pristine.keys()].sort(), [...FILES].sort());
});
after(() => rmSync(root, { recursive: true, force: true }));

function restore(): void {
  for (const [f, b] of pristine) writeFileSync(join(dir, f), b);
}

const manifestJson = (): Record<string, any> => JSON.parse(pristine.get(CHARACTER_MODEL_FILES.manifest)!.toString('utf8')) as Record<string, any>;

/** Byte flips inside a safetensors file's JSON header (where a flip changes meaning, not weights). */
function mutateHeader(rng: Rng, bytes: Uint8Array): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const out = new Uint8Array(bytes);
  const flipped = mutateBytes(rng, out.subarray(0, 8 + n));
  out.set(flipped.subarray(0, Math.min(flipped.length, 8 + n)));
  return rng.next() < 0.1 ? out.subarray(0, rng.int(out.length)) : out;
}

/** Dims raised within the manifest schema's bounds: a model of many GiB declared over small files. */
function hugeDeclaration(rng: Rng, m: Record<string, any>): Record<string, any> {
  const c = m.modelConfig;
  const pick = rng.int(5);
  if (pick === 0) c.llm.numLayers = 256;
  else if (pick === 1) Object.assign(c.llm, { hiddenSize: 65536, headDim: 4096, numHeads: 16, numKvHeads: 16 });
  else if (pick === 2) c.llm.intermediateSize = 1 << 18;
  else if (pick === 3) Object.assign(c.vae, { ch: 4096, normGroups: 32 });
  // Position tables of 1024 x 1024 rows: 16 GiB in JavaScript before any tensor exists.
  else Object.assign(c, { maxLatentSize: 1024 }, { llm: { ...c.llm, hiddenSize: 4096 } });
  return m;
}

/** One seeded mutation of the folder; returns what it did, for messages. */
function mutate(rng: Rng): string {
  const kind = rng.int(7);
  const manifestPath = join(dir, CHARACTER_MODEL_FILES.manifest);
  if (kind === 0) {
    writeFileSync(manifestPath, JSON.stringify(swapValue(rng, manifestJson())));
    return 'manifest value swapped';
  }
  if (kind === 1) {
    writeFileSync(manifestPath, mutateBytes(rng, pristine.get(CHARACTER_MODEL_FILES.manifest)!));
    return 'manifest bytes';
  }
  if (kind === 2) {
    writeFileSync(manifestPath, JSON.stringify(hugeDeclaration(rng, manifestJson())));
    return 'manifest declares a huge model';
  }
  if (kind === 3) {
    const f = rng.next() < 0.5 ? CHARACTER_MODEL_FILES.model : CHARACTER_MODEL_FILES.vae;
    const header = rng.next() < 0.8;
    writeFileSync(join(dir, f), header ? mutateHeader(rng, pristine.get(f)!) : mutateBytes(rng, pristine.get(f)!, 16));
    return `${f} ${header ? 'header' : 'bytes'}`;
  }
  if (kind === 4) {
    const f = rng.next() < 0.5 ? CHARACTER_MODEL_FILES.character : CHARACTER_MODEL_FILES.tokenizer;
    const text = pristine.get(f)!;
    writeFileSync(join(dir, f), rng.next() < 0.5 ? JSON.stringify(swapValue(rng, JSON.parse(text.toString('utf8')))) : mutateBytes(rng, text));
    return `${f} mutated`;
  }
  if (kind === 5) {
    const f = FILES[rng.int(FILES.length)]!;
    unlinkSync(join(dir, f));
    return `${f} missing`;
  }
  // A model file of the right name from another folder: the VAE's weights as the model's.
  writeFileSync(join(dir, CHARACTER_MODEL_FILES.model), pristine.get(CHARACTER_MODEL_FILES.vae)!);
  return 'ae.safetensors as model.safetensors';
}

test('fuzz: mutated model folders load or fail naming the file, with no crash, leak or huge allocation', async () => {
  const start = torch.memory().tensors;
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  let refused = 0;
  let loaded = 0;
  const n = await fuzz(40, async ({ rng, label }) => {
    restore();
    const what = mutate(rng);
    const t0 = performance.now();
    try {
      const m = await CharacterModel.load(dir);
      loaded++;
      m.dispose();
    } catch (e) {
      refused++;
      assert.ok(e instanceof Error, `${label} (${what}): threw ${String(e)}`);
      assert.ok(e.message.startsWith(dir), `${label} (${what}): the message does not name the folder's file: ${e.message}`);
      assert.ok(FILES.some((f) => e.message.includes(f)), `${label} (${what}): the message names no file: ${e.message}`);
      assert.doesNotMatch(e.message, JS_INTERNALS, `${label} (${what})`);
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 5000, `${label} (${what}): ${ms.toFixed(0)} ms`);
    peak = Math.max(peak, process.memoryUsage().rss);
  });
  assert.ok(refused > n / 2 && loaded > 0, `most mutations are refused, some load (${refused} refused, ${loaded} loaded of ${n})`);
  assert.equal(torch.memory().tensors, start, 'no tensor leaked');
  // The pristine MICRO model is a few MB; a declared huge model would be GiBs.
  assert.ok(peak - rss0 < 300 * 2 ** 20, `RSS grew ${((peak - rss0) / 2 ** 20).toFixed(0)} MB`);
});

test('a manifest that declares a huge model is refused before allocating, naming the manifest and the sizes', async () => {
  restore();
  const m = manifestJson();
  Object.assign(m.modelConfig.llm, { numLayers: 256, intermediateSize: 1 << 18 });
  writeFileSync(join(dir, CHARACTER_MODEL_FILES.manifest), JSON.stringify(m));
  const rss0 = process.memoryUsage().rss;
  await assert.rejects(CharacterModel.load(dir), (e: Error) => {
    // 256 layers with MLPs of 2^18 in both experts: about 100 GiB, against a file of a few MB.
    assert.match(e.message, new RegExp(`^${join(dir, 'unicharacter.json').replace(/[.\\/]/g, '\\$&')}: declares a model of \\d+\\.\\d GiB in model\\.safetensors, but that file holds 0\\.\\d+ GiB of weights; refused before allocating it$`));
    return true;
  });
  // Position tables of 1024 x 1024 x 4096 (16 GiB) are refused from their closed-form size.
  Object.assign(m.modelConfig, { maxLatentSize: 1024 });
  Object.assign(m.modelConfig.llm, { hiddenSize: 4096, headDim: 256 });
  writeFileSync(join(dir, CHARACTER_MODEL_FILES.manifest), JSON.stringify(m));
  await assert.rejects(CharacterModel.load(dir), /unicharacter\.json: declares a model of at least 16\.0 GiB in model\.safetensors/);
  assert.ok(process.memoryUsage().rss - rss0 < 100 * 2 ** 20);
});

test('manifest values outside their bounds are refused naming the field', async () => {
  const cases: [(m: Record<string, any>) => void, RegExp][] = [
    [(m) => (m.modelConfig.llm.numLayers = 1e9), /modelConfig\.llm\.numLayers: Number must be less than or equal to 256/],
    [(m) => (m.modelConfig.llm.vocabSize = -1), /modelConfig\.llm\.vocabSize: Number must be greater than or equal to 1/],
    [(m) => (m.modelConfig.vae.chMult = 'wide'), /modelConfig\.vae\.chMult: Expected array, received string/],
    [(m) => delete m.modelConfig, /modelConfig: Required/],
    [(m) => (m.format = 2), /format: unknown character model format \(this program reads format 1\)/],
    [(m) => (m.modelConfig.llm.headDim = 15), /llm\.headDim 15 must be even/],
  ];
  for (const [edit, want] of cases) {
    restore();
    const m = manifestJson();
    edit(m);
    writeFileSync(join(dir, CHARACTER_MODEL_FILES.manifest), JSON.stringify(m));
    await assert.rejects(CharacterModel.load(dir), (e: Error) => e.message.startsWith(join(dir, 'unicharacter.json') + ': ') && want.test(e.message), String(want));
  }
});

test('a tokenizer larger than the model vocabulary and a broken character.json are refused naming the file', async () => {
  restore();
  const m = manifestJson();
  // The tokenizer has 300 ids; a model of 200 cannot embed them.
  m.modelConfig.llm.vocabSize = 200;
  Object.assign(m.modelConfig.tokens, { bos: 196, eos: 197, startOfImage: 198, endOfImage: 199 });
  writeFileSync(join(dir, CHARACTER_MODEL_FILES.manifest), JSON.stringify(m));
  await assert.rejects(CharacterModel.load(dir), { message: `${join(dir, 'tokenizer.json')}: 300 tokens, more than the model's vocabulary of 200 (unicharacter.json llm.vocabSize)` });
  restore();
  const c = JSON.parse(pristine.get(CHARACTER_MODEL_FILES.character)!.toString('utf8')) as Record<string, any>;
  c.dialogue = 'none';
  writeFileSync(join(dir, CHARACTER_MODEL_FILES.character), JSON.stringify(c));
  await assert.rejects(CharacterModel.load(dir), (e: Error) => e.message.startsWith(`${join(dir, 'character.json')}: dialogue: `));
});
