// The Qwen2-style Mixture-of-Transformers decoder (docs/method.md 1.2). Every layer holds two
// complete weight sets: the "und" expert under the original Qwen2 names and the "gen" expert
// under the same names with `_moe_gen`. Routing is hard and given per token (latent tokens go to
// gen, everything else to und); the attention itself is one joint softmax over all tokens.
import { checkpoint, empty, isGradEnabled, ITEM_SIZE, kernels, noGrad, ops, scaledDotProductAttention, scope, tensor, zeros, type DecodeCacheRows, type DecodeLayerWeights, type Device, type DType, type Tensor } from '../torch/index.js';
import { Embedding, Linear, Module, ModuleList, RMSNorm } from '../nn/index.js';
import type { LlmConfig } from './config.js';

// ---------------------------------------------------------------------------------------------
// Routing

/** Which packed tokens use which expert: int64 index tensors, or null when an expert has none. */
export interface Routing {
  n: number;
  undIndex: Tensor | null;
  genIndex: Tensor | null;
}

/** Routing from a per-token flag list (true = gen expert), its index tensors on `device`. */
export function routingFromFlags(isGen: boolean[], device?: Device): Routing {
  const und: number[] = [];
  const gen: number[] = [];
  isGen.forEach((g, i) => (g ? gen : und).push(i));
  return {
    n: isGen.length,
    undIndex: und.length ? tensor(und, { dtype: 'int64', device }) : null,
    genIndex: gen.length ? tensor(gen, { dtype: 'int64', device }) : null,
  };
}

/** Routing with every token on one expert. */
export function routingAll(n: number, expert: 'und' | 'gen'): Routing {
  return expert === 'und' ? { n, undIndex: null, genIndex: null } : { n, undIndex: null, genIndex: ops.arange(0, n, 1, 'int64') };
}

/**
 * Applies fUnd to the und rows of x and fGen to the gen rows, putting the results back in place.
 * A routing with no index tensors at all means "all und".
 */
export function routed(x: Tensor, r: Routing, fUnd: (x: Tensor) => Tensor, fGen: (x: Tensor) => Tensor): Tensor {
  if (r.genIndex === null) return fUnd(x);
  if (r.undIndex === null) return fGen(x);
  const yu = fUnd(x.index_select(0, r.undIndex));
  const yg = fGen(x.index_select(0, r.genIndex));
  return scatterRows(r, yu, yg);
}

/**
 * The und rows yu and the gen rows yg put back in token order. In place into a fresh tensor (the
 * out-of-place index_copy copies the whole [n, D] tensor once per expert); left uninitialised
 * when the two index sets cover all n rows, as routingFromFlags's do. The same values, the same
 * backward (each source's gradient is grad.index_select of its rows).
 */
function scatterRows(r: Routing, yu: Tensor, yg: Tensor): Tensor {
  const und = r.undIndex!;
  const gen = r.genIndex!;
  const shape = [r.n, ...yu.shape.slice(1)];
  const o = { dtype: yu.dtype, device: yu.device };
  const out = und.shape[0]! + gen.shape[0]! === r.n ? empty(shape, o) : zeros(shape, o);
  ops.index_copy_(out, 0, und, yu);
  return ops.index_copy_(out, 0, gen, yg);
}

/**
 * routed() over two row-aligned inputs: f(a rows, b rows) per expert, results put back in place.
 * The decoder layer routes its attention output and residual stream together this way, one
 * routing for the o projection, both residual adds and the MLP instead of two.
 */
export function routedPair(a: Tensor, b: Tensor, r: Routing, fUnd: (a: Tensor, b: Tensor) => Tensor, fGen: (a: Tensor, b: Tensor) => Tensor): Tensor {
  if (r.genIndex === null) return fUnd(a, b);
  if (r.undIndex === null) return fGen(a, b);
  const yu = fUnd(a.index_select(0, r.undIndex), b.index_select(0, r.undIndex));
  const yg = fGen(a.index_select(0, r.genIndex), b.index_select(0, r.genIndex));
  return scatterRows(r, yu, yg);
}

// ---------------------------------------------------------------------------------------------
// Rotary position embedding (Qwen2RotaryEmbedding, 1-D, rotate-half convention)

/** cos and sin tables [N, headDim] for integer positions [N]: inv_freq_k = theta^(-2k/d), emb = [f, f]. */
export function ropeTables(positions: Tensor, headDim: number, theta: number): { cos: Tensor; sin: Tensor } {
  return scope(() => {
    const invFreq = ops.arange(0, headDim, 2, 'int64', undefined, positions.device).to('float32').div(headDim).mul(Math.log(theta)).neg().exp();
    const freqs = positions.to('float32').unsqueeze(1).mul(invFreq.unsqueeze(0));
    const emb = ops.cat([freqs, freqs], -1);
    return { cos: emb.cos(), sin: emb.sin() };
  });
}

