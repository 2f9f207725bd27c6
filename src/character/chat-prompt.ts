// A conversation as the chat template sees it (docs/serving.md 1): which messages are
// instructions, which are history and which is the user turn being answered, under which labels,
// and which images they carry; then the prompt budget (docs/serving.md 2): the prompt measured
// in tokens, cut from the oldest history turns, or refused, before any model work.
import { chatTemplate, type ChatTemplateSlots, type PromptPiece, type TurnContent } from '../data/index.js';

export type ChatPart = { text: string } | { image: Uint8Array };

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  /** The speaker's name (OpenAI's `name`): the turn's label instead of the role's. */
  name?: string;
  content: ChatPart[];
}

/** A request that cannot be answered as asked (the server answers 400 with `code`). */
export class ChatRequestError extends Error {
  constructor(
    message: string,
    readonly code: 'context_length_exceeded' | 'request_too_large' | 'invalid_messages' | 'invalid_image' | 'invalid_thinking',
    readonly param: string,
  ) {
    super(message);
    this.name = 'ChatRequestError';
  }
}

export interface ChatLayout {
  slots: Omit<ChatTemplateSlots, 'description' | 'opening' | 'name'>;
  /** Every image of the conversation, by the index the template pieces use. */
  images: Uint8Array[];
  /** The user turn's text (for the scene caption of a reply image). */
  userText: string;
}

/**
 * Splits a conversation (docs/serving.md 1): system messages before the first other message and
 * after the last user message are the instructions; the last user message is the user input;
 * everything between is history, labelled by `name`, else `User`, the character's display name,
 * or `System`. A conversation without a user message, or with an assistant message after the
 * last user message, is refused.
 */
export function layoutChat(turns: readonly ChatTurn[], characterName: string): ChatLayout {
  const images: Uint8Array[] = [];
  const content = (t: ChatTurn): TurnContent => t.content.map((p) => ('text' in p ? { text: p.text } : { image: images.push(p.image) - 1 }));
  let last = -1;
  turns.forEach((t, i) => {
    if (t.role === 'user') last = i;
  });
  if (last < 0) throw new ChatRequestError('messages: the conversation has no user message to answer', 'invalid_messages', 'messages');
  const after = turns.slice(last + 1);
  const bad = after.findIndex((t) => t.role !== 'system');
  if (bad >= 0) throw new ChatRequestError(`messages[${last + 1 + bad}]: only system messages may follow the last user message`, 'invalid_messages', `messages[${last + 1 + bad}]`);
  let first = 0;
  while (first < last && turns[first]!.role === 'system') first++;
  const named = (t: ChatTurn, c: TurnContent): TurnContent => (t.name ? [{ text: `${t.name}: ` }, ...c] : c);
  const instructions = [...turns.slice(0, first), ...after].map((t) => named(t, content(t)));
  const label = (t: ChatTurn): string => t.name ?? (t.role === 'user' ? 'User' : t.role === 'assistant' ? characterName : 'System');
  const history = turns.slice(first, last).map((t) => ({ label: label(t), content: content(t) }));
  const user = turns[last]!;
  const userContent = named(user, content(user));
  const userText = user.content.flatMap((p) => ('text' in p ? [p.text] : [])).join('\n');
  return { slots: { instructions, history, user: userContent }, images, userText };
}

export interface BudgetLimits {
  /** KV entries the model may hold: prompt + generated (its position limit). */
  context: number;
  /** Tokens reserved for the reply (max_tokens) plus the primer. */
  reserve: number;
  /** Tokens one ViT image takes (its patches and two markers). */
  imageTokens: number;
  /** The most UTF-8 bytes one token stands for: text of B bytes has at least B / (3 * this)
   * tokens (3: the most NFC normalisation can expand a text). */
  maxTokenBytes: number;
}

export interface PromptSegment {
  ids?: number[];
  image?: number;
}

