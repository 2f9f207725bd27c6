// CharacterModel.chat (docs/serving.md 1-3, 7) on an untrained micro model: the whole conversation
// reaches the model through the chat template, user images go through the ViT, seeds repeat
// replies, stop strings cut them, and every reply is valid printable UTF-8.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { MICRO } from '../../src/model/index.js';
import { loadSampleCharacter } from '../../src/data/index.js';
import { CharacterModel, type ChatTurn } from '../../src/character/index.js';

const { character } = loadSampleCharacter();
const texts = [character.description, character.profile, ...character.dialogue.slice(0, 10).map((s) => `${s.user} ${s.reply}`)];
const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 3, texts });
after(() => m.dispose());

const user = (text: string): ChatTurn => ({ role: 'user', content: [{ text }] });
const PRINTABLE = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\uFFFD]*$/u;
const CLOSING = `Based on the character description, opening, conversation history, current user input, and the reference image, please generate ${character.names.prefix}'s response.`;

test('a system message reaches the prompt (in the Instructions block) and its tokens', async () => {
  const plain = await m.planChat([user('Hello')]);
  const withSystem = await m.planChat([{ role: 'system', content: [{ text: 'Stay in character.' }] }, user('Hello')]);
  const textOf = (p: typeof plain): string => p.segments.map((s) => m.tokenizer.decode(s.ids!)).join('');
  const head = `Character Description: ${character.description}\n\nOpening: ${character.opening}\n\nUser Input: Hello\n\n`;
  assert.equal(textOf(plain), `${head}${CLOSING}`);
  assert.equal(textOf(withSystem), `${head}Instructions: Stay in character.\n\n${CLOSING}`);
  // Each text segment is <|im_start|> ids <|im_end|> (docs/method.md 1.5).
  assert.equal(plain.promptTokens, plain.segments[0]!.ids!.length + 2);
  assert.ok(withSystem.promptTokens > plain.promptTokens);
});

test('a user image is prefilled through the ViT: the context holds its patch tokens on one position', async () => {
  const png = new Uint8Array(await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 10, g: 200, b: 120 } } }).png().toBuffer());
  const turns: ChatTurn[] = [{ role: 'user', content: [{ text: 'What is in this picture?' }, { image: png }] }];
  const { ctx, plan } = await m.prefillChat(turns, { maxTokens: 8 });
  try {
    assert.deepEqual(plan.segments.map((s) => (s.image !== undefined ? 'image' : 'text')), ['text', 'image', 'text']);
    const side = m.vitImageSide / MICRO.vit.patchSize;
    assert.equal(m.vitImageTokens, side * side + 2);
    assert.equal(ctx.length, plan.promptTokens);
    // text tokens advance the position one each; the image's patches and markers share one
    assert.equal(ctx.nextPosition, ctx.length - m.vitImageTokens + 1);
  } finally {
    ctx.dispose();
  }
  const r = await m.chat(turns, { maxTokens: 4, temperature: 0 });
  assert.equal(r.promptTokens, plan.promptTokens);
});

test('the same seed gives the same reply; another seed another; the image follows the seed', async () => {
  const o = { maxTokens: 16, temperature: 1.5 };
  const a = await m.chat([user('Tell me a story.')], { ...o, seed: 11 });
  const b = await m.chat([user('Tell me a story.')], { ...o, seed: 11 });
  const c = await m.chat([user('Tell me a story.')], { ...o, seed: 12 });
  assert.equal(a.text, b.text);
  assert.notEqual(a.text, c.text);
  const i1 = await m.chat([user('Draw it.')], { maxTokens: 2, temperature: 0, seed: 5, image: { numTimesteps: 3 } });
  const i2 = await m.chat([user('Draw it.')], { maxTokens: 2, temperature: 0, seed: 5, image: { numTimesteps: 3 } });
  const i3 = await m.chat([user('Draw it.')], { maxTokens: 2, temperature: 0, seed: 6, image: { numTimesteps: 3 } });
  assert.deepEqual(i1.image, i2.image);
  assert.notDeepEqual(i1.image, i3.image);
});

test('stop strings cut the reply before their first occurrence, streamed pieces included', async () => {
  const full = await m.chat([user('Hello there')], { maxTokens: 24, temperature: 0 });
  assert.ok(full.text.length >= 6, `reply too short to test: ${JSON.stringify(full.text)}`);
  const stop = full.text.slice(3, 5);
  const pieces: string[] = [];
  const cut = await m.chat([user('Hello there')], { maxTokens: 24, temperature: 0, stop: [stop], onText: (p) => pieces.push(p) });
  assert.equal(cut.text, full.text.slice(0, full.text.indexOf(stop)));
  assert.equal(pieces.join(''), cut.text);
  assert.equal(cut.finishReason, 'stop');
});

test('replies are valid printable UTF-8 whatever the sampler draws', async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const r = await m.chat([user('Say something.')], { maxTokens: 24, temperature: 2, seed });
    assert.match(r.text, PRINTABLE, `seed ${seed}: ${JSON.stringify(r.text)}`);
    assert.equal(Buffer.from(r.text, 'utf8').toString('utf8'), r.text);
  }
});
