// The sample character regenerates byte-identically, and reading it back gives the Character
// it was written from (docs/architecture.md "The sample character").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { writeSampleCharacter, imageSeed } from '../../../src/data/sample-character/write.js';
import { renderPng } from '../../../src/data/sample-character/draw.js';
import { TRAIN_IMAGES, TEST_IMAGES } from '../../../src/data/sample-character/content.js';
import { buildSampleCharacter } from '../../../src/data/sample-character/build.js';
import { loadSampleCharacter } from '../../../src/data/sample-character/load.js';
import { SAMPLE_ROOT, SAMPLE_FOLDER } from '../../../src/data/sample-character/paths.js';

function files(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

test('each committed image equals a fresh rendering, byte for byte', async () => {
  for (const [split, list] of [['train', TRAIN_IMAGES], ['test', TEST_IMAGES]] as const) {
    for (let i = 0; i < list.length; i++) {
      const fresh = await renderPng(list[i]!.spec, imageSeed(split, i));
      const onDisk = readFileSync(join(SAMPLE_ROOT, split, SAMPLE_FOLDER, `${i}.png`));
      assert.ok(Buffer.from(fresh).equals(onDisk), `${split}/${i}.png differs`);
    }
  }
});

test('the whole sample folder regenerates byte-identically', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sample-'));
  try {
    await writeSampleCharacter(tmp);
    const committed = files(SAMPLE_ROOT).filter((f) => /^(train|test|grpo)\//.test(f));
    assert.deepEqual(files(tmp), committed);
    for (const f of committed) assert.ok(readFileSync(join(tmp, f)).equals(readFileSync(join(SAMPLE_ROOT, f))), f);
  } finally {
    rmSync(tmp, { recursive: true });
  }
});

test('the reader loads the sample without errors and gives back the written character', () => {
  const { character, warnings } = loadSampleCharacter();
  assert.deepEqual(warnings, []);
  const strip = <T extends { path?: string }>(xs: T[]) => xs.map(({ path: _p, ...rest }) => rest);
  const want = buildSampleCharacter();
  assert.deepEqual({ ...character, referenceImages: strip(character.referenceImages), tests: { ...character.tests, heldOutImages: strip(character.tests.heldOutImages) } }, want);
});

test('the sample meets the issue minimums', () => {
  const c = buildSampleCharacter();
  assert.ok(c.scenes.length + c.dialogue.length >= 40);
  assert.ok(c.referenceImages.length + c.tests.heldOutImages.length >= 12);
  assert.ok(c.referenceImages.length >= 12);
  assert.ok(c.tests.heldOutImages.length >= 3);
  assert.ok(c.knowledgeQa.length > 0 && c.tests.knowledgeMcq.length > 0 && c.vqa.length > 0 && c.t2iPrompts.every((p) => p.checklist.length > 0));
  // Distinct poses, expressions and places across the images.
  const specs = [...TRAIN_IMAGES, ...TEST_IMAGES].map((s) => s.spec);
  assert.ok(new Set(specs.map((s) => s.pose)).size >= 5);
  assert.ok(new Set(specs.map((s) => s.expression)).size >= 5);
  assert.ok(new Set(specs.map((s) => s.place)).size >= 8);
  assert.equal(new Set(specs.map((s) => JSON.stringify(s))).size, specs.length);
});