/** x * cos + rotate_half(x) * sin, with rotate_half(x) = [-x2, x1]; x: [..., N, d], tables [N, d]. */
export function applyRope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  return scope(() => {
    const d = x.shape[x.ndim - 1]!;
    const [x1, x2] = x.split(d / 2, -1) as [Tensor, Tensor];
    const rot = ops.cat([x2.neg(), x1], -1);
    const c = cos.dtype === x.dtype ? cos : cos.to(x.dtype);
    const s = sin.dtype === x.dtype ? sin : sin.to(x.dtype);
    return x.mul(c).add(rot.mul(s));
  });
}

// ---------------------------------------------------------------------------------------------
// Attention

/**
 * Options of the decoder. decodeKernels: run one-token steps and the batch-1 LM head through the
 * hand-written kernels of src/torch (docs/architecture.md "Native decode kernels"); default true,
 * off to compare them with the layer-by-layer path.
 */
export interface MoTOptions {
  decodeKernels?: boolean;
}

/**
 * softmax(q k^T / sqrt(D) + mask) v over [B, H, N, D] (mask additive, broadcast). Half-precision
 * inputs take the scores and the softmax in float32 and round the probabilities back once, as the
 * reference's flash attention does (docs/precision.md section 2); float32 takes libtorch's kernel.
 */
export function softmaxAttention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
  if (q.dtype === 'float32' || q.dtype === 'float64') {
    const m = mask === null || mask.dtype === q.dtype ? mask : mask.to(q.dtype);
    return scaledDotProductAttention(q, k, v, m);
  }
  return scope(() => {
    const d = q.shape[q.ndim - 1]!;
    const scores = q.matmul(k.transpose(-2, -1)).to('float32').mul(1 / Math.sqrt(d));
    const masked = mask === null ? scores : scores.add(mask.dtype === 'float32' ? mask : mask.to('float32'));
    return ops.softmax(masked, -1).to(q.dtype).matmul(v);
  });
}

/**
 * Softmax attention of q [H, Nq, D] over k, v [Hkv, Nk, D] (GQA: each key/value head serves
 * G = H/Hkv consecutive query heads) with an optional additive mask, [Nq, Nk] or already
 * repeated over the G query blocks ([G*Nq, Nk], groupedMasks); scale 1/sqrt(D). Returns [Nq, H*D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
  return scope(() => {
    const [H, Nq, D] = q.shape as [number, number, number];
    const Hkv = k.shape[0]!;
    const groups = H / Hkv;
    if (groups > 1) {
      // The G query heads of a KV head share one attention call as G*Nq queries: no copy of the
      // (possibly long, cached) keys and values per query head, in forward or backward.
      const m = mask === null || mask.shape[0] === groups * Nq ? mask : mask.repeat([groups, 1]);
      const qg = q.reshape([1, Hkv, groups * Nq, D]);
      const o = softmaxAttention(qg, k.unsqueeze(0), v.unsqueeze(0), m);
      return o.reshape([H, Nq, D]).transpose(0, 1).reshape([Nq, H * D]);
    }
    const out = softmaxAttention(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), mask);
    return out.squeeze(0).transpose(0, 1).reshape([Nq, H * D]);
  });
}

/**
 * The packed masks [L, L] repeated over the G = H/Hkv query heads of each KV head ([G*L, L]), the
 * shape attention() takes for grouped queries: built once per forward for all layers instead of
 * once per layer (and smaller than the [H, L, L] probabilities the attention keeps anyway).
 */
export function groupedMasks(masks: Tensor[], groups: number): Tensor[] {
  return groups > 1 ? masks.map((m) => m.repeat([groups, 1])) : masks;
}

/**
 * How the query tokens attend. `packed`: the tokens are a concatenation of samples of the given
 * lengths, each with its own additive mask [L, L] (no attention across samples, docs/method.md 1.7).
 * `cached`: the queries attend to the whole KV cache plus themselves, causally among themselves
 * or fully (inference, docs/method.md 1.7 last point); `mask` overrides with an explicit [Nq, Nc+Nq].
 */
export type AttentionLayout =
  | { kind: 'packed'; sampleLens: number[]; masks: Tensor[] }
  | { kind: 'cached'; causal: boolean; mask?: Tensor | null }
  | ContextsLayout;

