// Unified-SFT data (docs/method.md 2.1-2.5, 1.4): characters -> sample plans (the data layer's
// builders and mixture recipes) -> token-budget packs -> the model's PackSamples.
//
// Text segments are tokenized with the real tokenizer (the model config's vocabulary and special
// ids are taken from it). VAE images are resized to a fixed side, encoded once by the frozen VAE
// into posterior moments, and a latent is *sampled* from them at every use (mean + sigma * eps,
// then scaled and shifted, docs/method.md 1.4 / 7.7). ViT images become [3, H, W] in [-1, 1].
//
// Determinism: the pack sequence depends only on the seed, and every random draw of a sample
// (caption dropout, the timestep normal, the posterior eps and the flow-matching noise) is
// seeded by (seed, pack index, sample index). A batch is therefore a pure function of its step
// and rank layout: resuming reproduces it, and 2 ranks with b packs each see exactly the samples
// (and noise) that 1 rank with 2b packs sees.
import { readFileSync } from 'node:fs';
import { manualSeed, noGrad, ops, randn, scope, tensor, type Tensor } from '../torch/index.js';
import {
  latentDownsample, latentTokenDim, modelConfig, buildPackedBatch, vaeDownsample,
  type AutoEncoder, type ModelConfig, type PackItem, type PackSample, type PackedBatch,
} from '../model/index.js';
import * as data from '../data/index.js';
import {
  BUILTIN_RECIPES, Mixture, GroupStream, Rng, imageBytes, parseRecipe, prepareImage,
  type Character, type CharacterImage, type ChwImage, type Pack, type PackingConfig, type Recipe, type SamplePlan, type Tokenizer,
} from '../data/index.js';

/** The model config of a preset with the tokenizer's vocabulary size and special ids. */
export function modelConfigForTokenizer(preset: string, tok: Tokenizer): ModelConfig {
  const base = modelConfig(preset);
  return modelConfig(preset, {
    name: `${base.name}+tok${tok.vocabSize}`,
    llm: { ...base.llm, vocabSize: tok.vocabSize },
    tokens: { bos: tok.bos, eos: tok.eos, startOfImage: tok.startOfImage, endOfImage: tok.endOfImage },
  });
}

/** A recipe by built-in name or from a YAML file. */
export function resolveRecipe(nameOrPath: string): Recipe {
  const builtin = BUILTIN_RECIPES[nameOrPath];
  if (builtin !== undefined) return parseRecipe(builtin, `recipe ${nameOrPath}`);
  return parseRecipe(readFileSync(nameOrPath, 'utf8'), nameOrPath);
}

/** A CHW float image as a tensor [3, H, W]. */
export function chwTensor(img: ChwImage): Tensor {
  return tensor(img.data, { dtype: 'float32' }).reshape([3, img.height, img.width]);
}

/** Every image of the characters at side x side, as one tensor [N, 3, side, side] in [-1, 1]. */
export async function loadCharacterImages(characters: Character[], side: number): Promise<Tensor> {
  const chw: ChwImage[] = [];
  for (const c of characters) for (const img of c.referenceImages) chw.push(await prepareImage(imageBytes(img), { rule: 'fixed', width: side, height: side }));
  if (chw.length === 0) throw new Error('no reference images to train on');
  return scope(() => ops.stack(chw.map(chwTensor), 0));
}

/**
 * How SFT sizes VAE images (method.md 2.1; docs/fidelity.md "Image sizes below the published
 * size"): `aspect` is the VAE rule scaled to `imageSize` with the stride VAE downsampling x latent
 * patch, `square` stretches to imageSize x imageSize.
 */
export function vaeImageSpec(model: ModelConfig, imageSize: number, sizing: 'aspect' | 'square'): data.SizeSpec {
  if (sizing === 'square') return { rule: 'fixed', width: imageSize, height: imageSize };
  return { rule: 'custom', resize: data.scaledRule(data.VAE_RULE, imageSize, vaeDownsample(model) * model.latentPatchSize) };
}

/** Every image of the characters sized by `spec`, one [3, H, W] tensor in [-1, 1] each (the VAE stage's input). */
export async function loadSizedCharacterImages(characters: Character[], spec: data.SizeSpec): Promise<Tensor[]> {
  const out: Tensor[] = [];
  for (const c of characters) for (const img of c.referenceImages) {
    const chw = await prepareImage(imageBytes(img), spec);
    out.push(scope(() => chwTensor(chw)));
  }
  if (out.length === 0) throw new Error('no reference images to train on');
  return out;
}

