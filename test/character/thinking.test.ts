// Thinking-mode role-play (docs/method.md 4.3 steps 2-3): the official plan prompt (typed out here
// from the official source, not built by the code under test), the official parser on hand-worked
// strings, the plan decoded greedily from that prompt, and the image drawn from the caption that
// holds the plan's parts, never the plan in the visible reply.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { MICRO } from '../../src/model/index.js';
import { manualSeed, noGrad } from '../../src/torch/index.js';
import { loadSampleCharacter, thinkingInferencePrompt, THINKING_TRAINING_INSTRUCTION } from '../../src/data/index.js';
import { CharacterModel, ChatRequestError, parseImagePlan, pyStrip, type ChatTurn, type ReplyOptions } from '../../src/character/index.js';

const { character } = loadSampleCharacter();
const texts = [character.description, character.profile, ...character.dialogue.slice(0, 10).map((s) => `${s.user} ${s.reply}`)];
const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 3, texts });
// llm2vae is zero-initialised, which makes every image the same whatever its caption; give it
// weights so that the caption an image is drawn from shows in its pixels.
manualSeed(9);
noGrad(() => m.model.llm2vae!.weight.normal_(0, 0.1));
after(() => m.dispose());
const user = (text: string): ChatTurn => ({ role: 'user', content: [{ text }] });

// THINK_SYSTEM_PROMPT of personalize_inference_grpo.py, line by line.
const SYSTEM =
  'You should first think about the planning process in the mind and then generate the image.\n' +
  'The planning process must be enclosed within <think></think>.\n' +
  'Then provide a concise, standardized generation instruction enclosed within <gen></gen> that can be fed to a text-to-image model.\n' +
  'The <gen> instruction should be a single descriptive sentence or a short list of comma-separated attributes, focusing on character, pose/expression, scene context, composition, style, and quality words.\n' +
  'Output format (no additional text):\n<think>...your planning process...</think>\n<gen>...your generation instruction...</gen>\n';
const planPrompt = (u: string, r: string): string =>
  `${SYSTEM}\n\nCharacter Description: ${character.description}\n\nUser Input: ${u}\n\nCharacter Response: ${r}\n\nPlease think about how to generate an image for this scene.`;
const thinkingCaption = (u: string, r: string, think: string, gen: string): string =>
  `Character Description: ${character.description}\n\nUser Input: ${u}\n\nCharacter Response: ${r}\n\nThinking Process: ${think}\n\nGeneration Instruction: ${gen}\n\n` +
  "Please generate an image that visualizes this scene with the character responding to the user's input based on the character description, thinking process, and generation instruction.";

test('the plan prompt is the official one; the training block is its header plus the same text', () => {
  assert.equal(thinkingInferencePrompt({ description: character.description, user: 'Hi', reply: 'Hello!' }), planPrompt('Hi', 'Hello!'));
  assert.equal(THINKING_TRAINING_INSTRUCTION, `System Instruction for Thinking and Generation:\n${SYSTEM}`);
});

test('the official parser: first complete pairs, stripped; a part without its pair is empty and named', () => {
  assert.deepEqual(parseImagePlan('<think>a</think>\n<gen>b</gen>'), { thinkingProcess: 'a', generationInstruction: 'b', missing: [] });
  // Non-greedy, across lines, first pair only, text around the tags ignored.
  assert.deepEqual(parseImagePlan('x <think>\n one\ntwo  </think><think>2</think> <gen> fox, hill </gen><gen>3</gen> y'), {
    thinkingProcess: 'one\ntwo', generationInstruction: 'fox, hill', missing: [],
  });
  // Unclosed or absent tags: '' as officially, and reported.
  assert.deepEqual(parseImagePlan('<think>never closed <gen>a fox</gen>'), { thinkingProcess: '', generationInstruction: 'a fox', missing: ['think'] });
  assert.deepEqual(parseImagePlan('<think>plan</think><gen>cut off'), { thinkingProcess: 'plan', generationInstruction: '', missing: ['gen'] });
  assert.deepEqual(parseImagePlan('just words'), { thinkingProcess: '', generationInstruction: '', missing: ['think', 'gen'] });
  // An empty pair is complete: nothing is missing.
  assert.deepEqual(parseImagePlan('<think></think><gen> </gen>'), { thinkingProcess: '', generationInstruction: '', missing: [] });
  // The order of the tags does not matter to the regexes.
  assert.deepEqual(parseImagePlan('<gen>g</gen><think>t</think>'), { thinkingProcess: 't', generationInstruction: 'g', missing: [] });
});

test("pyStrip removes what Python's str.strip() removes, and only that", () => {
  assert.equal(pyStrip(' \t\n\r\x0b\x0cab c\x1c\x1d\x1e\x1f\x85\xa0\u2000\u3000'), 'ab c');
  // U+FEFF is not whitespace to Python (JS trim() would remove it); inner spaces stay.
  assert.equal(pyStrip('\ufeff a \ufeff'), '\ufeff a \ufeff');
});

