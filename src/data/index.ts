// Public surface of src/data (architecture.md "Layers": other layers import from here).
export * from './character.js';
export { DataError, Diagnostics, formatWarning, type DataWarning, type DataLocation } from './diagnostics.js';
export { namesOfFolder, prefixOfFolder, grpoOfPrefix, datasetKeyOfFolder } from './names.js';
export { readRoleScapeSplit, readRoleScapeCharacter, mergeSplits, type LoadedCharacter, type FolderFacts, type SplitResult, type ReadOptions } from './rolescape.js';
export * from './image.js';
export * from './templates.js';
export * from './samples.js';
export { parseRecipe, BUILTIN_RECIPES, Mixture, GroupStream, RecipeSchema, type Recipe, type RecipeGroup } from './mixture.js';
export * from './packing.js';
export { Rng } from './rng.js';
export { characterStats, formatStatsTable, type CharacterStats } from './stats.js';
export { dataValidate, dataStats, type ValidateResult, type DataCliOptions } from './cli.js';
export { importCard, exportCard, type CardFormat, type ImportOptions, type ExportOptions } from './cards/index.js';
export { loadSampleCharacter } from './sample-character/load.js';
export { buildSampleCharacter } from './sample-character/build.js';
export { writeSampleCharacter } from './sample-character/write.js';
export { SAMPLE_ROOT, SAMPLE_FOLDER } from './sample-character/paths.js';
export { Tokenizer, StreamDecoder, streamDecode, trainTinyTokenizer, trainSampleTokenizer, characterTexts, characterSampleTexts, byteLevelAlphabet, byteLevelBpeJson, SPECIAL_TOKENS, QWEN2_SPLIT_REGEX, TINY_VOCAB_SIZE, type SpecialTokenIds, type SpecialTokenName, type DecodeOptions, type TrainTokenizerOptions, type TrainedTokenizer } from './tokenizer.js';
