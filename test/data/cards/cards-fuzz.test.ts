// Seeded fuzz of card import (test/fuzz/fuzz.ts for the knobs): byte flips of PNG, JSON and CHARX
// cards, and JSON cards with values swapped for values of other types. Every outcome is a
// character that exports again, or a DataError naming the file in words (no JavaScript internals).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { importCard, exportCard } from '../../../src/data/cards/index.js';
import { DataError } from '../../../src/data/diagnostics.js';
import { emptyCharacter, type Character } from '../../../src/data/character.js';
import { JS_INTERNALS, fuzz, mutateBytes, swapValue } from '../../fuzz/fuzz.js';

const img = new Uint8Array(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#884422' } }).png().toBuffer());
const base: Character = { ...emptyCharacter('Fuzz'), description: 'd', opening: 'hi', referenceImages: [{ id: 'r0', data: img }] };
const cards = {
  png: await exportCard(base, 'png', { heldOut: 'include' }),
  json: await exportCard(base, 'json', { heldOut: 'include' }),
  charx: await exportCard(base, 'charx', { heldOut: 'include' }),
  v2: await exportCard(base, 'json', { heldOut: 'include', spec: 'v2' }),
};

/** Reads `bytes` as `file`; a refusal must be a DataError that names the file in plain words. */
async function readsOrNames(bytes: Uint8Array, file: string, label: string): Promise<'read' | 'refused'> {
  let character: Character;
  try {
    character = importCard(bytes, { file }).character;
  } catch (e) {
    assert.ok(e instanceof DataError, `${label}: ${String(e)}`);
    assert.equal(e.file, file, label);
    assert.ok(e.message.startsWith(`${file}:`) || e.message.startsWith(`${file} `), `${label}: ${e.message}`);
    assert.doesNotMatch(e.message, JS_INTERNALS, label);
    return 'refused';
  }
  // What was read is a character the project can write again.
  await exportCard(character, 'json', { heldOut: 'include' });
  return 'read';
}

test('fuzz: byte flips of PNG, JSON and CHARX cards read or are refused naming the file', async () => {
  const seen = { read: 0, refused: 0 };
  await fuzz(150, async ({ rng, label }) => {
    for (const [kind, bytes] of Object.entries(cards)) {
      seen[await readsOrNames(mutateBytes(rng, bytes, 3), `fuzz.${kind}`, `${label} ${kind}`)]++;
    }
  });
  assert.ok(seen.read > 0 && seen.refused > 0, JSON.stringify(seen));
});

test('fuzz: JSON cards with values of the wrong kind read or are refused naming the file', async () => {
  const parsed = JSON.parse(new TextDecoder().decode(cards.json)) as unknown;
  const parsedV2 = JSON.parse(new TextDecoder().decode(cards.v2)) as unknown;
  const seen = { read: 0, refused: 0 };
  await fuzz(300, async ({ rng, label }) => {
    let card = rng.next() < 0.5 ? parsed : parsedV2;
    for (let k = 1 + rng.int(3); k > 0; k--) card = swapValue(rng, card);
    seen[await readsOrNames(new TextEncoder().encode(JSON.stringify(card)), 'cards/fuzz.json', label)]++;
  });
  assert.ok(seen.read > 0 && seen.refused > 0, JSON.stringify(seen));
});
