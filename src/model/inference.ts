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
  const seq = [bos, ...textIds, eos];
  const chunk = o.chunkTokens ?? 256;
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new Error(`prefillTextChunked: chunkTokens must be an integer >= 1, got ${chunk}`);
  for (let start = 0; start < seq.length; start += chunk) {
    if (o.signal?.aborted) throw abortError();
    const part = seq.slice(start, start + chunk);
    noGrad(() => scope(() => {
      const p = ctx.nextPosition;
      runQuery(model, ctx, model.language_model.embed(ids(part)), part.map((_, k) => p + k), routingFromFlags(part.map(() => false)), true, true);
      ctx.nextPosition += part.length;
    }));
    if (start + chunk < seq.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function abortError(): Error {
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
 * Decodes text after a context (docs/method.md 4.4), one token per iteration: feeds <|im_start|> at
 * the current position, then greedy or temperature sampling until <|im_end|> or maxTokens. Works
 * on a fork of the context, which is left unchanged (the fork is freed when the iteration ends).
 * Yields the generated ids (without the markers). The defaults (no top-k, top-p, penalty or stop
 * strings) are the reference's behaviour; see DecodeOptions for the extra controls.
 */
export function* decodeSteps(model: Bagel, ctx: KVCache, o: Omit<DecodeOptions, 'onToken'> = {}): Generator<number> {
  const { bos, eos } = model.config.tokens;
  const maxTokens = o.maxTokens ?? 500;
  const T = o.temperature ?? 0;
  const stops = new Set([eos, ...(o.stopIds ?? [])]);
  const stopStrings = (o.stopStrings ?? []).filter((s) => s.length > 0);
  if (stopStrings.length && !o.detokenize) throw new Error('decodeSteps: stopStrings need a detokenize function');
  const processed = (o.repetitionPenalty ?? 1) !== 1 || (o.frequencyPenalty ?? 0) !== 0 || (o.presencePenalty ?? 0) !== 0 || (T > 0 && ((o.topK ?? 0) > 0 || (o.topP ?? 1) < 1));
  const generated: number[] = [];
  const work = ctx.fork();
  try {
    let next = bos;
    for (let k = 0; k < maxTokens; k++) {
      const id = noGrad(() => scope(() => {
        const hidden = runQuery(model, work, model.language_model.embed(ids([next])), [work.nextPosition], routingFromFlags([false]), true, true);
        work.nextPosition += 1;
        let logits = model.logits(hidden).to('float32').squeeze(0);
        // The mask comes first: top-k and top-p choose among the allowed tokens only.
        const allowed = o.allowedNext?.(generated) ?? null;
        if (allowed) logits = logits.add(allowed);
        if (processed || allowed) {
          if (processed) logits = processLogits(logits, [...(o.penaltyIds ?? []), ...generated], o, generated);
          else if (T > 0) logits = logits.div(T);
          if (T <= 0) return logits.argmax().item();
          return ops.multinomial(logits.softmax(-1), 1).item();
        }
        if (T <= 0) return logits.argmax().item();
        return ops.multinomial(logits.div(T).softmax(-1), 1).item();
      }));
      if (stops.has(id)) return;
      generated.push(id);
      yield id;
      if (stopStrings.length) {
        const text = o.detokenize!(generated);
        if (stopStrings.some((s) => text.includes(s))) return;
      }
      next = id;
    }
  } finally {
    work.dispose();
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
}

/**
 * Generates latent tokens with the Euler ODE and CFG (docs/method.md 1.8, 4.4) over the contexts
 * gen (everything), cfgText (before the last text; empty for plain T2I) and cfgImg (texts only).
 * Returns the latent [z, 2h, 2w] (VAE space; decode with AutoEncoder.decodeToUnit).
 */
export function generateImage(model: Bagel, ctx: { gen: KVCache; cfgText?: KVCache | null; cfgImg?: KVCache | null }, o: ImageGenOptions): Tensor {
  const grid = timestepGrid(o.numTimesteps ?? 50, o.timestepShift ?? 3.0);
  const interval = o.cfgInterval ?? [0.4, 1.0];
  const textScale = o.cfgTextScale ?? 4.0;
  const imgScale = o.cfgImgScale ?? 1.0;
  const x0 = o.noise ?? randn([o.h * o.w, latentTokenDim(model.config)]);
  const velocity = (x: Tensor, tau: number): Tensor => scope(() => {
    const on = cfgActive(tau, interval);
    const g = on ? textScale : 1;
    const gi = on ? imgScale : 1;
    const cond = latentVelocity(model, ctx.gen, x, tau, o.h, o.w);
    if (!(g > 1)) return cond;
    const uText = latentVelocity(model, ctx.cfgText ?? newContext(model), x, tau, o.h, o.w);
    const uImg = gi > 1 ? latentVelocity(model, ctx.cfgImg ?? newContext(model), x, tau, o.h, o.w) : null;
    return cfgCombine(cond, uText, uImg, { textScale: g, imgScale: gi, renormMin: o.cfgRenormMin ?? 0, renormType: o.cfgRenormType ?? 'global' });
  });
  const x = sampleOde(x0, velocity, grid);
  return scope(() => {
    const latent = unpatchify(x, o.h, o.w, model.config.latentPatchSize, model.config.vae.zChannels);
    x.dispose();
    return latent;
  });
}
