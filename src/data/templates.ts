// Reference prompt templates, verbatim (docs/method.md 2.5, 4.3; docs/dataset.md 4, 5). `{…}` slots are
// filled by plain concatenation; no chat template and no role words (docs/method.md 1.5).

export interface SceneSlots {
  description: string;
  user: string;
  reply: string;
}

/** `_t2i` caption: role-play scene → image (docs/method.md 2.5). */
export function t2iCaption(s: SceneSlots): string {
  return (
    `Character Description: ${s.description}\n\nUser Input: ${s.user}\n\nCharacter Response: ${s.reply}\n\n` +
    `Please generate an image that visualizes this scene with the character responding to the user's input based on the character description.`
  );
}

export interface ThinkingSlots extends SceneSlots {
  thinkingProcess: string;
  generationInstruction: string;
}

/** `_t2i_with_thinking` caption: the plan is inserted after the reply and the closing sentence
 * names it (docs/method.md 2.5). */
export function t2iThinkingCaption(s: ThinkingSlots): string {
  return (
    `Character Description: ${s.description}\n\nUser Input: ${s.user}\n\nCharacter Response: ${s.reply}\n\n` +
    `Thinking Process: ${s.thinkingProcess}\n\nGeneration Instruction: ${s.generationInstruction}\n\n` +
    `Please generate an image that visualizes this scene with the character responding to the user's input based on the character description, thinking process, and generation instruction.`
  );
}

export interface RolePlaySlots {
  description: string;
  opening: string;
  user: string;
  /** The `{name}` slot: the file prefix `<P>` (docs/dataset.md 5). */
  name: string;
  /** Earlier turns; only inference uses them (docs/method.md 4.3). Training scenes have none. */
  history?: { role: string; text: string }[];
}

/** `_vlm` / `_vlm_extension` human turn, and the inference reply prompt (docs/method.md 2.5, 4.3). */
export function rolePlayPrompt(s: RolePlaySlots): string {
  let history = '';
  if (s.history && s.history.length) {
    history = 'Conversation History:\n' + s.history.map((t) => `${t.role}: ${t.text}\n`).join('') + '\n';
  }
  return (
    `Character Description: ${s.description}\n\nOpening: ${s.opening}\n\n${history}User Input: ${s.user}\n\n` +
    `Based on the character description, opening, conversation history, current user input, and the reference image, please generate ${s.name}'s response.`
  );
}

/** The thinking system prompt of the official role-play inference (docs/method.md 4.3 step 2),
 * verbatim: what the model is asked before it plans an image. */
export const THINK_SYSTEM_PROMPT =
  'You should first think about the planning process in the mind and then generate the image.\n' +
  'The planning process must be enclosed within <think></think>.\n' +
  'Then provide a concise, standardized generation instruction enclosed within <gen></gen> that can be fed to a text-to-image model.\n' +
  'The <gen> instruction should be a single descriptive sentence or a short list of comma-separated attributes, focusing on character, pose/expression, scene context, composition, style, and quality words.\n' +
  'Output format (no additional text):\n' +
  '<think>...your planning process...</think>\n' +
  '<gen>...your generation instruction...</gen>\n';

/** The fixed block appended to `_vlm_thinking` human turns (docs/dataset.md 5; identical in every
 * line of the reference data): a header, then the same system prompt. Training puts it after the
 * caption, inference first (docs/method.md 4.3 [quirk]). */
export const THINKING_TRAINING_INSTRUCTION = 'System Instruction for Thinking and Generation:\n' + THINK_SYSTEM_PROMPT;

/** The official inference plan prompt (docs/method.md 4.3 step 2): the system prompt first, then
 * the scene, then the request to plan. No history: the plan sees the last user turn only. */
export function thinkingInferencePrompt(s: SceneSlots): string {
  return (
    `${THINK_SYSTEM_PROMPT}\n\nCharacter Description: ${s.description}\n\nUser Input: ${s.user}\n\nCharacter Response: ${s.reply}\n\n` +
    'Please think about how to generate an image for this scene.'
  );
}

/** `_vlm_thinking` human turn: the `_t2i` caption, a blank line, the fixed block. */
export function thinkingPlanPrompt(s: SceneSlots): string {
  return `${t2iCaption(s)}\n\n${THINKING_TRAINING_INSTRUCTION}`;
}

/** `_vlm_thinking` gpt turn. */
export function thinkingPlanAnswer(thinkingProcess: string, generationInstruction: string): string {
  return `<think>${thinkingProcess}</think>\n<gen>${generationInstruction}</gen>`;
}

/** The placeholder of LLaVA-style human turns (docs/dataset.md 5). */
export const IMAGE_PLACEHOLDER = '<image>';

/** `_vqa` human turn: placeholder then question, no newline (docs/dataset.md 5). */
export function vqaPrompt(question: string): string {
  return `${IMAGE_PLACEHOLDER}${question}`;
}

/** A piece of a chat prompt: text, or the place of the k-th user image (a ViT segment). */
export type PromptPiece = { text: string } | { image: number };

/** A message's content in order: text and the indexes of its images. */
export type TurnContent = ({ text: string } | { image: number })[];

export interface ChatTemplateSlots {
  description: string;
  opening: string;
  /** The `{name}` slot of the closing instruction (the file prefix, as rolePlayPrompt). */
  name: string;
  /** The request's system and developer texts (docs/serving.md 1), in order; may be empty. */
  instructions: TurnContent[];
  /** Earlier turns, oldest first, each with the label it is shown under. */
  history: { label: string; content: TurnContent }[];
  /** The last user turn. */
  user: TurnContent;
}

/**
 * The one chat template of the server and the terminal chat (docs/serving.md 1): the reference
 * role-play prompt (docs/method.md 4.3 step 1) with the request's instructions in an `Instructions:`
 * block just before the closing instruction sentence, and user images where their parts were
 * (ViT segments, split out as the VQA samples are, docs/method.md 2.1). Without instructions or
 * images the text equals rolePlayPrompt's.
 */
export function chatTemplate(s: ChatTemplateSlots): PromptPiece[] {
  const out: PromptPiece[] = [];
  const text = (t: string): void => {
    const last = out[out.length - 1];
    if (last && 'text' in last) last.text += t;
    else out.push({ text: t });
  };
  const content = (c: TurnContent): void => {
    for (const p of c) {
      if ('text' in p) text(p.text);
      else out.push({ image: p.image });
    }
  };
  text(`Character Description: ${s.description}\n\nOpening: ${s.opening}\n\n`);
  if (s.history.length) {
    text('Conversation History:\n');
    for (const t of s.history) {
      text(`${t.label}: `);
      content(t.content);
      text('\n');
    }
    text('\n');
  }
  text('User Input: ');
  content(s.user);
  text('\n\n');
  if (s.instructions.length) {
    text('Instructions: ');
    s.instructions.forEach((c, i) => {
      if (i > 0) text('\n\n');
      content(c);
    });
    text('\n\n');
  }
  text(`Based on the character description, opening, conversation history, current user input, and the reference image, please generate ${s.name}'s response.`);
  return out.filter((p) => !('text' in p) || p.text !== '');
}
