// Public surface of the character runtime: a customized character loaded from its model folder,
// replying in text, drawing images and role-playing (docs/architecture.md, "The character runtime").
// Built on torch, model and data; train writes these folders, eval and serve read them.
export { CharacterModel, type ReplyOptions, type ImageOptions } from './character-model.js';
export { CHARACTER_MODEL_FILES, type CharacterModelManifest } from './manifest.js';