/**
 * Several contexts' queries in one pass (CFG's conditional and unconditional velocity, docs/method.md
 * 1.8): the queries are consecutive blocks of `length` tokens; block s attends fully to its
 * context's cache (read, never written) and to itself, exactly as a `cached` non-causal forward
 * of that block alone, while every projection and MLP runs once over all blocks. `layer` is set
 * by Qwen2MoTModel.forward for each layer (which cache rows to read).
 */
export interface ContextsLayout {
  kind: 'contexts';
  segments: { cache: KVCache; length: number }[];
  layer?: number;
}

/** Shape, dtype and device of a cache row block [heads, n, dim]. */
export interface RowLike { heads: number; dim: number; dtype: DType; device: string }

/**
 * Keys and values per layer ([Hkv, L, D], keys after k_norm and RoPE), kept outside scopes.
 * Each layer holds a buffer with spare room along L, so appending a decoded token writes one row
 * instead of copying the whole cache (which made decoding slower as the context grew). Forks
 * share buffers copy-on-write: the first append to a shared buffer copies it.
 */
export class KVCache {
  private keyBuf: (Tensor | null)[];
  private valueBuf: (Tensor | null)[];
  /** Whether a layer's buffers may be seen by another fork (then appends copy first). */
  private shared: boolean[];
  /** Tokens cached. */
  length = 0;
  /** The next RoPE position to use (docs/method.md 1.6: prefill advances it). */
  nextPosition = 0;

  constructor(readonly numLayers: number) {
    this.keyBuf = new Array(numLayers).fill(null);
    this.valueBuf = new Array(numLayers).fill(null);
    this.shared = new Array(numLayers).fill(false);
  }
  /** An independent copy: appends to either never show in the other. */
  fork(): KVCache {
    const c = new KVCache(this.numLayers);
    c.keyBuf = this.keyBuf.map((t) => (t ? t.detach().keep() : null));
    c.valueBuf = this.valueBuf.map((t) => (t ? t.detach().keep() : null));
    for (let l = 0; l < this.numLayers; l++) {
      const s = this.keyBuf[l] !== null;
      this.shared[l] = this.shared[l] || s;
      c.shared[l] = s;
    }
    c.length = this.length;
    c.nextPosition = this.nextPosition;
    return c;
  }
  /** A fork that keeps only the first `n` rows (the rest is never read and the next append writes over it). */
  forkPrefix(n: number): KVCache {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.length)) throw new Error(`KVCache.forkPrefix: n must be an integer in [0, ${this.length}], got ${n}`);
    const c = this.fork();
    c.length = n;
    return c;
  }
  /** Bytes the buffers hold (their whole capacity). */
  get bytes(): number {
    let b = 0;
    for (const t of [...this.keyBuf, ...this.valueBuf]) if (t) b += t.numel * ITEM_SIZE[t.dtype];
    return b;
  }
  /** The cached keys and values of a layer ([Hkv, length, D] views), or null when empty. */
  cached(layer: number): [Tensor, Tensor] | null {
    const k = this.keyBuf[layer];
    const v = this.valueBuf[layer];
    return k && v && this.length > 0 ? [k.narrow(1, 0, this.length), v.narrow(1, 0, this.length)] : null;
  }
  /**
   * The cache of a layer joined with new keys/values k, v [Hkv, n, D]; with `update` the new rows
   * are also stored (detached). The caller advances `length` once every layer has appended.
   */
  append(layer: number, k: Tensor, v: Tensor, update: boolean): [Tensor, Tensor] {
    const len = this.length;
    const n = k.shape[1]!;
    // Gradients flow to the new rows through cat; the buffer write below would cut them.
    if (!update || k.requiresGrad || v.requiresGrad) {
      const c = this.cached(layer);
      const joined: [Tensor, Tensor] = c ? [ops.cat([c[0], k], 1), ops.cat([c[1], v], 1)] : [k, v];
      if (update) noGrad(() => this.write(layer, len, k.detach(), v.detach()));
      return joined;
    }
    noGrad(() => this.write(layer, len, k, v));
    return [this.keyBuf[layer]!.narrow(1, 0, len + n), this.valueBuf[layer]!.narrow(1, 0, len + n)];
  }
  /**
   * The buffers of a layer, unshared and with room for one more row at `length` (like k, v
   * [Hkv, 1, D]): the native one-token decode writes that row itself.
   */
  rowBuffers(layer: number, like: RowLike): [Tensor, Tensor] {
    return this.ensure(layer, this.length, 1, like);
  }
  /** Writes rows [at, at + n) of a layer, growing (or un-sharing) the buffers first if needed. */
  private write(layer: number, at: number, k: Tensor, v: Tensor): void {
    const n = k.shape[1]!;
    const [kb, vb] = this.ensure(layer, at, n, { heads: k.shape[0]!, dim: k.shape[2]!, dtype: k.dtype, device: k.device });
    scope(() => {
      kb.narrow(1, at, n).copy_(k);
      vb.narrow(1, at, n).copy_(v);
    });
  }
  private ensure(layer: number, at: number, n: number, like: RowLike): [Tensor, Tensor] {
    let kb = this.keyBuf[layer];
    let vb = this.valueBuf[layer];
    if (!kb || !vb || this.shared[layer] || kb.shape[1]! < at + n || kb.dtype !== like.dtype) {
      const cap = Math.max(64, at + n, kb && !this.shared[layer] ? 2 * kb.shape[1]! : 0);
      const grow = (old: Tensor | null): Tensor => scope(() => {
        const b = empty([like.heads, cap, like.dim], { dtype: like.dtype, device: like.device });
        if (old && at > 0) b.narrow(1, 0, at).copy_(old.narrow(1, 0, at));
        return b;
      }).keep();
      const nk = grow(kb);
      const nv = grow(vb);
      kb?.dispose();
      vb?.dispose();
      this.keyBuf[layer] = kb = nk;
      this.valueBuf[layer] = vb = nv;
      this.shared[layer] = false;
    }
    return [kb, vb];
  }
  dispose(): void {
    for (const t of [...this.keyBuf, ...this.valueBuf]) t?.dispose();
    this.keyBuf.fill(null);
    this.valueBuf.fill(null);
    this.shared.fill(false);
    this.length = 0;
  }
}

