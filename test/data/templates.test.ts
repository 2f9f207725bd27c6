import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chatTemplate, rolePlayPrompt, thinkingPlanAnswer, vqaPrompt } from '../../src/data/templates.js';

test('role-play prompt inserts conversation history only at inference (docs/method.md 4.3)', () => {
  const base = { description: 'D', opening: 'O', user: 'U', name: 'N' };
  assert.equal(rolePlayPrompt(base), "Character Description: D\n\nOpening: O\n\nUser Input: U\n\nBased on the character description, opening, conversation history, current user input, and the reference image, please generate N's response.");
  const h = rolePlayPrompt({ ...base, history: [{ role: 'user', text: 'hi' }, { role: 'N', text: 'yo' }] });
  assert.ok(h.includes('Opening: O\n\nConversation History:\nuser: hi\nN: yo\n\nUser Input: U'));
});

test('thinking answer and VQA prompt forms', () => {
  assert.equal(thinkingPlanAnswer('a', 'b'), '<think>a</think>\n<gen>b</gen>');
  assert.equal(vqaPrompt('Q?'), '<image>Q?');
});

test('chat template: the role-play prompt plus instructions and images in place (docs/serving.md 1)', () => {
  const base = { description: 'D', opening: 'O', name: 'N' };
  // No instructions, no images: exactly the reference prompt.
  assert.deepEqual(chatTemplate({ ...base, instructions: [], history: [{ label: 'User', content: [{ text: 'hi' }] }], user: [{ text: 'U' }] }), [
    { text: rolePlayPrompt({ ...base, user: 'U', history: [{ role: 'User', text: 'hi' }] }) },
  ]);
  const pieces = chatTemplate({
    ...base,
    instructions: [[{ text: 'Be brief.' }], [{ text: 'Persona: P' }]],
    history: [{ label: 'Ann', content: [{ text: 'look ' }, { image: 0 }] }],
    user: [{ image: 1 }, { text: 'and this?' }],
  });
  assert.deepEqual(pieces, [
    { text: 'Character Description: D\n\nOpening: O\n\nConversation History:\nAnn: look ' },
    { image: 0 },
    { text: '\n\nUser Input: ' },
    { image: 1 },
    {
      text:
        "and this?\n\nInstructions: Be brief.\n\nPersona: P\n\nBased on the character description, opening, conversation history, current user input, and the reference image, please generate N's response.",
    },
  ]);
});
