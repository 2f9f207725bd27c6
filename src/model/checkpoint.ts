// Whole-model checkpoints as safetensors with the published BAGEL key names (method.md 2.7, 4.1).
// The two fixed sin-cos tables are written (as the published files hold them) but never read:
// loading drops them and keeps the recomputed tables (train/fsdp_utils.py:166-169).
import { safetensors, scope, type Tensor } from '../torch/index.js';
import { describeLoadResult, type LoadResult, type Module } from '../nn/index.js';

/** Keys recomputed from closed forms rather than loaded. */
export const FIXED_TABLE_KEYS = ['latent_pos_embed.pos_embed', 'vit_pos_embed.pos_embed'];

export interface SaveOptions {
  /** Store floating tensors in this dtype (default: as they are). */
  dtype?: 'float32' | 'bfloat16' | 'float16';
  metadata?: Record<string, string>;
}

/** Writes the model's state dict (parameters and persistent buffers) under its dotted names. */
export function saveCheckpoint(path: string, model: Module, o: SaveOptions = {}): void {
  scope(() => {
    const sd = model.stateDict();
    const out = new Map<string, Tensor>();
    for (const [k, t] of sd) {
      const floating = t.dtype === 'float32' || t.dtype === 'bfloat16' || t.dtype === 'float16' || t.dtype === 'float64';
      out.set(k, o.dtype && floating && t.dtype !== o.dtype ? t.to(o.dtype) : t);
    }
    safetensors.save(path, out, { format: 'pt', ...o.metadata });
  });
}

/**
 * Loads a checkpoint into the model (dtype converted to the model's). Reports missing,
 * unexpected and shape-mismatched keys by name; with strict (default) any of them is an Error
 * naming them all and nothing is loaded. The fixed sin-cos tables are neither loaded nor missed.
 */
export function loadCheckpoint(path: string, model: Module, o: { strict?: boolean } = {}): LoadResult & { metadata: Record<string, string> } {
  const strict = o.strict ?? true;
  return scope(() => {
    const { tensors, metadata } = safetensors.load(path, { keys: (k) => !FIXED_TABLE_KEYS.includes(k) });
    const own = new Set(model.stateDictInfo().keys());
    const check = (r: LoadResult): LoadResult => ({ ...r, missing: r.missing.filter((k) => !FIXED_TABLE_KEYS.includes(k)) });
    // dry run: a strict failure must leave the model untouched
    const dry: LoadResult = check({
      missing: [...own].filter((k) => !tensors.has(k)),
      unexpected: [...tensors.keys()].filter((k) => !own.has(k)),
      mismatched: [],
    });
    const info = model.stateDictInfo();
    for (const [k, t] of tensors) {
      const want = info.get(k)?.shape;
      if (want && (want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i]))) dry.mismatched.push({ key: k, expected: want, got: t.shape });
    }
    if (strict && (dry.missing.length || dry.unexpected.length || dry.mismatched.length)) {
      throw new Error(`${path}: ${describeLoadResult(model.constructor.name, dry)}`);
    }
    const r = check(model.loadStateDict(tensors, { strict: false }));
    return { ...r, metadata };
  });
}
