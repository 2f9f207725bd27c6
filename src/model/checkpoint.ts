// Whole-model checkpoints as safetensors with the published BAGEL key names (docs/method.md 2.7, 4.1).
// The two fixed sin-cos tables are written (as the published files hold them) but never read:
// loading drops them and keeps the recomputed tables (train/fsdp_utils.py:166-169).
import { safetensors, scope, type DType, type Tensor } from '../torch/index.js';
import { describeLoadResult, type LoadResult, type Module } from '../nn/index.js';
import { convPatchWeightToLinear } from './siglip.js';

/** Keys recomputed from closed forms rather than loaded. */
export const FIXED_TABLE_KEYS = ['latent_pos_embed.pos_embed', 'vit_pos_embed.pos_embed'];

export interface SaveOptions {
  /** Store floating tensors in this dtype (default: as they are). */
  dtype?: 'float32' | 'bfloat16' | 'float16';
  metadata?: Record<string, string>;
}

/** float, complex, integer or bool: what a dtype conversion on load may not cross. */
function dtypeKind(d: DType): 'float' | 'complex' | 'int' | 'bool' {
  if (d === 'bool') return 'bool';
  if (d.startsWith('complex')) return 'complex';
  return d.startsWith('float') || d === 'bfloat16' ? 'float' : 'int';
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

/** The ViT patch-embedding key: conv form [D, C, p, p] in SigLIP files, Linear form [D, p*p*C] in BAGEL's. */
export const VIT_PATCH_EMBED_KEY = 'vit_model.vision_model.embeddings.patch_embedding.weight';

/**
 * Rewrites a published-layout state dict into this model's layout, in place (docs/method.md 1.3, 4.1):
 *  - a conv patch-embedding weight [D, C, p, p] becomes the Linear weight [D, p*p*C] in (p, q, c)
 *    order (siglip_navit.py convert_conv2d_to_linear);
 *  - GRPO-style keys `model.*` / `lm_head.*` get the `language_model.` prefix when that is the
 *    name the model has (inference_grpo.py);
 *  - ViT encoder layers at or beyond the number the model builds (the checkpoint may hold
 *    num_hidden_layers of them; BAGEL builds num_hidden_layers + 1 + vit_select_layer) are
 *    removed and returned as `ignored`.
 * Returns the names it ignored.
 */
export function adaptPublishedState(tensors: Map<string, Tensor>, ownKeys: Set<string>): { ignored: string[] } {
  const ignored: string[] = [];
  const conv = tensors.get(VIT_PATCH_EMBED_KEY);
  if (conv && conv.ndim === 4 && ownKeys.has(VIT_PATCH_EMBED_KEY)) tensors.set(VIT_PATCH_EMBED_KEY, convPatchWeightToLinear(conv));
  for (const k of [...tensors.keys()]) {
    if ((k.startsWith('model.') || k.startsWith('lm_head.')) && !ownKeys.has(k) && ownKeys.has(`language_model.${k}`) && !tensors.has(`language_model.${k}`)) {
      tensors.set(`language_model.${k}`, tensors.get(k)!);
      tensors.delete(k);
    }
  }
  let built = 0;
  for (const k of ownKeys) {
    const m = /^vit_model\.vision_model\.encoder\.layers\.(\d+)\./.exec(k);
    if (m) built = Math.max(built, Number(m[1]) + 1);
  }
  if (built > 0) {
    for (const k of [...tensors.keys()]) {
      const m = /^vit_model\.vision_model\.encoder\.layers\.(\d+)\./.exec(k);
      if (m && Number(m[1]) >= built && !ownKeys.has(k)) {
        ignored.push(k);
        tensors.delete(k);
      }
    }
  }
  return { ignored };
}

/**
 * Loads a checkpoint into the model (dtype converted to the model's). Reports missing,
 * unexpected and shape-mismatched keys by name; with strict (default) any of them is an Error
 * naming them all and nothing is loaded. The fixed sin-cos tables are neither loaded nor missed.
 */
export function loadCheckpoint(path: string, model: Module, o: { strict?: boolean } = {}): LoadResult & { metadata: Record<string, string>; ignored: string[] } {
  const strict = o.strict ?? true;
  return scope(() => {
    const { tensors, metadata } = safetensors.load(path, { keys: (k) => !FIXED_TABLE_KEYS.includes(k) });
    const own = new Set(model.stateDictInfo().keys());
    const { ignored } = adaptPublishedState(tensors, own);
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
    // Loading converts within a kind (bfloat16 weights into a float32 model) but never across
    // kinds: integers or booleans read as weights, or weights truncated into integer buffers,
    // mean the file is not what it claims, strict or not.
    const wrongKind = [...tensors]
      .filter(([k, t]) => info.has(k) && dtypeKind(info.get(k)!.dtype) !== dtypeKind(t.dtype))
      .map(([k, t]) => `${k} (${t.dtype} in the file, ${info.get(k)!.dtype} in ${model.constructor.name})`);
    if (wrongKind.length) {
      throw new Error(`${path}: ${wrongKind.length} tensor(s) of the wrong kind of dtype: ${wrongKind.slice(0, 5).join(', ')}${wrongKind.length > 5 ? ', ...' : ''}`);
    }
    const r = check(model.loadStateDict(tensors, { strict: false }));
    return { ...r, metadata, ignored };
  });
}
