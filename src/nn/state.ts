// Module state dicts as safetensors files: the checkpoint format of the Hugging Face ecosystem
// and of the published BAGEL weights.
import { safetensors, scope } from '../torch/index.js';
import type { LoadOptions, LoadResult, Module } from './module.js';
import type { Optimizer } from './optim.js';

/** Writes the module's state dict (parameters and persistent buffers) to a safetensors file. */
export function saveModule(path: string, module: Module, metadata?: Record<string, string>): void {
  scope(() => safetensors.save(path, module.stateDict(), metadata));
}

/**
 * Loads a safetensors file into the module in place (see Module.loadStateDict): strict by
 * default, reporting missing, unexpected and shape-mismatched keys by name. The file's metadata
 * comes back with the result.
 */
export function loadModule(path: string, module: Module, options: LoadOptions = {}): LoadResult & { metadata: Record<string, string> } {
  return scope(() => {
    const { tensors, metadata } = safetensors.load(path);
    try {
      return { ...module.loadStateDict(tensors, options), metadata };
    } catch (e) {
      if (e instanceof Error) e.message = `${path}: ${e.message}`;
      throw e;
    }
  });
}

/** Writes an optimizer's state (see Optimizer.stateDict) with its parameter groups as metadata. */
export function saveOptimizer(path: string, optimizer: Optimizer<any, any>, metadata: Record<string, string> = {}): void {
  scope(() => {
    const sd = optimizer.stateDict();
    safetensors.save(path, sd.tensors, { ...metadata, optimizer: optimizer.constructor.name, param_groups: JSON.stringify(sd.paramGroups) });
  });
}

/** Restores an optimizer's state written by saveOptimizer (same parameters, same order). */
export function loadOptimizer(path: string, optimizer: Optimizer<any, any>): void {
  scope(() => {
    const { tensors, metadata } = safetensors.load(path);
    const kind = metadata.optimizer;
    if (kind !== optimizer.constructor.name) throw new Error(`${path}: holds ${kind ?? 'no'} optimizer state, not ${optimizer.constructor.name}`);
    if (metadata.param_groups === undefined) throw new Error(`${path}: no param_groups metadata`);
    optimizer.loadStateDict({ tensors, paramGroups: JSON.parse(metadata.param_groups) });
  });
}
