// Inference over KV caches (docs/method.md 1.6-1.8, 4.4): a context is a KV cache plus the next RoPE
// position. Prefill appends text (causal) and images (non-causal, one shared position);
// text decoding is primed with <|im_start|> and stops at <|im_end|>; image generation runs the
// shifted-grid Euler ODE with CFG over three contexts (cond, text-uncond, img-uncond).
import { noGrad, ops, randn, scope, tensor, type Tensor } from '../torch/index.js';
import type { Bagel } from './bagel.js';
import { latentTokenDim } from './config.js';
import { flattenedPositionIds, patchify, unpatchify } from './embeddings.js';
import { KVCache, routingFromFlags, type Routing } from './mot.js';
import { cfgActive, cfgCombine, sampleOde, timestepGrid, type RenormType } from './sampling.js';

/** A fresh, empty context for a model. */
export function newContext(model: Bagel): KVCache {
  return new KVCache(model.config.llm.numLayers);
}

function ids(xs: number[]): Tensor {
  return tensor(xs, { dtype: 'int64' });
}

/** Runs query embeddings against a context; returns the final hidden states [N, D]. */
function runQuery(model: Bagel, ctx: KVCache, inputs: Tensor, positions: number[], routing: Routing, causal: boolean, update: boolean): Tensor {
  return model.language_model.model.forward(inputs, ids(positions), routing, { kind: 'cached', causal }, { cache: ctx, update });
}

/** Appends `<|im_start|> text <|im_end|>` on consecutive positions (causal); the position advances by its length. */
export function prefillText(model: Bagel, ctx: KVCache, textIds: number[]): void {
  noGrad(() => scope(() => {
    const { bos, eos } = model.config.tokens;
    const seq = [bos, ...textIds, eos];
    const p = ctx.nextPosition;
    runQuery(model, ctx, model.language_model.embed(ids(seq)), seq.map((_, k) => p + k), routingFromFlags(seq.map(() => false)), true, true);
    ctx.nextPosition += seq.length;
  }));
}

/**
 * prefillText in chunks of at most `chunkTokens` query tokens, yielding to the event loop between
 * chunks and stopping with an AbortError once `signal` aborts (docs/serving.md 2): a long prompt
 * neither holds the thread nor builds one [N, N] score matrix. Causal attention over the cache
 * makes the result the same as one prefill (the cache and positions are identical).
 */
export async function prefillTextChunked(model: Bagel, ctx: KVCache, textIds: number[], o: { chunkTokens?: number; signal?: AbortSignal } = {}): Promise<void> {
  const { bos, eos } = model.config.tokens;
  await prefillTokens(model, ctx, [bos, ...textIds, eos], o);
}

/**
 * Appends text tokens as they are (no markers added) on consecutive positions, causal, in chunks
 * of at most `chunkTokens` (default 256) as prefillTextChunked does: the prompt prefix cache
 * prefills a prompt's rest after its cached prefix with this (docs/serving.md 9).
 */