/** The additive mask of `cached` attention: [Nq, Nc + Nq], 0 or -inf. */
export function cachedMask(nCache: number, nQuery: number, causal: boolean): Tensor | null {
  if (!causal || nQuery === 1) return null;
  return scope(() => {
    const allowed = ops.ones([nQuery, nQuery], 'bool').tril();
    const full = ops.cat([ops.ones([nQuery, nCache], 'bool'), allowed], 1);
    return additiveMask(full);
  });
}

/** 0 where allowed, -inf elsewhere (float32, on the device of `allowed`). */
export function additiveMask(allowed: Tensor): Tensor {
  return scope(() => zeros(allowed.shape, { device: allowed.device }).masked_fill(allowed.logical_not(), -Infinity));
}

/** Qwen2 SwiGLU MLP: down(silu(gate(x)) * up(x)), no biases. */
export class Qwen2MLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(hidden: number, intermediate: number) {
    super();
    this.gate_proj = this.registerModule('gate_proj', new Linear(hidden, intermediate, { bias: false }));
    this.up_proj = this.registerModule('up_proj', new Linear(hidden, intermediate, { bias: false }));
    this.down_proj = this.registerModule('down_proj', new Linear(intermediate, hidden, { bias: false }));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.down_proj.forward(ops.silu(this.gate_proj.forward(x)).mul(this.up_proj.forward(x))));
  }
}

interface ExpertAttnWeights {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  qNorm: RMSNorm;
  kNorm: RMSNorm;
}

/** Per-expert q/k/v (bias) and o (no bias) projections and per-head q/k RMSNorms; shared attention. */
export class Qwen2MoTAttention extends Module {
  readonly und: ExpertAttnWeights;
  readonly gen: ExpertAttnWeights;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;

