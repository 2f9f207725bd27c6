// Whether a chat request draws its image in thinking mode (docs/serving.md 4): the request's
// `thinking`, OpenAI's `reasoning_effort` where it has a meaning here ('none' off, 'auto' the
// default; the plan has no effort levels, so the others are refused), else the character's setting.
import type { Character } from '../data/index.js';
import { thinksBeforeImages } from './characters.js';
import type { Modality } from './engine.js';
import { ApiError } from './errors.js';

const bad = (message: string, param: string): ApiError => new ApiError(400, message, 'invalid_request_error', param, 'invalid_value');

/** The request's own say on thinking: true, false, or undefined (no say). */
function requested(thinking: boolean | null | undefined, effort: string | null | undefined): boolean | undefined {
  if (effort != null && effort !== 'none' && effort !== 'auto') {
    throw bad(`reasoning_effort: '${effort}' has no meaning here: thinking (planning the reply's image) is on or off, without levels; send thinking: true or false, or reasoning_effort 'none' (off) or 'auto' (the character's setting)`, 'reasoning_effort');
  }
  const fromEffort = effort === 'none' ? false : undefined;
  if (thinking != null && fromEffort !== undefined && thinking !== fromEffort) throw bad("thinking: true contradicts reasoning_effort: 'none'", 'thinking');
  return thinking ?? fromEffort;
}

export function requestThinks(body: { thinking?: boolean | null; reasoning_effort?: string | null }, character: Character, modalities: Modality[]): boolean {
  const own = requested(body.thinking, body.reasoning_effort);
  const image = modalities.includes('image');
  if (own === true && !image) {
    throw bad('thinking: the plan is for the reply\'s image; ask for one with modalities ["text", "image"] (or the character\'s reply_images setting)', 'thinking');
  }
  return image && (own ?? thinksBeforeImages(character));
}
