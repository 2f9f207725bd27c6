// The model folder a customized character is saved as: its file names and the manifest that
// records how to rebuild the model (docs/architecture.md, "The character runtime").
import type { ModelConfig } from '../model/index.js';
import type { BaseReference } from './base-ref.js';

/** Files of a character model folder. */
export const CHARACTER_MODEL_FILES = {
  manifest: 'unicharacter.json',
  model: 'model.safetensors',
  vae: 'ae.safetensors',
  tokenizer: 'tokenizer.json',
  character: 'character.json',
} as const;

/** Files of a LoRA character folder (a manifest with `base`): the adapters in place of the weights and VAE. */
export const LORA_CHARACTER_FILES = {
  manifest: CHARACTER_MODEL_FILES.manifest,
  adapter: 'adapter.safetensors',
  tokenizer: CHARACTER_MODEL_FILES.tokenizer,
  character: CHARACTER_MODEL_FILES.character,
} as const;

export interface CharacterModelManifest {
  format: 1;
  modelConfig: ModelConfig;
  /** Square image side in pixels the model was trained on. */
  imageSize: number;
  /** Where it came from (run directory, step), for reports. */
  provenance: Record<string, string | number>;
  /**
   * Present in a LoRA folder: the base weights and VAE the adapters apply over, with their size
   * and SHA-256 (a different base is refused; docs/serving.md 10).
   */
  base?: BaseReference;
}
