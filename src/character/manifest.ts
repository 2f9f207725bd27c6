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
  /** LoRA folders (a manifest with `base`): the adapters, in place of model.safetensors and ae.safetensors. */
  adapter: 'adapter.safetensors',
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
   * and SHA-256 (a different base is refused; docs/serving.md 9).
   */
  base?: BaseReference;
}