export interface BudgetedPrompt {
  segments: PromptSegment[];
  promptTokens: number;
  /** History turns cut (the oldest ones). */
  droppedTurns: number;
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

function contentBytes(c: TurnContent): number {
  return c.reduce((n, p) => n + ('text' in p ? utf8Length(p.text) : 0), 0);
}
function contentImages(c: TurnContent): number {
  return c.reduce((n, p) => n + ('text' in p ? 0 : 1), 0);
}

/**
 * Fits a laid-out chat in the model's context (docs/serving.md 2). Token counts are lower-bounded
 * from byte lengths first, so a huge message is refused or cut without being tokenized; the
 * kept prompt is then measured exactly (each text segment + its two markers, each image's ViT
 * tokens). Turns are dropped oldest first; the description, instructions and user input are never
 * cut: when they alone do not fit, ChatRequestError('context_length_exceeded').
 */
export async function budgetChat(
  fixed: Pick<ChatTemplateSlots, 'description' | 'opening' | 'name'>,
  layout: ChatLayout,
  limits: BudgetLimits,
  encodeBatch: (texts: string[]) => Promise<number[][]>,
): Promise<BudgetedPrompt> {
  const { slots } = layout;
  const available = limits.context - limits.reserve;
  const lower = (bytes: number): number => Math.ceil(bytes / (3 * limits.maxTokenBytes));
  const over = (need: number): ChatRequestError =>
    new ChatRequestError(
      `this model's context is ${limits.context} tokens; the messages take ${need > 0 ? `at least ${need}` : 'more'} without any history and the reply may take ${limits.reserve - 1} (max_tokens): shorten the messages or lower max_tokens`,
      'context_length_exceeded',
      'messages',
    );
  const mandatoryBytes = utf8Length(fixed.description) + utf8Length(fixed.opening) + utf8Length(fixed.name) + contentBytes(slots.user) + slots.instructions.reduce((n, c) => n + contentBytes(c), 0);
  const mandatoryImages = contentImages(slots.user) + slots.instructions.reduce((n, c) => n + contentImages(c), 0);
  const mandatoryLower = lower(mandatoryBytes) + mandatoryImages * limits.imageTokens;
  if (mandatoryLower > available) throw over(mandatoryLower);
  // Newest turns first, while their lower bounds fit: the older ones are cut unread.
  const h = slots.history;
  let keep = 0;
  let lb = mandatoryLower;
  for (let i = h.length - 1; i >= 0; i--) {
    lb += lower(contentBytes(h[i]!.content)) + contentImages(h[i]!.content) * limits.imageTokens;
    if (lb > available) break;
    keep++;
  }
  // Per-turn estimates of the kept turns, then the exact count of the whole prompt.
  const kept = h.slice(h.length - keep);
  const turnText = (t: (typeof h)[number]): string => `${t.label}: ${t.content.map((p) => ('text' in p ? p.text : '')).join('')}\n`;
  const perTurn = (await encodeBatch(kept.map(turnText))).map((ids, i) => ids.length + contentImages(kept[i]!.content) * limits.imageTokens);
  const measure = async (drop: number): Promise<BudgetedPrompt> => {
    const pieces: PromptPiece[] = chatTemplate({ ...fixed, ...slots, history: h.slice(h.length - keep + drop) });
    const texts = pieces.flatMap((p) => ('text' in p ? [p.text] : []));
    const encoded = await encodeBatch(texts);
    let k = 0;
    let promptTokens = 0;
    const segments = pieces.map((p): PromptSegment => {
      if ('image' in p) {
        promptTokens += limits.imageTokens;
        return { image: p.image };
      }
      const ids = encoded[k++]!;
      promptTokens += ids.length + 2;
      return { ids };
    });
    return { segments, promptTokens, droppedTurns: h.length - keep + drop };
  };
  let drop = 0;
  let m = await measure(0);
  if (m.promptTokens > available) {
    // Drop the fewest oldest kept turns whose estimated tokens cover the excess, then check.
    let excess = m.promptTokens - available;
    while (drop < keep && excess > 0) excess -= perTurn[drop++]!;
    m = await measure(drop);
    while (m.promptTokens > available && drop < keep) m = await measure(++drop);
    if (m.promptTokens > available) throw over(m.promptTokens);
    // Estimates of separately encoded turns can overshoot by a token or two: give turns back while they fit.
    while (drop > 0) {
      const fewer = await measure(drop - 1);
      if (fewer.promptTokens > available) break;
      m = fewer;
      drop--;
    }
  }
  return m;
}
