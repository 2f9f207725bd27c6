// The conversation layout and the prompt budget (docs/serving.md 1-2), on a real trained byte-level
// tokenizer: who is an instruction, a history turn or the user input; the fewest oldest turns cut
// to fit, checked against exact counts of the template text; refusals that never tokenize a
// message too large to fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chatTemplate, loadSampleCharacter, trainTinyTokenizer } from '../../src/data/index.js';
import { budgetChat, ChatRequestError, layoutChat, type ChatTurn } from '../../src/character/index.js';

const { character } = loadSampleCharacter();
const tok = trainTinyTokenizer([character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)], { vocabSize: 400 }).load();
const fixed = { description: 'A fox courier.', opening: 'Hi!', name: 'Tessel' };
const say = (role: ChatTurn['role'], text: string, name?: string): ChatTurn => ({ role, content: [{ text }], ...(name ? { name } : {}) });

test('layout: leading and trailing system messages are instructions; names label turns', () => {
  const png = new Uint8Array([1, 2, 3]);
  const l = layoutChat(
    [
      say('system', 'Card: a fox.'),
      say('system', 'Hello.', 'example_user'),
      say('user', 'hi', 'Ann'),
      say('assistant', 'hello'),
      say('system', "[Author's note]"),
      { role: 'user', content: [{ text: 'what is this?' }, { image: png }] },
      say('system', 'Stay brief.'),
    ],
    'Tessel',
  );
  assert.deepEqual(l.slots.instructions, [[{ text: 'Card: a fox.' }], [{ text: 'example_user: ' }, { text: 'Hello.' }], [{ text: 'Stay brief.' }]]);
  assert.deepEqual(l.slots.history, [
    { label: 'Ann', content: [{ text: 'hi' }] },
    { label: 'Tessel', content: [{ text: 'hello' }] },
    { label: 'System', content: [{ text: "[Author's note]" }] },
  ]);
  assert.deepEqual(l.slots.user, [{ text: 'what is this?' }, { image: 0 }]);
  assert.equal(l.images[0], png);
  assert.equal(l.userText, 'what is this?');
  assert.throws(() => layoutChat([say('system', 'only')], 'T'), (e: unknown) => e instanceof ChatRequestError && e.code === 'invalid_messages');
  assert.throws(() => layoutChat([say('user', 'a'), say('assistant', 'b')], 'T'), /messages\[1\]: only system messages may follow the last user message/);
});

/** The exact prompt size of a layout with the `drop` oldest history turns cut: each text piece's tokens + 2 markers. */
async function exactTokens(turns: ChatTurn[], drop: number): Promise<number> {
  const l = layoutChat(turns, 'Tessel');
  const pieces = chatTemplate({ ...fixed, ...l.slots, history: l.slots.history.slice(drop) });
  let n = 0;
  for (const p of pieces) n += 'text' in p ? (await tok.encode(p.text)).length + 2 : 10;
  return n;
}

test('budget: the fewest oldest turns are cut so the prompt and the reply fit', async () => {
  const turns: ChatTurn[] = [];
  for (let i = 0; i < 12; i++) turns.push(say(i % 2 ? 'assistant' : 'user', `${character.dialogue[i]!.user} ${character.dialogue[i]!.reply}`));
  turns.push(say('user', 'Where to next?'));
  const full = await exactTokens(turns, 0);
  const reserve = 33;
  // A context that holds the prompt without its 5 oldest turns, but not without only 4.
  const context = (await exactTokens(turns, 5)) + reserve;
  assert.ok((await exactTokens(turns, 4)) + reserve > context);
  const limits = { context, reserve, imageTokens: 10, maxTokenBytes: 64 };
  const b = await budgetChat(fixed, layoutChat(turns, 'Tessel'), limits, (t) => tok.encodeBatch(t));
  assert.equal(b.droppedTurns, 5);
  assert.equal(b.promptTokens, await exactTokens(turns, 5));
  assert.equal(b.segments.length, 1);
  assert.deepEqual(b.segments[0]!.ids, await tok.encode((chatTemplate({ ...fixed, ...layoutChat(turns, 'Tessel').slots, history: layoutChat(turns, 'Tessel').slots.history.slice(5) })[0] as { text: string }).text));
  // Room for everything: nothing cut, the whole prompt measured.
  const roomy = await budgetChat(fixed, layoutChat(turns, 'Tessel'), { ...limits, context: full + reserve }, (t) => tok.encodeBatch(t));
  assert.deepEqual([roomy.droppedTurns, roomy.promptTokens], [0, full]);
});

test('budget: images count their ViT tokens', async () => {
  const turns: ChatTurn[] = [{ role: 'user', content: [{ image: new Uint8Array(4) }, { text: 'what is this?' }] }];
  const b = await budgetChat(fixed, layoutChat(turns, 'Tessel'), { context: 4096, reserve: 10, imageTokens: 258, maxTokenBytes: 64 }, (t) => tok.encodeBatch(t));
  assert.deepEqual(b.segments.map((s) => (s.image !== undefined ? 'image' : 'text')), ['text', 'image', 'text']);
  assert.equal(b.promptTokens, (await exactTokens(turns, 0)) - 10 + 258);
});

test('budget: a message that cannot fit is refused without being tokenized; old huge turns are cut unread', async () => {
  const seen: number[] = [];
  const encode = (texts: string[]) => {
    seen.push(...texts.map((t) => t.length));
    return tok.encodeBatch(texts);
  };
  const huge = 'x'.repeat(1 << 20);
  const limits = { context: 4096, reserve: 501, imageTokens: 258, maxTokenBytes: 16 };
  await assert.rejects(
    budgetChat(fixed, layoutChat([say('user', huge)], 'Tessel'), limits, encode),
    (e: unknown) => e instanceof ChatRequestError && e.code === 'context_length_exceeded' && e.param === 'messages' && /context is 4096 tokens/.test(e.message),
  );
  assert.deepEqual(seen, [], 'nothing was tokenized');
  // The same text as an old turn: cut unread, the rest answered.
  const b = await budgetChat(fixed, layoutChat([say('user', huge), say('assistant', 'ok'), say('user', 'hi')], 'Tessel'), limits, encode);
  assert.equal(b.droppedTurns, 1);
  assert.ok(Math.max(...seen) < 1000, `longest text tokenized: ${Math.max(...seen)} characters`);
  // max_tokens alone over the context is refused too.
  await assert.rejects(budgetChat(fixed, layoutChat([say('user', 'hi')], 'Tessel'), { ...limits, reserve: 5000 }, encode), /context_length|context is 4096/);
});