export async function prefillTokens(model: Bagel, ctx: KVCache, seq: readonly number[], o: { chunkTokens?: number; signal?: AbortSignal } = {}): Promise<void> {
  const chunk = o.chunkTokens ?? 256;
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new Error(`prefillTokens: chunkTokens must be an integer >= 1, got ${chunk}`);
  for (let start = 0; start < seq.length; start += chunk) {
    if (o.signal?.aborted) throw abortError();
    prefillChunks(model, [{ ctx, tokens: seq.slice(start, start + chunk) }]);
    if (start + chunk < seq.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Appends one chunk of text tokens to each context (causal, on its consecutive positions) in one
 * decoder pass (a batched prefill, docs/serving.md 9): every projection and MLP runs once over
 * all chunks, while each chunk attends to its own context's cache and causally within itself
 * (ContextsLayout with `append`). Each context ends as a prefill of its chunk alone leaves it
 * (test/model/prefill-batch.test.ts); one chunk takes that path itself. Each context appears once.
 */
export function prefillChunks(model: Bagel, parts: readonly { ctx: KVCache; tokens: readonly number[] }[]): void {
  const live = parts.filter((x) => x.tokens.length > 0);
  if (new Set(live.map((x) => x.ctx)).size !== live.length) throw new Error('prefillChunks: each chunk needs its own context');
  if (live.length === 0) return;
  noGrad(() => scope(() => {
    const tokens = live.flatMap((x) => x.tokens);
    const positions = live.flatMap((x) => x.tokens.map((_, k) => x.ctx.nextPosition + k));
    const inputs = model.language_model.embed(ids(tokens));
    const routing = routingFromFlags(tokens.map(() => false));
    if (live.length === 1) runQuery(model, live[0]!.ctx, inputs, positions, routing, true, true);
    else {
      const layout = { kind: 'contexts' as const, append: true, segments: live.map((x) => ({ cache: x.ctx, length: x.tokens.length })) };
      model.language_model.model.forward(inputs, ids(positions), routing, layout, null);
    }
    for (const x of live) x.ctx.nextPosition += x.tokens.length;
  }));
}

/** The error a cancelled generation rejects with (name AbortError, as fetch and streams use),
 * shared by the decoding loops here and the character runtime's. */
export function abortError(): Error {
  const e = new Error('generation cancelled');
  e.name = 'AbortError';
  return e;
}

/** Appends a ViT image [3, H, W] in [-1, 1] as `<|vision_start|> tokens <|vision_end|>` on one position (und expert). */
export function prefillVitImage(model: Bagel, ctx: KVCache, image: Tensor): void {
  noGrad(() => scope(() => {
    const { startOfImage, endOfImage } = model.config.tokens;
    const ps = model.config.vit.patchSize;
    const [, H, W] = image.shape as [number, number, number];
    const patches = patchify(image, ps);
    const n = patches.shape[0]!;
    const vit = model.embedVit(patches, ids(flattenedPositionIds(H / ps, W / ps, model.config.vit.maxNumPatchPerSide)), [n]);
    const marks = model.language_model.embed(ids([startOfImage, endOfImage]));
    const inputs = ops.cat([marks.narrow(0, 0, 1), vit.to(marks.dtype), marks.narrow(0, 1, 1)], 0);
    runQuery(model, ctx, inputs, new Array(n + 2).fill(ctx.nextPosition), routingFromFlags(new Array(n + 2).fill(false)), false, true);
    ctx.nextPosition += 1;
  }));
}

/** Query embeddings of `<|vision_start|> latent tokens <|vision_end|>` at time t: markers und, latents gen. */
function latentQuery(model: Bagel, xt: Tensor, t: number, h: number, w: number): { inputs: Tensor; routing: Routing } {
  const { startOfImage, endOfImage } = model.config.tokens;
  const n = h * w;
  const lat = model.embedLatents(xt, tensor(new Array(n).fill(t), { dtype: 'float32' }), ids(flattenedPositionIds(h, w, model.config.maxLatentSize)));
  const marks = model.language_model.embed(ids([startOfImage, endOfImage]));
  const inputs = ops.cat([marks.narrow(0, 0, 1), lat.to(marks.dtype), marks.narrow(0, 1, 1)], 0);
  return { inputs, routing: routingFromFlags([false, ...new Array<boolean>(n).fill(true), false]) };
}

/** Appends a clean VAE latent [z, h, w] (t = 0) as a full split on one position; the position advances by 1. */
export function prefillVaeImage(model: Bagel, ctx: KVCache, latent: Tensor): void {
  noGrad(() => scope(() => {
    const p = model.config.latentPatchSize;
    const [, h, w] = latent.shape as [number, number, number];
    const { inputs, routing } = latentQuery(model, patchify(latent, p), 0, h / p, w / p);
    runQuery(model, ctx, inputs, new Array(inputs.shape[0]!).fill(ctx.nextPosition), routing, false, true);
    ctx.nextPosition += 1;
  }));
}

/**
 * The predicted velocity [h*w, p*p*z] of latent tokens x_t at time t, generated at the context's
 * current position (non-causal over cache + query; the cache is not changed). Without
 * `grad: true` it records no graph; GRPO's policy update asks for the graph (docs/method.md 3.6).
 */
export function latentVelocity(model: Bagel, ctx: KVCache, xt: Tensor, t: number, h: number, w: number, o: { grad?: boolean } = {}): Tensor {
  const compute = (): Tensor => scope(() => {
    const { inputs, routing } = latentQuery(model, xt, t, h, w);
    const hidden = runQuery(model, ctx, inputs, new Array(inputs.shape[0]!).fill(ctx.nextPosition), routing, false, false);
    return model.velocity(hidden.narrow(0, 1, h * w)).to('float32');
  });
  return o.grad ? compute() : noGrad(compute);
}

/**
 * latentVelocity of the same x_t at time t over several contexts in one decoder pass (text CFG's
 * conditional and unconditional): each context gets its own query block at its own next position
 * over its own cache (ContextsLayout), while the latent embedding is computed once and every
 * projection, MLP and llm2vae runs once over all blocks: half the operations of one call per
 * context. Returns one velocity [h*w, p*p*z] per context, each what latentVelocity gives on that
 * context alone (up to float rounding of the larger matrix products).
 */
export function latentVelocities(model: Bagel, contexts: KVCache[], xt: Tensor, t: number, h: number, w: number, o: { grad?: boolean } = {}): Tensor[] {
  const compute = (): Tensor[] => scope(() => {
    const { inputs, routing } = latentQuery(model, xt, t, h, w);
    const n = inputs.shape[0]!;
    const C = contexts.length;
    const flags = Array.from({ length: n }, (_, i) => i > 0 && i < n - 1);
    const all = C === 1 ? inputs : ops.cat(new Array<Tensor>(C).fill(inputs), 0);
    const routes = C === 1 ? routing : routingFromFlags(contexts.flatMap(() => flags));
    const positions = contexts.flatMap((c) => new Array<number>(n).fill(c.nextPosition));
    const layout = { kind: 'contexts' as const, segments: contexts.map((cache) => ({ cache, length: n })) };
    const hidden = model.language_model.model.forward(all, ids(positions), routes, layout, null);
    const rows = C === 1 ? hidden.narrow(0, 1, h * w) : hidden.index_select(0, ids(contexts.flatMap((_, s) => Array.from({ length: h * w }, (_, i) => s * n + 1 + i))));
    const v = model.velocity(rows).to('float32');
    return C === 1 ? [v] : v.split(h * w, 0);
  });
  return o.grad ? compute() : noGrad(compute);
}

export interface DecodeOptions {
  maxTokens?: number;
  /** 0 (default): greedy argmax; otherwise multinomial sampling of softmax(logits / T). */
  temperature?: number;
  /** Sampling only: keep the k most likely tokens (0 or undefined: off). */
  topK?: number;
  /** Sampling only: keep the smallest most-likely set whose probability reaches p (1 or undefined: off). */
  topP?: number;
  /**
   * Repetition penalty (HF's CTRL-style rule, 1 or undefined: off): the logit of every token
   * already in `penaltyIds` or generated so far is divided by it when positive and multiplied by
   * it when negative. Applies to greedy decoding too.
   */
  repetitionPenalty?: number;
  /** Ids counted as already seen by the repetition penalty (e.g. the prompt). */
  penaltyIds?: number[];
  /**
   * OpenAI's penalties over the generated tokens (0 or undefined: off): the logit of token j is
   * lowered by frequencyPenalty * count_j + presencePenalty * (count_j > 0), after the
   * repetition penalty and before temperature. Apply to greedy decoding too.
   */
  frequencyPenalty?: number;
  presencePenalty?: number;
  /**
   * An additive mask [V] (0 or -inf) of the tokens allowed next, given the ids generated so far
   * (null: all); applied to the raw logits before any other processing, to greedy decoding too.
   * A mask that allows nothing is an error.
   */
  allowedNext?: (generated: readonly number[]) => Tensor | null;
  /** Extra ids that end decoding like <|im_end|> (not yielded). */
  stopIds?: number[];
  /**
   * Strings that end decoding: after each token the text of the generated ids (by `detokenize`)
   * is searched; once a stop string appears the token that completed it has been yielded and
   * decoding stops (as HF's StopStringCriteria; callers cut the text at the stop string).
   */
  stopStrings?: string[];
  /** Text of generated ids, required with stopStrings. */
  detokenize?: (ids: number[]) => string;
  /**
   * The sequence's own uniform source on [0, 1) for sampling (e.g. seededRandom(seed)); without
   * it sampling draws from the global generator (torch multinomial).
   */
  random?: () => number;
  /** Called with each generated token id (the closing <|im_end|> is not reported). */
  onToken?: (id: number) => void;
}

/**
 * The logits processing of one decoding step, as HF orders it: repetition penalty on the raw
 * logits, then (sampling only) temperature, top-k and top-p. logits: [V] float32. Returns the
 * processed logits (filtered entries are -inf); with temperature 0 only the penalty applies.
 */
export function processLogits(
  logits: Tensor,
  seen: Iterable<number>,
  o: Pick<DecodeOptions, 'temperature' | 'topK' | 'topP' | 'repetitionPenalty' | 'frequencyPenalty' | 'presencePenalty'> = {},
  generated: readonly number[] = [],
): Tensor {
  return scope(() => {
    let l = logits;
    const rp = o.repetitionPenalty ?? 1;
    if (rp !== 1) {
      if (!(rp > 0)) throw new Error(`repetitionPenalty must be > 0, got ${rp}`);
      const uniq = [...new Set(seen)];
      if (uniq.length) {
        const idx = ids(uniq);
        const g = l.index_select(0, idx);
        const pen = ops.where(g.lt(0), g.mul(rp), g.div(rp));
        l = l.index_copy(0, idx, pen);
      }
    }
    const fp = o.frequencyPenalty ?? 0;
    const pp = o.presencePenalty ?? 0;
    if ((fp !== 0 || pp !== 0) && generated.length) {
      const counts = new Map<number, number>();
      for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
      const idx = [...counts.keys()];
      const sub = tensor(idx.map((id) => fp * counts.get(id)! + pp), { dtype: 'float32' });
      l = l.index_copy(0, ids(idx), l.index_select(0, ids(idx)).sub(sub));
    }
    const T = o.temperature ?? 0;
    if (T <= 0) return l;
    l = l.div(T);
    const V = l.shape[0]!;
    const k = o.topK ?? 0;
    if (k > 0 && k < V) {
      const [vals] = ops.topk(l, k);
      const kth = vals.narrow(0, k - 1, 1);
      l = l.masked_fill(l.lt(kth), -Infinity);
    }
    const p = o.topP ?? 1;
    if (p < 1) {
      if (!(p > 0)) throw new Error(`topP must be in (0, 1], got ${p}`);
      const [sorted, order] = ops.sort(l, 0, true);
      const cum = sorted.softmax(-1).cumsum(0);
      // keep token j (descending) when the probability of the tokens before it is < p; always the first
      const before = cum.sub(sorted.softmax(-1));
      const removeSorted = before.ge(p);
      const remove = ops.zeros_like(removeSorted).scatter(0, order, removeSorted);
      l = l.masked_fill(remove, -Infinity);
    }
    return l;
  });
}

/**
 * A uniform source on [0, 1) of its own (a 64-bit splitmix generator seeded from `seed`): a
 * sequence that samples from it draws the same tokens whatever else runs beside it (continuous
 * batching, docs/serving.md 9), unlike the global generator that every sequence would share.
 */
export function seededRandom(seed: number | bigint): () => number {
  const M = (1n << 64n) - 1n;
  let state = BigInt.asUintN(64, BigInt(typeof seed === 'number' ? Math.trunc(seed) : seed));
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & M;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  };
}

/** The index drawn from probabilities [V] (any non-negative weights) by inverse CDF at u in [0, 1). */
function drawIndex(probs: Float32Array, u: number): number {
  let total = 0;
  for (let j = 0; j < probs.length; j++) total += probs[j]!;
  if (!(total > 0)) throw new Error('sampling: no token has a positive probability');
  const target = u * total;
  let cum = 0;
  let last = -1;
  for (let j = 0; j < probs.length; j++) {
    const p = probs[j]!;
    if (!(p > 0)) continue;
    cum += p;
    last = j;
    if (cum > target) return j;
  }
  return last;
}

/**
 * One sequence being decoded (docs/method.md 4.4): its own fork of the context, the token it feeds
 * next (<|im_start|> first), its sampling settings and what it generated. decodeSteps advances one
 * alone; decodeBatchStep advances several together, each choosing from its own logits.
 */
export class DecodeSequence {
  readonly work: KVCache;
  readonly generated: number[] = [];
  /** The token fed at the next step. */
  next: number;
  /** True once a stop id, stop string or maxTokens ended it. */
  done: boolean;
  private readonly maxTokens: number;
  private readonly stops: Set<number>;
  private readonly stopStrings: string[];
  private readonly processed: boolean;

  constructor(model: Bagel, ctx: KVCache, readonly o: Omit<DecodeOptions, 'onToken'> = {}) {
    const { bos, eos } = model.config.tokens;
    this.maxTokens = o.maxTokens ?? 500;
    this.stops = new Set([eos, ...(o.stopIds ?? [])]);
    this.stopStrings = (o.stopStrings ?? []).filter((x) => x.length > 0);
    if (this.stopStrings.length && !o.detokenize) throw new Error('decodeSteps: stopStrings need a detokenize function');
    const T = o.temperature ?? 0;
    this.processed = (o.repetitionPenalty ?? 1) !== 1 || (o.frequencyPenalty ?? 0) !== 0 || (o.presencePenalty ?? 0) !== 0 || (T > 0 && ((o.topK ?? 0) > 0 || (o.topP ?? 1) < 1));
    this.next = bos;
    this.done = this.maxTokens <= 0;
    this.work = ctx.fork();
  }

  /**
   * Takes this sequence's logits [V] (float32) of the step that fed `next`: returns the chosen id,
   * or null when it was a stop id; either way the sequence knows whether it is done.
   */
  choose(logits: Tensor): number | null {
    const id = noGrad(() => scope(() => this.pick(logits)));
    if (this.stops.has(id)) {
      this.done = true;
      return null;
    }
    this.generated.push(id);
    this.next = id;
    if (this.generated.length >= this.maxTokens) this.done = true;
    else if (this.stopStrings.length) {
      const text = this.o.detokenize!(this.generated);
      if (this.stopStrings.some((x) => text.includes(x))) this.done = true;
    }
    return id;
  }

  private pick(raw: Tensor): number {
    const o = this.o;
    const T = o.temperature ?? 0;
    let logits = raw;
    // The mask comes first: top-k and top-p choose among the allowed tokens only.
    const allowed = o.allowedNext?.(this.generated) ?? null;
    if (allowed) logits = logits.add(allowed);
    if (this.processed) logits = processLogits(logits, [...(o.penaltyIds ?? []), ...this.generated], o, this.generated);
    if (T <= 0) return logits.argmax().item();
    const probs = (this.processed ? logits : logits.div(T)).softmax(-1);
    if (!o.random) return ops.multinomial(probs, 1).item();
    return drawIndex(probs.dataSync() as Float32Array, o.random());
  }

  dispose(): void {
    this.work.dispose();
  }
}

/**
 * One decoding step for every sequence given (none done): their `next` tokens through the decoder
 * together (Qwen2MoTModel.decodeBatch: weights read once for all rows, each row over its own
 * cache), then each chooses from its own logits. One sequence takes the batch-1 path. Returns each
 * sequence's choice (DecodeSequence.choose).
 */
export function decodeBatchStep(model: Bagel, seqs: readonly DecodeSequence[]): (number | null)[] {
  if (seqs.some((q) => q.done)) throw new Error('decodeBatchStep: a sequence that is done cannot step');
  if (seqs.length === 0) return [];
  const logits = noGrad(() => scope(() => {
    const inputs = model.language_model.embed(ids(seqs.map((q) => q.next)));
    let hidden: Tensor;
    if (seqs.length === 1) {
      const w = seqs[0]!.work;
      hidden = runQuery(model, w, inputs, [w.nextPosition], routingFromFlags([false]), true, true);
    } else {
      hidden = model.language_model.model.decodeBatch(inputs, seqs.map((q) => ({ cache: q.work, position: q.work.nextPosition })));
    }
    for (const q of seqs) q.work.nextPosition += 1;
    return model.logits(hidden).to('float32').keep();
  }));
  try {
    return seqs.map((q, b) => scope(() => q.choose(logits.select(0, b))));
  } finally {
    logits.dispose();
  }
}

/**
 * Decodes text after a context (docs/method.md 4.4), one token per iteration: feeds <|im_start|> at
 * the current position, then greedy or temperature sampling until <|im_end|> or maxTokens. Works
 * on a fork of the context, which is left unchanged (the fork is freed when the iteration ends).
 * Yields the generated ids (without the markers). The defaults (no top-k, top-p, penalty or stop
 * strings) are the reference's behaviour; see DecodeOptions for the extra controls.
 */
export function* decodeSteps(model: Bagel, ctx: KVCache, o: Omit<DecodeOptions, 'onToken'> = {}): Generator<number> {
  const seq = new DecodeSequence(model, ctx, o);
  try {
    while (!seq.done) {
      const id = decodeBatchStep(model, [seq])[0]!;
      if (id === null) return;
      yield id;
    }
  } finally {
    seq.dispose();
  }
}

/** Decodes to completion (see decodeSteps), reporting each token to onToken as it comes. */
export function decodeText(model: Bagel, ctx: KVCache, o: DecodeOptions = {}): number[] {
  const out: number[] = [];
  for (const id of decodeSteps(model, ctx, o)) {
    out.push(id);
    o.onToken?.(id);
  }
  return out;
}

/** decodeSteps as an async iterator that yields to the event loop between tokens (for streaming). */
export async function* streamText(model: Bagel, ctx: KVCache, o: Omit<DecodeOptions, 'onToken'> = {}): AsyncGenerator<number> {
  for (const id of decodeSteps(model, ctx, o)) {
    yield id;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

export interface ImageGenOptions {
  /** Latent grid in tokens (h, w): the image is h * 16 by w * 16 pixels at 7B. */
  h: number;
  w: number;
  numTimesteps?: number;
  timestepShift?: number;
  cfgTextScale?: number;
  cfgImgScale?: number;
  cfgInterval?: [number, number];
  cfgRenormMin?: number;
  cfgRenormType?: RenormType;
  /** Starting noise [h*w, p*p*z] (default: N(0, I) from the global generator). */
  noise?: Tensor;
  /**
   * How the guidance branches run at a step where CFG is active (docs/method.md 1.8): 'joint'
   * (default) computes the cond and uncond velocities in one decoder pass (latentVelocities);
   * 'separate' runs one pass per branch (latentVelocity each), the earlier path, kept so that the
   * two can be compared (bench:model, test/model/inference.test.ts). Equal within float rounding.
   */
  cfgPasses?: 'joint' | 'separate';
}

/**
 * Generates latent tokens with the Euler ODE and CFG (docs/method.md 1.8, 4.4) over the contexts
 * gen (everything), cfgText (before the last text; empty for plain T2I) and cfgImg (texts only).
 * Where guidance is active the branches' velocities come from one decoder pass over their
 * contexts (latentVelocities; o.cfgPasses 'separate' runs one pass per branch instead).
 * Returns the latent [z, 2h, 2w] (VAE space; decode with AutoEncoder.decodeToUnit).
 */
export function generateImage(model: Bagel, ctx: { gen: KVCache; cfgText?: KVCache | null; cfgImg?: KVCache | null }, o: ImageGenOptions): Tensor {
  const grid = timestepGrid(o.numTimesteps ?? 50, o.timestepShift ?? 3.0);
  const interval = o.cfgInterval ?? [0.4, 1.0];
  const textScale = o.cfgTextScale ?? 4.0;
  const imgScale = o.cfgImgScale ?? 1.0;
  const passes = o.cfgPasses ?? 'joint';
  if (passes !== 'joint' && passes !== 'separate') throw new Error(`generateImage: cfgPasses must be 'joint' or 'separate', got ${String(passes)}`);
  const x0 = o.noise ?? randn([o.h * o.w, latentTokenDim(model.config)]);
  // an absent uncond context is the empty one (plain T2I); it holds no tensors
  const empty = newContext(model);
  const velocity = (x: Tensor, tau: number): Tensor => scope(() => {
    const on = cfgActive(tau, interval);
    const g = on ? textScale : 1;
    const gi = on ? imgScale : 1;
    if (!(g > 1)) return latentVelocity(model, ctx.gen, x, tau, o.h, o.w);
    const contexts = [ctx.gen, ctx.cfgText ?? empty, ...(gi > 1 ? [ctx.cfgImg ?? empty] : [])];
    const [cond, uText, uImg] = passes === 'joint'
      ? latentVelocities(model, contexts, x, tau, o.h, o.w)
      : contexts.map((c) => latentVelocity(model, c, x, tau, o.h, o.w));
    return cfgCombine(cond!, uText!, uImg ?? null, { textScale: g, imgScale: gi, renormMin: o.cfgRenormMin ?? 0, renormType: o.cfgRenormType ?? 'global' });
  });
  const x = sampleOde(x0, velocity, grid);
  return scope(() => {
    const latent = unpatchify(x, o.h, o.w, model.config.latentPatchSize, model.config.vae.zChannels);
    x.dispose();
    return latent;
  });
}
