// The character model folder: save/load round trip reproduces generation exactly; reply,
// image and rolePlay produce what they promise; bad folders give errors naming the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MICRO } from '../../src/model/index.js';
import { loadSampleCharacter, imageSize } from '../../src/data/index.js';
import { CharacterModel } from '../../src/character/index.js';

function build(): CharacterModel {
  const { character } = loadSampleCharacter();
  const texts = [character.description, character.profile, ...character.dialogue.slice(0, 10).map((s) => `${s.user} ${s.reply}`)];
  return CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 3, texts });
}

test('save and load reproduce greedy replies and seeded images exactly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'charmodel-'));
  const a = build();
  try {
    const replyA = await a.generateText('Hello there', { maxTokens: 12 });
    const imageA = await a.image('Tessel on a hill', { numTimesteps: 4, seed: 11 });
    const size = await imageSize(imageA);
    assert.deepEqual([size.width, size.height, size.format], [32, 32, 'png']);
    a.save(join(dir, 'tessel'));
    const b = await CharacterModel.load(join(dir, 'tessel'));
    try {
      assert.equal(await b.generateText('Hello there', { maxTokens: 12 }), replyA);
      assert.deepEqual(await b.image('Tessel on a hill', { numTimesteps: 4, seed: 11 }), imageA);
      assert.equal(b.character.names.display, 'Tessel');
    } finally {
      b.dispose();
    }
  } finally {
    a.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('streamed pieces join up to the reply; aborts stop generation', async () => {
  const m = build();
  try {
    const pieces: string[] = [];
    const text = await m.reply('Where are you going?', { maxTokens: 10, temperature: 0, onText: (p) => pieces.push(p) });
    assert.equal(pieces.join(''), text);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(m.reply('Hi', { maxTokens: 50, signal: ac.signal, temperature: 0 }), { name: 'AbortError' });
    const both = await m.rolePlay('Show me your scarf', { maxTokens: 6, temperature: 0, image: { numTimesteps: 3, seed: 1 } });
    assert.equal(typeof both.reply, 'string');
    assert.equal((await imageSize(both.image)).width, 32);
  } finally {
    m.dispose();
  }
});

test('a folder with a missing or broken file is refused with the file named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'charmodel-'));
  const m = build();
  try {
    m.save(join(dir, 'c'));
    unlinkSync(join(dir, 'c', 'ae.safetensors'));
    await assert.rejects(CharacterModel.load(join(dir, 'c')), /ae\.safetensors is missing/);
    m.save(join(dir, 'c'));
    writeFileSync(join(dir, 'c', 'unicharacter.json'), '{oops');
    await assert.rejects(CharacterModel.load(join(dir, 'c')), /unicharacter\.json: .*JSON/);
  } finally {
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