test('imagePlan decodes the official prompt greedily and draws from the thinking caption', async () => {
  const reply = 'I carry maps.';
  const plan = await m.imagePlan('What do you carry?', reply, { maxTokens: 12 });
  const expected = await m.generateText(planPrompt('What do you carry?', reply), { temperature: 0, maxTokens: 12 });
  assert.equal(plan.text, expected);
  assert.equal(plan.promptTokens, (await m.encode(planPrompt('What do you carry?', reply))).length + 2);
  assert.ok(plan.completionTokens >= 1 && plan.completionTokens <= 12);
  const parsed = parseImagePlan(expected);
  assert.deepEqual([plan.thinkingProcess, plan.generationInstruction, plan.missing], [parsed.thinkingProcess, parsed.generationInstruction, parsed.missing]);
  assert.equal(plan.imagePrompt, thinkingCaption('What do you carry?', reply, parsed.thinkingProcess, parsed.generationInstruction));
  // sample: true decodes the same prompt at T = 0.3.
  manualSeed(4);
  const sampled = (await m.imagePlan('What do you carry?', reply, { maxTokens: 12, sample: true })).text;
  manualSeed(4);
  assert.equal(sampled, await m.generateText(planPrompt('What do you carry?', reply), { temperature: 0.3, maxTokens: 12 }));
  await assert.rejects(m.imagePlan('x', 'y', { maxTokens: 0 }), ChatRequestError);
  await assert.rejects(m.imagePlan('x', 'y', { maxTokens: MICRO.llm.maxPositionEmbeddings }), /do not fit this model's context/);
});

/** The same model whose plan decoding writes a fixed plan (the rest, the parser, the caption and
 * the image, is the real code): to follow a plan with real tags through chat and rolePlay. */
class WrittenPlan extends CharacterModel {
  constructor(readonly written: string) {
    super(m.character, m.model, m.vae, m.tokenizer, m.manifest);
  }
  override async generateText(prompt: string, o: ReplyOptions = {}): Promise<string> {
    if (!prompt.startsWith(SYSTEM)) return super.generateText(prompt, o);
    o.onText?.(this.written);
    if (o.usage) Object.assign(o.usage, { promptTokens: 1, completionTokens: 1, hitLimit: false });
    return this.written;
  }
}

test('chat with thinking: the image is drawn from the <gen> caption; the plan is returned beside the reply, not in it', async () => {
  const w = new WrittenPlan('<think>She should hold the map up.</think>\n<gen>a teal fox holding a map, smiling</gen>');
  const pieces: string[] = [];
  const r = await w.chat([user('Show me the map.')], { maxTokens: 5, temperature: 0, seed: 2, image: { numTimesteps: 3 }, thinking: { onText: (p) => pieces.push(p) } });
  const plain = await m.chat([user('Show me the map.')], { maxTokens: 5, temperature: 0, seed: 2 });
  assert.equal(r.text, plain.text);
  assert.ok(!r.text.includes('<think>'));
  assert.equal(r.plan!.generationInstruction, 'a teal fox holding a map, smiling');
  assert.equal(r.plan!.thinkingProcess, 'She should hold the map up.');
  assert.deepEqual(pieces, [w.written]);
  const caption = thinkingCaption('Show me the map.', r.text, 'She should hold the map up.', 'a teal fox holding a map, smiling');
  assert.equal(r.plan!.imagePrompt, caption);
  assert.deepEqual(r.image, await m.image(caption, { numTimesteps: 3, seed: 2 }));
  // Without thinking the image is the plain caption's, a different picture (captions show in pixels).
  assert.notDeepEqual(await m.image('a fox on a hill', { numTimesteps: 3, seed: 2 }), await m.image('the sea with boats', { numTimesteps: 3, seed: 2 }));
  const noPlan = await m.chat([user('Show me the map.')], { maxTokens: 5, temperature: 0, seed: 2, image: { numTimesteps: 3 } });
  assert.equal(noPlan.plan, undefined);
  assert.notDeepEqual(noPlan.image, r.image);
  // A malformed plan: the official fallback, empty parts in the same caption, and `missing` says so.
  const broken = await new WrittenPlan('<think>unclosed plan').chat([user('Show me the map.')], { maxTokens: 5, temperature: 0, seed: 2, image: { numTimesteps: 3 }, thinking: true });
  assert.deepEqual(broken.plan!.missing, ['think', 'gen']);
  assert.deepEqual(broken.image, await m.image(thinkingCaption('Show me the map.', r.text, '', ''), { numTimesteps: 3, seed: 2 }));
});

test('rolePlay with thinking draws from the plan; thinking without an image is refused', async () => {
  const w = new WrittenPlan('<think>t</think><gen>a fox on a hill</gen>');
  const r = await w.rolePlay('Where are you?', { maxTokens: 4, temperature: 0, image: { numTimesteps: 3, seed: 1 }, thinking: true });
  assert.equal(r.plan!.imagePrompt, thinkingCaption('Where are you?', r.reply, 't', 'a fox on a hill'));
  assert.deepEqual(r.image, await m.image(r.plan!.imagePrompt, { numTimesteps: 3, seed: 1 }));
  await assert.rejects(m.chat([user('Hi')], { maxTokens: 2, thinking: true }), (e: unknown) => e instanceof ChatRequestError && e.param === 'thinking' && /ask for the image/.test(e.message));
});
