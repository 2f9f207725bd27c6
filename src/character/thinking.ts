// Thinking-mode role-play (docs/method.md 4.3 steps 2-3): after the reply the model writes a plan
// for the scene's image, `<think>...</think>` then `<gen>...</gen>`, and the image is drawn from
// the `_t2i_with_thinking` caption holding both parts. This file has the options, the plan as the
// runtime returns it and the official parser; CharacterModel.imagePlan runs the model.
import { ChatRequestError } from './chat-prompt.js';

/** How the plan is decoded (docs/method.md 4.3 step 2). */
export interface ThinkingOptions {
  /** Plan tokens at most; default 1000 (the official `max_think_token_n`). */
  maxTokens?: number;
  /** Sample the plan at the official temperature 0.3 instead of decoding it greedily. Default
   * false: the official `do_sample_thinking=False` makes the 0.3 it passes have no effect. */
  sample?: boolean;
  /** Pieces of the plan's text as they are decoded. */
  onText?: (piece: string) => void;
}

/** The official plan length limit and the temperature used when the plan is sampled. */
export const THINKING_DEFAULTS = { maxTokens: 1000, sampleTemperature: 0.3 } as const;

/** A plan split into its two parts, as the official `extract_thinking_and_instruction` does. */
export interface ParsedPlan {
  /** Inside the first `<think>...</think>`, stripped; '' when there is none. */
  thinkingProcess: string;
  /** Inside the first `<gen>...</gen>`, stripped; '' when there is none. */
  generationInstruction: string;
  /** The tags with no complete pair (absent, or opened and never closed): their part is ''. */
  missing: ('think' | 'gen')[];
}

/** The plan as the runtime returns it beside the reply (never inside the reply's text). */
export interface ImagePlan extends ParsedPlan {
  /** Everything the model wrote for the plan. */
  text: string;
  /** The caption the image is drawn from (the `_t2i_with_thinking` template). */
  imagePrompt: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: 'stop' | 'length';
}

// Python's str.strip() without arguments removes the characters str.isspace() accepts; JS trim()
// differs (it keeps U+001C-U+001F and U+0085, removes U+FEFF), so the official set is spelled out.
const PY_SPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/** Python's `s.strip()`. */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP, '');
}

/**
 * The official parser (docs/method.md 4.3 step 2): the first `<think>(.*?)</think>` and the first
 * `<gen>(.*?)</gen>` (non-greedy, across lines), each stripped. A part without a complete pair is
 * '' as officially, and named in `missing`, so that a caller can tell an empty plan from a
 * malformed one; the image is still drawn from the caption with that part empty, as officially.
 */
export function parseImagePlan(text: string): ParsedPlan {
  const think = /<think>([\s\S]*?)<\/think>/.exec(text);
  const gen = /<gen>([\s\S]*?)<\/gen>/.exec(text);
  const missing: ParsedPlan['missing'] = [];
  if (!think) missing.push('think');
  if (!gen) missing.push('gen');
  return { thinkingProcess: think ? pyStrip(think[1]!) : '', generationInstruction: gen ? pyStrip(gen[1]!) : '', missing };
}

/** The options of a thinking request, checked: a bad limit is refused, not clamped. */
export function resolveThinking(o: boolean | ThinkingOptions | undefined): Required<Pick<ThinkingOptions, 'maxTokens' | 'sample'>> & Pick<ThinkingOptions, 'onText'> | null {
  if (!o) return null;
  const t = o === true ? {} : o;
  const maxTokens = t.maxTokens ?? THINKING_DEFAULTS.maxTokens;
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw new ChatRequestError(`thinking.maxTokens must be an integer >= 1, got ${String(maxTokens)}`, 'invalid_thinking', 'thinking');
  return { maxTokens, sample: t.sample ?? false, ...(t.onText ? { onText: t.onText } : {}) };
}
