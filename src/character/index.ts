// Public surface of the character runtime: a customized character loaded from its model folder,
// replying in text, drawing images and role-playing (docs/architecture.md, "The character runtime").
// Built on torch, nn, model and data; train writes these folders, eval and serve read them.
export { CharacterModel, type CharacterMemory, type CharacterLoadOptions, type ReplyOptions, type ImageOptions, type SamplingOptions, type ChatReplyOptions, type ChatReply } from './character-model.js';
export { layoutChat, budgetChat, ChatRequestError, type ChatTurn, type ChatPart, type ChatLayout, type BudgetLimits, type BudgetedPrompt } from './chat-prompt.js';
export { StopHoldback } from './stop-strings.js';
export { ReplyDecoding, type DecodedReply } from './reply-decoding.js';
export { DecodeBatcher } from './decode-batcher.js';
export { PrefillBatcher } from './prefill-batcher.js';
export { PrefixCache, DEFAULT_PREFIX_CACHE_BYTES, PREFIX_BLOCK_TOKENS, type PrefixPrefill } from './prefix-cache.js';
export { Utf8Guard, utf8Step, tokenBytes } from './utf8-guard.js';
export { CHARACTER_MODEL_FILES, LORA_CHARACTER_FILES, type CharacterModelManifest } from './manifest.js';
export { describeBase, describeBaseFile, checkBaseFile, fileSha256, type BaseReference, type BaseFileRef } from './base-ref.js';
export { SharedBases, type BaseLease, type SharedBaseReport } from './shared-bases.js';
export { parseImagePlan, pyStrip, THINKING_DEFAULTS, type ImagePlan, type ParsedPlan, type ThinkingOptions } from './thinking.js';