  constructor(readonly config: LlmConfig) {
    super();
    const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, rmsNormEps: eps } = config;
    this.numHeads = H;
    this.numKvHeads = Hkv;
    this.headDim = d;
    const make = (suffix: string): ExpertAttnWeights => ({
      q: this.registerModule(`q_proj${suffix}`, new Linear(D, H * d)),
      k: this.registerModule(`k_proj${suffix}`, new Linear(D, Hkv * d)),
      v: this.registerModule(`v_proj${suffix}`, new Linear(D, Hkv * d)),
      o: this.registerModule(`o_proj${suffix}`, new Linear(H * d, D, { bias: false })),
      qNorm: this.registerModule(`q_norm${suffix}`, new RMSNorm(d, eps)),
      kNorm: this.registerModule(`k_norm${suffix}`, new RMSNorm(d, eps)),
    });
    this.und = make('');
    this.gen = make('_moe_gen');
  }

  /**
   * x: [N, D] (already input-normed per expert). Returns [N, D]. With a cache, the new keys and
   * values are joined to the cached ones and, if `update`, stored back.
   */
  forward(
    x: Tensor,
    rope: { cos: Tensor; sin: Tensor },
    routing: Routing,
    layout: AttentionLayout,
    cache: { cache: KVCache; layer: number; update: boolean } | null,
  ): Tensor {
    return scope(() => {
      const out = this.attend(x, rope, routing, layout, cache, null);
      return routed(out, routing, (h) => this.und.o.forward(h), (h) => this.gen.o.forward(h));
    });
  }

  /**
   * forward() without the o projection: the joint attention's output [N, H*d]. With
   * `inputNorms`, x is the raw residual stream and each expert's input norm is applied inside
   * the q/k/v routing (one routing for both).
   */
  attend(
    x: Tensor,
    rope: { cos: Tensor; sin: Tensor },
    routing: Routing,
    layout: AttentionLayout,
    cache: { cache: KVCache; layer: number; update: boolean } | null,
    inputNorms: { und: RMSNorm; gen: RMSNorm } | null,
  ): Tensor {
    return scope(() => {
      const N = x.shape[0]!;
      const { numHeads: H, numKvHeads: Hkv, headDim: d } = this;
      // q, k, v per expert, then the per-head norms per expert (docs/method.md 1.2)
      const qkv = (e: ExpertAttnWeights, norm: RMSNorm | undefined) => (t: Tensor): Tensor => {
        const h = norm ? norm.forward(t) : t;
        const n = h.shape[0]!;
        const q = e.qNorm.forward(e.q.forward(h).reshape([n, H, d])).reshape([n, H * d]);
        const k = e.kNorm.forward(e.k.forward(h).reshape([n, Hkv, d])).reshape([n, Hkv * d]);
        const v = e.v.forward(h);
        return ops.cat([q, k, v], 1);
      };
      const all = routed(x, routing, qkv(this.und, inputNorms?.und), qkv(this.gen, inputNorms?.gen));
      const [qf, kf, vf] = all.split([H * d, Hkv * d, Hkv * d], 1) as [Tensor, Tensor, Tensor];
      // [N, heads*d] -> [heads, N, d], then RoPE (shared)
      const q = applyRope(qf.reshape([N, H, d]).transpose(0, 1), rope.cos, rope.sin);
      let k = applyRope(kf.reshape([N, Hkv, d]).transpose(0, 1), rope.cos, rope.sin);
      let v = vf.reshape([N, Hkv, d]).transpose(0, 1);
      let out: Tensor;
      if (layout.kind === 'packed') {
        const parts: Tensor[] = [];
        let at = 0;
        layout.sampleLens.forEach((L, s) => {
          const sl = (t: Tensor): Tensor => t.narrow(1, at, L);
          parts.push(attention(sl(q), sl(k), sl(v), layout.masks[s] ?? null));
          at += L;
        });
        out = parts.length === 1 ? parts[0]! : ops.cat(parts, 0);
      } else if (layout.kind === 'contexts') {
        out = contextsAttention(q, k, v, layout);
      } else {
        const nCache = cache ? cache.cache.length : 0;
        if (cache) [k, v] = cache.cache.append(cache.layer, k, v, cache.update);
        const mask = layout.mask !== undefined ? layout.mask : cachedMask(nCache, N, layout.causal);
        out = attention(q, k, v, mask);
      }
      return out;
    });
  }
}

/** Attention of a ContextsLayout: each block over its context's cached rows plus itself; [N, H*d]. */
function contextsAttention(q: Tensor, k: Tensor, v: Tensor, layout: ContextsLayout): Tensor {
  const layer = layout.layer;
  if (layer === undefined) throw new Error('contexts attention: the layout has no layer index (set by Qwen2MoTModel.forward)');
  const parts: Tensor[] = [];
  let at = 0;
  for (const { cache, length } of layout.segments) {
    const sl = (t: Tensor): Tensor => t.narrow(1, at, length);
    const c = cache.cached(layer);
    const ks = c ? ops.cat([c[0], sl(k)], 1) : sl(k);
    const vs = c ? ops.cat([c[1], sl(v)], 1) : sl(v);
    parts.push(attention(sl(q), ks, vs, null));
    at += length;
  }
  return parts.length === 1 ? parts[0]! : ops.cat(parts, 0);
}

/** One MoT layer: h += O_e(Attn(...LN1_e(h))); h += MLP_e(LN2_e(h)), e = the token's expert. */
export class Qwen2MoTDecoderLayer extends Module {
  readonly self_attn: Qwen2MoTAttention;
  readonly mlp: Qwen2MLP;
  readonly mlp_moe_gen: Qwen2MLP;
  readonly input_layernorm: RMSNorm;
  readonly input_layernorm_moe_gen: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  readonly post_attention_layernorm_moe_gen: RMSNorm;

