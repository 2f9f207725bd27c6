// For one known record of each task, the built sample equals the reference template byte for
// byte (docs/method.md 2.1, 2.5). The expected strings are spelled out here, independently of
// templates.ts; where the RoleScape-20 copy is present, Bo's processed files are checked too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTask, planToConversation, TASKS, type Task } from '../../src/data/samples.js';
import { loadSampleCharacter } from '../../src/data/sample-character/load.js';
import { readRoleScapeCharacter } from '../../src/data/rolescape.js';

const { character: c } = loadSampleCharacter();
const s0 = c.scenes[0]!;
const text = (task: Task, i = 0) => buildTask(c, task)[i]!;

test('t2i: caption (loss 0, CFG on) then the VAE image (loss 1)', () => {
  const p = text('t2i');
  assert.equal(p.items.length, 2);
  assert.deepEqual({ ...p.items[0], text: undefined }, { kind: 'text', text: undefined, loss: 0, enableCfg: 1 });
  assert.equal(p.items[1]!.kind, 'vae_image');
  assert.equal(p.items[1]!.loss, 1);
  const want = `Character Description: ${c.description}\n\nUser Input: ${s0.user}\n\nCharacter Response: ${s0.reply}\n\nPlease generate an image that visualizes this scene with the character responding to the user's input based on the character description.`;
  assert.equal((p.items[0] as { text: string }).text, want);
});

test('t2i_with_thinking: the plan sits after the reply and the closing sentence names it', () => {
  const want = `Character Description: ${c.description}\n\nUser Input: ${s0.user}\n\nCharacter Response: ${s0.reply}\n\nThinking Process: ${s0.thinkingProcess}\n\nGeneration Instruction: ${s0.generationInstruction}\n\nPlease generate an image that visualizes this scene with the character responding to the user's input based on the character description, thinking process, and generation instruction.`;
  assert.equal((text('t2i_with_thinking').items[0] as { text: string }).text, want);
});

test('pure_t2i: the short caption of the image', () => {
  assert.equal((text('pure_t2i').items[0] as { text: string }).text, c.referenceImages[0]!.t2iInstruction);
});

test('vlm: role-play prompt with the {name} slot, no image, reply with loss 1', () => {
  const p = text('vlm');
  assert.deepEqual(p.items.map((i) => [i.kind, i.loss, i.enableCfg]), [['text', 0, 0], ['text', 1, 0]]);
  const want = `Character Description: ${c.description}\n\nOpening: ${c.opening}\n\nUser Input: ${s0.user}\n\nBased on the character description, opening, conversation history, current user input, and the reference image, please generate Tessel's response.`;
  assert.deepEqual(planToConversation(p), { human: want, gpt: s0.reply });
});

test('vlm_extension: generated dialogue then the annotated scenes', () => {
  const all = buildTask(c, 'vlm_extension');
  assert.equal(all.length, c.dialogue.length + c.scenes.length);
  assert.equal(planToConversation(all[c.dialogue.length]!).gpt, s0.reply);
});

test('vlm_thinking: caption, blank line, the fixed instruction block; answer in think/gen tags', () => {
  const { human, gpt } = planToConversation(text('vlm_thinking'));
  assert.ok(human.endsWith('\n\nSystem Instruction for Thinking and Generation:\nYou should first think about the planning process in the mind and then generate the image.\nThe planning process must be enclosed within <think></think>.\nThen provide a concise, standardized generation instruction enclosed within <gen></gen> that can be fed to a text-to-image model.\nThe <gen> instruction should be a single descriptive sentence or a short list of comma-separated attributes, focusing on character, pose/expression, scene context, composition, style, and quality words.\nOutput format (no additional text):\n<think>...your planning process...</think>\n<gen>...your generation instruction...</gen>\n'));
  assert.equal(gpt, `<think>${s0.thinkingProcess}</think>\n<gen>${s0.generationInstruction}</gen>`);
});

test('knowledge_qa: bare question → bare answer', () => {
  assert.deepEqual(planToConversation(text('knowledge_qa')), { human: c.knowledgeQa[0]!.question, gpt: c.knowledgeQa[0]!.answer });
});

test('vqa: ViT image first (the <image> placeholder), then the question, then the answer', () => {
  const p = text('vqa');
  assert.deepEqual(p.items.map((i) => [i.kind, i.loss]), [['vit_image', 0], ['text', 0], ['text', 1]]);
  assert.deepEqual(planToConversation(p), { human: `<image>${c.vqa[0]!.question}`, gpt: c.vqa[0]!.answer });
  assert.equal(p.source, `${c.id}/vqa/0_0`);
});

const BO = join(process.cwd(), '..', 'shared', 'rolescape20', 'train', 'Bo');
test('every task reproduces the first line of Bo\'s processed files byte for byte', (t) => {
  if (!existsSync(BO)) return t.skip('RoleScape-20 train split not present');
  const bo = readRoleScapeCharacter(BO, { grpoRoot: null }).loaded.character;
  const first = (p: string) => JSON.parse(readFileSync(join(BO, 'processed', p), 'utf8').split('\n')[0]!);
  for (const task of TASKS) {
    const plan = buildTask(bo, task)[0]!;
    if (task === 't2i' || task === 't2i_with_thinking' || task === 'pure_t2i') {
      assert.equal((plan.items[0] as { text: string }).text, first(`t2i/Bo_${task}.jsonl`).text, task);
    } else {
      const line = first(`vlm/Bo_${task}.jsonl`);
      assert.deepEqual(planToConversation(plan), { human: line.conversations[0].value, gpt: line.conversations[1].value }, task);
    }
  }
});