/** Combines the recipe's groups over several characters (the base run): each group's records
 * are those of every character, in character order; streams are seeded as Mixture seeds them. */
export function multiMixture(recipe: Recipe, characters: Character[]): Mixture {
  if (characters.length === 1) return new Mixture(recipe, characters[0]!);
  const per = characters.map((c) => new Mixture(recipe, c));
  const streams = Object.entries(recipe.groups).map(([name, g], gi) =>
    new GroupStream(name, g, per.flatMap((m) => m.streams[gi]!.records), recipe.seed + gi));
  return { recipe, streams } as Mixture;
}

/** Keeps the first `maxImages` reference images and what refers to them (few-shot customization:
 * about ten images plus examples). Scenes without an image and text-only data are kept. */
export function fewShotCharacter(c: Character, maxImages: number): Character {
  const keep = new Set(c.referenceImages.slice(0, maxImages).map((i) => i.id));
  return {
    ...c,
    referenceImages: c.referenceImages.filter((i) => keep.has(i.id)),
    scenes: c.scenes.filter((s) => s.image === undefined || keep.has(s.image)),
    vqa: c.vqa.filter((q) => keep.has(q.imageId)),
    vqaMcq: c.vqaMcq.filter((q) => keep.has(q.imageId)),
  };
}

/** 32-bit mix of integers (for per-sample seeds). */
export function mixSeed(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

export interface SftDataOptions {
  characters: Character[];
  tokenizer: Tokenizer;
  model: ModelConfig;
  /** The frozen autoencoder of the run (its config's scale and shift are applied). */
  vae: AutoEncoder;
  recipe: Recipe;
  packing: PackingConfig;
  imageSize: number;
  vitImageSize: number;
  /** 'aspect' (default): the official rules scaled to imageSize / vitImageSize; 'square': stretched (see DataSchema). */
  imageSizing?: 'aspect' | 'square';
  textDropProb: number;
  seed: number;
}

/** One rank's batch of a step. */
export interface SftBatch {
  /** The packed model input (free with disposeBatch). */
  batch: PackedBatch;
  /** Flow-matching noise of the batch's latent tokens (rows as batch.vae.latents), or null. */
  noise: Tensor | null;
  /** The plans that went in (source names, for logs). */
  plans: SamplePlan[];
  /** Tokens counted by packing (text + image tokens + 2 per item). */
  tokens: number;
}

/**
 * The SFT data stream. `create` tokenizes every text, loads every image at the configured size
 * and encodes the VAE images into posterior moments, once; then `batch(step, ...)` is synchronous.
 */
/** Which packs of a step a rank takes: a contiguous block (plain data parallel) or every world-th (sharded). */
export type PackOrder = 'blocked' | 'interleaved';

export class SftData {
  private readonly ids = new Map<string, number[]>();
  private readonly vitImages = new Map<string, Tensor>();
  /** VAE posterior moments per image: mean and std, each [z, h, w]. */
  private readonly moments = new Map<string, { mean: Tensor; std: Tensor }>();
  /** Each loaded image's size before resizing (packing counts its tokens from it). */
  private readonly originalSizes = new Map<string, { width: number; height: number }>();
  private packs: Generator<Pack>;
  private readonly cache: Pack[] = [];
  private cacheStart = 0;
  readonly mixture: Mixture;

  private constructor(readonly o: SftDataOptions) {
    this.mixture = multiMixture(o.recipe, o.characters);
    this.packs = this.newPackStream();
  }

  static async create(o: SftDataOptions): Promise<SftData> {
    const d = new SftData(o);
    await d.prepare();
    return d;
  }

  private key(c: Character, img: CharacterImage): string {
    return `${c.id}\u0000${img.id}`;
  }

  /**
   * How VAE and ViT images are sized (method.md 2.1): the official rules scaled to the configured
   * sides, keeping aspect and the model's strides (docs/fidelity.md), or squares.
   */
  private sizeSpecs(): { vae: data.SizeSpec; vit: data.SizeSpec } {
    const m = this.o.model;
    const sizing = this.o.imageSizing ?? 'aspect';
    return {
      vae: vaeImageSpec(m, this.o.imageSize, sizing),
      vit: sizing === 'square'
        ? { rule: 'fixed', width: this.o.vitImageSize, height: this.o.vitImageSize }
        : { rule: 'custom', resize: data.scaledRule(data.VIT_RULE, this.o.vitImageSize, m.vit.patchSize) },
    };
  }

  private async prepare(): Promise<void> {
    const { tokenizer, model, vae } = this.o;
    const texts = new Set<string>();
    const vaeImgs = new Map<string, CharacterImage>();
    const vitImgs = new Map<string, CharacterImage>();
    for (const s of this.mixture.streams) {
      for (const plan of s.records) {
        for (const it of plan.items) {
          if (it.kind === 'text') texts.add(it.text);
          else (it.kind === 'vae_image' ? vaeImgs : vitImgs).set(it.image.path ?? it.image.id, it.image);
        }
      }
    }
    const list = [...texts];
    const enc = await tokenizer.encodeBatch(list);
    list.forEach((t, i) => this.ids.set(t, enc[i]!));
    const f = vaeDownsample(model) * model.latentPatchSize;
    if (this.o.imageSize % f !== 0) throw new Error(`data.imageSize ${this.o.imageSize} must be a multiple of ${f} (VAE downsample x latent patch)`);
    if (this.o.vitImageSize % model.vit.patchSize !== 0) throw new Error(`data.vitImageSize ${this.o.vitImageSize} must be a multiple of the ViT patch ${model.vit.patchSize}`);
    const spec = this.sizeSpecs();
    // Decoded once: the original sizes (for packing's token counts) and the resized pixels.
    const load = async (k: string, img: CharacterImage, to: data.SizeSpec): Promise<ChwImage> => {
      const rgb = await data.decodeImage(imageBytes(img));
      this.originalSizes.set(k, { width: rgb.width, height: rgb.height });
      const t = data.sizeFor(rgb.width, rgb.height, to);
      return data.toChw(await data.resizeImage(rgb, t.width, t.height));
    };
    for (const [k, img] of vaeImgs) {
      const chw = await load(k, img, spec.vae);
      // frozen VAE, deterministic encoder: cache the posterior, sample it at every use
      const m = noGrad(() => scope(() => {
        const moments = vae.encoder.forward(chwTensor(chw).unsqueeze(0)).squeeze(0);
        const [mean, logvar] = moments.chunk(2, 0) as [Tensor, Tensor];
        return { mean: mean.contiguous().keep(), std: logvar.mul(0.5).exp().keep() };
      }));
      this.moments.set(k, m);
    }
    for (const [k, img] of vitImgs) {
      const chw = await load(k, img, spec.vit);
      this.vitImages.set(k, scope(() => chwTensor(chw).keep()));
    }
  }

  private newPackStream(): Generator<Pack> {
    const m = this.o.model;
    const ctx: data.MeasureContext = {
      countTokens: (t) => {
        const ids = this.ids.get(t);
        if (ids === undefined) throw new Error('SftData: a text was not tokenized');
        return ids.length;
      },
      imageSize: (img) => {
        const size = this.originalSizes.get(img.path ?? img.id);
        if (!size) throw new Error(`SftData: image ${img.path ?? img.id} was not loaded`);
        return size;
      },
      ...this.sizeSpecs(),
      vaeTokenStride: latentDownsample(m),
      vitPatch: m.vit.patchSize,
    };
    return data.drawPacks(this.mixture, ctx, this.o.packing, this.o.seed);
  }

  /** The pack at a global index (packs are consumed in order; earlier ones are forgotten). */
  packAt(index: number): Pack {
    if (index < this.cacheStart) {
      // going back (a restart of the stream): replay from the beginning
      this.packs = this.newPackStream();
      this.cache.length = 0;
      this.cacheStart = 0;
    }
    while (this.cacheStart + this.cache.length <= index) this.cache.push(this.packs.next().value as Pack);
    const p = this.cache[index - this.cacheStart]!;
    // forget packs before this one
    const drop = index - this.cacheStart;
    if (drop > 64) {
      this.cache.splice(0, drop);
      this.cacheStart = index;
    }
    return p;
  }

  /** The global pack indexes of a rank's batch: step-major, then rank, then pack. */
  static packIndexes(step: number, rank: number, worldSize: number, packsPerRank: number, order: PackOrder = 'blocked'): number[] {
    if (order === 'interleaved') {
      // pack k of every rank before pack k + 1 of any: per-pack reductions in rank order then sum
      // the step's packs in global order at any world size (docs/sharding.md 4)
      return Array.from({ length: packsPerRank }, (_, k) => (step * packsPerRank + k) * worldSize + rank);
    }
    const start = (step * worldSize + rank) * packsPerRank;
    return Array.from({ length: packsPerRank }, (_, k) => start + k);
  }

  /**
   * A rank's batches of a step, one per pack (trainSft runs forward and backward pack by pack;
   * see sftForwardBackward).
   */
  stepBatches(step: number, o: { rank?: number; worldSize?: number; packsPerRank?: number; order?: PackOrder } = {}): SftBatch[] {
    return SftData.packIndexes(step, o.rank ?? 0, o.worldSize ?? 1, o.packsPerRank ?? 1, o.order).map((i) => this.packBatch(i));
  }

  /**
   * The pack at a global index as one packed sequence, with every random draw seeded per sample.
   * Returns the batch, its flow noise and the plans.
   */
  packBatch(index: number): SftBatch {
    const samples: PackSample[] = [];
    const draws: number[] = [];
    const noises: Tensor[] = [];
    const plans: SamplePlan[] = [];
    return scope(() => {
      const pack = this.packAt(index);
      const tokens = pack.length;
      pack.samples.forEach((ms, j) => {
        const seed = mixSeed(this.o.seed, index, j);
        const rng = new Rng(seed);
        manualSeed(seed);
        const sample = this.toPackSample(ms.plan);
        const r = sampleDraws(sample, rng, this.o.textDropProb);
        draws.push(...r.draws);
        // noise for each latent image that survives dropout, in order (rows of batch.vae.latents)
        for (const it of r.keptVae) noises.push(randn([(it.latent.shape[1]! / this.o.model.latentPatchSize) * (it.latent.shape[2]! / this.o.model.latentPatchSize), latentTokenDim(this.o.model)]));
        samples.push(sample);
        plans.push(ms.plan);
      });
      let k = 0;
      const batch = buildPackedBatch(samples, this.o.model, {
        textDropProb: this.o.textDropProb,
        random: () => {
          if (k >= draws.length) throw new Error('SftData: buildPackedBatch drew more random numbers than planned');
          return draws[k++]!;
        },
      });
      if (k !== draws.length) throw new Error(`SftData: buildPackedBatch drew ${k} of ${draws.length} planned random numbers`);
      const noise = noises.length ? ops.cat(noises, 0) : null;
      return { batch, noise, plans, tokens };
    });
  }

  /** A plan as model items: token ids, ViT tensors, and a latent sampled from the posterior
   * (uses the global generator: call after seeding). */
  toPackSample(plan: SamplePlan): PackSample {
    const { scaleFactor, shiftFactor } = this.o.vae.config;
    return plan.items.map((it): PackItem => {
      if (it.kind === 'text') return { kind: 'text', ids: this.ids.get(it.text)!, loss: it.loss, enableCfg: it.enableCfg };
      const k = it.image.path ?? it.image.id;
      if (it.kind === 'vit_image') return { kind: 'vit_image', image: this.vitImages.get(k)!, enableCfg: it.enableCfg };
      const m = this.moments.get(k)!;
      // z = scale * (mean + sigma * eps - shift)  (docs/method.md 1.4)
      const latent = m.mean.add(m.std.mul(randn(m.mean.shape))).sub(shiftFactor).mul(scaleFactor);
      return { kind: 'vae_image', latent, loss: it.loss, enableCfg: it.enableCfg };
    });
  }

  /** Token ids of a text (tokenized at create or now). */
  async encode(text: string): Promise<number[]> {
    return this.ids.get(text) ?? this.o.tokenizer.encode(text);
  }

  dispose(): void {
    for (const t of this.vitImages.values()) t.dispose();
    for (const m of this.moments.values()) {
      m.mean.dispose();
      m.std.dispose();
    }
    this.vitImages.clear();
    this.moments.clear();
  }
}

/**
 * The uniform draws buildPackedBatch will consume for one sample, in its order (docs/method.md 2.4 dropout
 * for enableCfg items, two draws for the Box-Muller normal of each generated image), taken from
 * the sample's own generator. Also returns the VAE items that survive dropout.
 */
export function sampleDraws(sample: PackSample, rng: Rng, textDropProb: number, vitDropProb = 0.3, vaeDropProb = 0.3): { draws: number[]; keptVae: Extract<PackItem, { kind: 'vae_image' }>[] } {
  const draws: number[] = [];
  const keptVae: Extract<PackItem, { kind: 'vae_image' }>[] = [];
  for (const it of sample) {
    if (it.enableCfg === 1) {
      const u = rng.next();
      draws.push(u);
      const p = it.kind === 'text' ? textDropProb : it.kind === 'vit_image' ? vitDropProb : vaeDropProb;
      if (u < p) continue;
    }
    if (it.kind === 'vae_image') {
      if (it.loss === 1) draws.push(rng.next(), rng.next());
      keptVae.push(it);
    }
  }
  return { draws, keptVae };
}