  constructor(config: LlmConfig) {
    super();
    const { hiddenSize: D, intermediateSize: I, rmsNormEps: eps } = config;
    this.self_attn = this.registerModule('self_attn', new Qwen2MoTAttention(config));
    this.mlp = this.registerModule('mlp', new Qwen2MLP(D, I));
    this.mlp_moe_gen = this.registerModule('mlp_moe_gen', new Qwen2MLP(D, I));
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm(D, eps));
    this.input_layernorm_moe_gen = this.registerModule('input_layernorm_moe_gen', new RMSNorm(D, eps));
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', new RMSNorm(D, eps));
    this.post_attention_layernorm_moe_gen = this.registerModule('post_attention_layernorm_moe_gen', new RMSNorm(D, eps));
  }

  forward(
    h: Tensor,
    rope: { cos: Tensor; sin: Tensor },
    routing: Routing,
    layout: AttentionLayout,
    cache: { cache: KVCache; layer: number; update: boolean } | null,
  ): Tensor {
    return scope(() => {
      // two routings per layer (input norm + q/k/v; o + residual + MLP + residual) instead of
      // four: the same operations on the same rows, fewer gathers and scatters
      const a = this.self_attn;
      const out = a.attend(h, rope, routing, layout, cache, { und: this.input_layernorm, gen: this.input_layernorm_moe_gen });
      const block = (o: Linear, norm: RMSNorm, mlp: Qwen2MLP) => (attn: Tensor, rows: Tensor): Tensor => {
        const h1 = rows.add(o.forward(attn));
        return h1.add(mlp.forward(norm.forward(h1)));
      };
      return routedPair(out, h, routing, block(a.und.o, this.post_attention_layernorm, this.mlp), block(a.gen.o, this.post_attention_layernorm_moe_gen, this.mlp_moe_gen));
    });
  }
}

/**
 * One decoder layer under activation checkpointing (docs/precision.md section 3): the tensors the
 * layer reads (hidden states, RoPE tables, routing indexes, masks) are the node's saved inputs;
 * everything else (shapes, the KV cache object, which is only read) is captured.
 */
function checkpointedLayer(
  layer: Qwen2MoTDecoderLayer, h: Tensor, rope: { cos: Tensor; sin: Tensor }, routing: Routing, layout: AttentionLayout,
  cache: { cache: KVCache; layer: number; update: boolean } | null,
): Tensor {
  const saved: Tensor[] = [h, rope.cos, rope.sin];
  const und = routing.undIndex ? saved.push(routing.undIndex) - 1 : -1;
  const gen = routing.genIndex ? saved.push(routing.genIndex) - 1 : -1;
  let rebuild: (t: Tensor[]) => AttentionLayout;
  if (layout.kind === 'packed') {
    const start = saved.length;
    const count = layout.masks.length;
    const sampleLens = layout.sampleLens;
    saved.push(...layout.masks);
    rebuild = (t) => ({ kind: 'packed', sampleLens, masks: t.slice(start, start + count) });
  } else if (layout.kind === 'contexts') {
    rebuild = () => layout; // no tensors: the caches are only read
  } else {
    const { causal, mask } = layout;
    const at = mask ? saved.push(mask) - 1 : -1;
    rebuild = (t) => (mask === undefined ? { kind: 'cached', causal } : { kind: 'cached', causal, mask: at >= 0 ? t[at]! : null });
  }
  const n = routing.n;
  const run = (t: Tensor[]): Tensor => layer.forward(
    t[0]!, { cos: t[1]!, sin: t[2]! }, { n, undIndex: und >= 0 ? t[und]! : null, genIndex: gen >= 0 ? t[gen]! : null }, rebuild(t), cache,
  );
  return checkpoint(run, saved, { hasTrainableParameters: layer.parameters().some((p) => p.requiresGrad) }) as Tensor;
}

/** Runs decoder layer `index` as `run(h)`, with whatever it needs around the call (Qwen2MoTModel.layerHook). */
export type LayerHook = (index: number, run: (h: Tensor) => Tensor, h: Tensor) => Tensor;

/** Embedding, layers and the per-expert final norms (keys `language_model.model.*`). */
export class Qwen2MoTModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<Qwen2MoTDecoderLayer>;
  readonly norm: RMSNorm;
  readonly norm_moe_gen: RMSNorm;
  /** Whether one-token steps run through kernels.motDecodeStep (MoTOptions). */
  readonly decodeKernels: boolean;
  /**
   * Recompute each layer in backward instead of keeping its activations (docs/precision.md
   * section 3); only while recording gradients, and never for a forward that writes the KV cache.
   */
  activationCheckpointing = false;
  /**
   * Wraps each decoder layer's call when set: `run(h)` is the layer (checkpointed or not); fully
   * sharded data parallel gathers the layer's weights around it (docs/sharding.md 3).
   */
  layerHook: LayerHook | null = null;

  constructor(readonly config: LlmConfig, options: MoTOptions = {}) {
    super();
    this.decodeKernels = options.decodeKernels ?? true;
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding(config.vocabSize, config.hiddenSize));
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: config.numLayers }, () => new Qwen2MoTDecoderLayer(config))));
    this.norm = this.registerModule('norm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
    this.norm_moe_gen = this.registerModule('norm_moe_gen', new RMSNorm(config.hiddenSize, config.rmsNormEps));
  }

  /**
   * Runs the layers over input embeddings [N, D] at integer positions [N]; returns the final
   * hidden states [N, D] after each token's expert's final norm.
   */
  forward(
    inputs: Tensor,
    positions: Tensor,
    routing: Routing,
    layout: AttentionLayout,
    cache: { cache: KVCache; update: boolean } | null = null,
  ): Tensor {
    return scope(() => {
      if (cache && cache.update && inputs.shape[0] === 1 && routing.genIndex === null && layout.kind === 'cached' && !layout.mask && this.canDecodeNatively(inputs)) {
        const h = this.decodeNatively(inputs, positions.item(), cache.cache);
        cache.cache.length += 1;
        return h;
      }
      const rope = ropeTables(positions, this.config.headDim, this.config.ropeTheta);
      const groups = this.config.numHeads / this.config.numKvHeads;
      if (layout.kind === 'packed' && groups > 1) layout = { ...layout, masks: groupedMasks(layout.masks, groups) };
      let h = inputs;
      let i = 0;
      const recompute = this.activationCheckpointing && isGradEnabled() && !(cache && cache.update);
      for (const layer of this.layers) {
        const c = cache ? { cache: cache.cache, layer: i, update: cache.update } : null;
        const lay = layout.kind === 'contexts' ? { ...layout, layer: i } : layout;
        const run = (x: Tensor): Tensor => (recompute ? checkpointedLayer(layer, x, rope, routing, lay, c) : layer.forward(x, rope, routing, lay, c));
        h = this.layerHook ? this.layerHook(i, run, h) : run(h);
        i++;
      }
      if (cache && cache.update) cache.cache.length += inputs.shape[0]!;
      return routed(h, routing, (t) => this.norm.forward(t), (t) => this.norm_moe_gen.forward(t));
    });
  }

  /**
   * Whether a one-token step can run in the native decode loop (native/src/mot_decode.cc): no
   * gradient, no LoRA on the understanding expert, and the switch on. Same operations, same
   * results as the layer-by-layer path (test/model/mot.test.ts compares them).
   */
  private canDecodeNatively(inputs: Tensor): boolean {
    if (!this.decodeKernels || isGradEnabled() || inputs.requiresGrad) return false;
    for (const layer of this.layers) {
      const a = layer.self_attn.und;
      const m = layer.mlp;
      if (a.q.lora || a.k.lora || a.v.lora || a.o.lora || m.gate_proj.lora || m.up_proj.lora || m.down_proj.lora) return false;
    }
    return true;
  }

  /**
   * One token [1, D] through every layer on the understanding expert and the final norm;
   * appends to the cache.
   */
  private decodeNatively(x: Tensor, position: number, cache: KVCache): Tensor {
    return kernels.motDecodeStep(x, this.decodeWeights(), this.cacheRows(cache, x), cache.length, position, this.config, this.norm.weight);
  }

  /** The understanding expert's weights per layer, in the decode kernels' order. */
  private decodeWeights(): DecodeLayerWeights[] {
    return [...this.layers].map((layer) => {
      const a = layer.self_attn.und;
      const m = layer.mlp;
      return {
        inputNorm: layer.input_layernorm.weight, q: a.q.weight, qBias: a.q.bias, k: a.k.weight, kBias: a.k.bias,
        v: a.v.weight, vBias: a.v.bias, o: a.o.weight, qNorm: a.qNorm.weight, kNorm: a.kNorm.weight,
        postNorm: layer.post_attention_layernorm.weight, gate: m.gate_proj.weight, up: m.up_proj.weight, down: m.down_proj.weight,
      };
    });
  }

  /** A cache's row buffers per layer, each with room for one more token like x's. */
  private cacheRows(cache: KVCache, x: Tensor): DecodeCacheRows[] {
    const { numKvHeads: Hkv, headDim: d } = this.config;
    return Array.from({ length: this.config.numLayers }, (_, i) => {
      const [keys, values] = cache.rowBuffers(i, { heads: Hkv, dim: d, dtype: x.dtype, device: x.device });
      return { keys, values };
    });
  }

  /**
   * One decoding step for B sequences together (continuous batching, docs/serving.md 9): token
   * embeddings inputs [B, D], row b at rows[b].position over its own cache rows[b].cache (any
   * lengths), which it appends to. Returns the final hidden states [B, D]. Natively each weight
   * matrix is read once for all rows (kernels.motDecodeBatch); where the native step does not
   * apply (LoRA on the understanding expert, gradients, decodeKernels off) each row runs the
   * layer-by-layer path alone. Either way row b equals a one-token forward of that row alone.
   */
  decodeBatch(inputs: Tensor, rows: readonly { cache: KVCache; position: number }[]): Tensor {
    const B = inputs.shape[0]!;
    if (inputs.ndim !== 2 || B !== rows.length) throw new Error(`decodeBatch: inputs must be [${rows.length}, D] (one row per sequence), got [${inputs.shape.join(', ')}]`);
    if (new Set(rows.map((r) => r.cache)).size !== B) throw new Error('decodeBatch: each row needs its own cache');
    return scope(() => {
      if (this.canDecodeNatively(inputs) && kernels.hasDecodeBatch()) {
        const weights = this.decodeWeights();
        const batch = rows.map((r) => ({ cache: this.cacheRows(r.cache, inputs), length: r.cache.length, position: r.position }));
        const h = kernels.motDecodeBatch(inputs, weights, batch, this.config, this.norm.weight);
        for (const r of rows) r.cache.length += 1;
        return h;
      }
      const und = routingFromFlags([false]);
      const outs = rows.map((r, b) => this.forward(inputs.narrow(0, b, 1), tensor([r.position], { dtype: 'int64' }), und, { kind: 'cached', causal: true }, { cache: r.cache, update: true }));
      return B === 1 ? outs[0]! : ops.cat(outs, 0);
    });
  }
}

/** Rows up to which the LM head runs through the decode kernels (a batched step's, not a prompt's). */
const MAX_DECODE_ROWS = 64;

/** The decoder with its untied LM head (keys `language_model.model.*`, `language_model.lm_head.*`). */
export class Qwen2MoTForCausalLM extends Module {
  readonly model: Qwen2MoTModel;
  readonly lm_head: Linear;
  constructor(readonly config: LlmConfig, options: MoTOptions = {}) {
    super();
    this.model = this.registerModule('model', new Qwen2MoTModel(config, options));
    this.lm_head = this.registerModule('lm_head', new Linear(config.hiddenSize, config.vocabSize, { bias: false }));
  }
  /** Token embeddings [N] -> [N, D]. */
  embed(ids: Tensor): Tensor {
    return this.model.embed_tokens.forward(ids);
  }
  logits(hidden: Tensor): Tensor {
    const head = this.lm_head;
    // decoded tokens (one, or a batched step's rows): the decode kernels read the head's weights
    // at about twice the rate of at::linear's BLAS call when they are not in cache
    // (bench/README.md, model section), and a batched row's logits equal that row's alone bit for bit
    const dtype = head.weight.dtype;
    if (this.model.decodeKernels && hidden.shape.length === 2 && hidden.shape[0]! <= MAX_DECODE_ROWS && hidden.dtype === dtype &&
      (dtype === 'float32' || dtype === 'bfloat16') && hidden.device === 'cpu' && head.weight.device === 'cpu' &&
      !head.lora && !isGradEnabled()) {
      return kernels.linearVector(hidden, head.weight, head.bias);
    }
    return head.forward(hidden);
  }

  /** Copies every und weight into its gen counterpart (init_moe, docs/method.md 1.2). */
  initMoeFromUnd(): void {
    noGrad(() => scope(() => {
      const sd = this.stateDict();
      for (const [k, t] of sd) {
        const m = /^(.*?)(q_proj|k_proj|v_proj|o_proj|q_norm|k_norm|mlp|input_layernorm|post_attention_layernorm|norm)_moe_gen(\..*)$/.exec(k);
        if (!m) continue;
        const src = sd.get(`${m[1]}${m[2]}${m[3]}`);
        if (src) t.copy_(src); // t shares storage with the parameter
      }
    }));
  }
}
