// A customized character as one unit: the unified model, its frozen VAE, the tokenizer and the
// character itself, saved as a folder. Training writes it; evaluation and serving load it and
// call reply / image / rolePlay, which follow the reference inference (docs/method.md 4.2-4.4).
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memory, noGrad, scope, manualSeed, randint, tensor } from '../torch/index.js';
import { loadLoRA, loraLayers, saveLoRA } from '../nn/index.js';
import {
  Bagel, AutoEncoder, abortError, newContext, prefillText, prefillTextChunked, prefillVitImage, decodeSteps, generateImage, saveCheckpoint,
  latentDownsample, validateConfig, type KVCache, type ModelConfig,
} from '../model/index.js';
import {
  Tokenizer, StreamDecoder, rolePlayPrompt, t2iCaption, t2iThinkingCaption, thinkingInferencePrompt, encodePng, prepareImage, trainTinyTokenizer, type Character, type ChwImage,
} from '../data/index.js';
import { CHARACTER_MODEL_FILES, LORA_CHARACTER_FILES, type CharacterModelManifest } from './manifest.js';
import { checkDeclaredSize, checkTokenizerFits, readCharacterFile, readManifest, requireFile } from './model-folder.js';
import { budgetChat, ChatRequestError, layoutChat, type BudgetedPrompt, type ChatTurn } from './chat-prompt.js';
import { Utf8Guard } from './utf8-guard.js';
import { ReplyDecoding, type DecodedReply } from './reply-decoding.js';
import { DecodeBatcher } from './decode-batcher.js';
import { PrefillBatcher } from './prefill-batcher.js';
import { PrefixCache, type PrefixPrefill } from './prefix-cache.js';
import { parseImagePlan, resolveThinking, THINKING_DEFAULTS, type ImagePlan, type ParsedPlan, type ThinkingOptions } from './thinking.js';
import { parseBaseReference, type BaseReference } from './base-ref.js';
import { SharedBases } from './shared-bases.js';
import { loadModelAndVae } from './load-weights.js';

// Images held as bytes (characters from cards) are written as {"$base64": "..."} in
// character.json and read back as Uint8Array (plain JSON.stringify would write an index map).
function bytesAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { $base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') } : value;
}
function reviveBytes(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const b = (value as { $base64?: unknown }).$base64;
    if (typeof b === 'string' && Object.keys(value).length === 1) return new Uint8Array(Buffer.from(b, 'base64'));
  }
  return value;
}

export interface ReplyOptions {
  history?: { role: string; text: string }[];
  /** Sampling temperature (reference: 0.7; 0 = greedy). */
  temperature?: number;
  maxTokens?: number;
  /** Text pieces as they are decoded (complete UTF-8 characters only). */
  onText?: (piece: string) => void;
  signal?: AbortSignal;
  /** Filled with the token counts of the generation (the prompt as the model saw it, and the
   * generated ids, not a re-encoding of the decoded text). */
  usage?: { promptTokens: number; completionTokens: number; hitLimit: boolean };
}

export interface ImageOptions {
  numTimesteps?: number;
  cfgTextScale?: number;
  timestepShift?: number;
  seed?: number;
  signal?: AbortSignal;
}

/** The sampling fields of a chat reply (docs/serving.md 3); each one changes what is decoded. */
export interface SamplingOptions {
  /** 0 = greedy; default 0.7 (docs/method.md 4.3). */
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Seeds the generator before the reply is decoded and before its image is drawn. */
  seed?: number;
  /** The reply ends before the first occurrence of any of these (not included). */
  stop?: string[];
  frequencyPenalty?: number;
  presencePenalty?: number;
  repetitionPenalty?: number;
  /** Default 500 (docs/method.md 4.3). */
  maxTokens?: number;
}

export interface ChatReplyOptions extends SamplingOptions {
  onText?: (piece: string) => void;
  signal?: AbortSignal;
  /** Also draw the scene after the reply (docs/method.md 4.3 step 3). */
  image?: boolean | ImageOptions;
  /** Refuse a request whose context would need more than this many bytes (requestMemoryBytes). */
  memoryBytes?: number;
  /** Called once the prompt is measured and fits, before any model work (docs/serving.md 2). */
  onAccepted?: (p: { promptTokens: number; droppedTurns: number }) => void | Promise<void>;
  /** Thinking mode (docs/method.md 4.3 step 2): plan the image before drawing it; needs `image`.
   * The plan is returned as `plan`, never in `text`. */
  thinking?: boolean | ThinkingOptions;
}

export interface ChatReply {
  text: string;
  image?: Uint8Array;
  /** Tokens of the prompt as the model saw it (text segments with their markers, ViT tokens). */
  promptTokens: number;
  /** Leading prompt tokens whose KV rows came from the prompt prefix cache (docs/serving.md 9). */
  cachedTokens: number;
  completionTokens: number;
  finishReason: 'stop' | 'length';
  /** History turns cut from the oldest to fit the context (docs/serving.md 2). */
  droppedTurns: number;
  /** The image's plan, in thinking mode. */
  plan?: ImagePlan;
}

/** What a loaded character holds in memory (torch.memory() bytes, docs/serving.md 10). */
export interface CharacterMemory {
  /** Bytes this character alone holds: its whole model, or only its adapters over a shared base. */
  ownBytes: number;
  /** The shared base it runs over (LoRA folders), with that base's bytes, counted once for all its characters. */
  base: { key: string; bytes: number } | null;
}

export interface CharacterLoadOptions {
  /** Where LoRA folders find their base: characters loaded through one registry share it. */
  bases?: SharedBases;
}

export class CharacterModel {
  private utf8: Utf8Guard | null = null;
  private decodeBatcher: DecodeBatcher | null = null;
  private prefillBatcher: PrefillBatcher | null = null;
  /** The KV rows of recent prompts' leading text (docs/serving.md 9); its bound: `prefixes.setMaxBytes`. */
  readonly prefixes = new PrefixCache();

  constructor(
    readonly character: Character,
    readonly model: Bagel,
    readonly vae: AutoEncoder,
    readonly tokenizer: Tokenizer,
    readonly manifest: CharacterModelManifest,
    /** Set by load(): the memory measured, and what frees a shared base's trees. */
    readonly loaded: { memory: CharacterMemory; release?: () => void } | null = null,
  ) {}

  /**
   * A freshly initialised model for a character: a tokenizer trained on the character's own
   * texts, and the model config sized to it. This is "the model before customization".
   */
  static untrained(character: Character, o: { config: ModelConfig; imageSize: number; vocabSize?: number; seed?: number; texts?: string[] }): CharacterModel {
    const texts = o.texts ?? [
      character.description, character.profile, character.style, character.opening,
      ...[...character.scenes, ...character.dialogue].map((s) => `${s.user}\n${s.reply}`),
      ...character.knowledgeQa.map((q) => `${q.question}\n${q.answer}`),
    ];
    const tokenizer = trainTinyTokenizer(texts.filter((t) => t.length > 0), { vocabSize: o.vocabSize ?? 1024 }).load();
    const s = tokenizer.special;
    const modelConfig: ModelConfig = {
      ...o.config,
      llm: { ...o.config.llm, vocabSize: tokenizer.vocabSize },
      tokens: { bos: s.bos, eos: s.eos, startOfImage: s.startOfImage, endOfImage: s.endOfImage },
    };
    validateConfig(modelConfig);
    if (o.seed !== undefined) manualSeed(o.seed);
    const model = new Bagel(modelConfig);
    const vae = new AutoEncoder(modelConfig.vae);
    return new CharacterModel(character, model, vae, tokenizer, { format: 1, modelConfig, imageSize: o.imageSize, provenance: { stage: 'untrained' } });
  }

  /**
   * Loads a folder written by save(); errors name the missing or malformed file, and a folder
   * is checked before its model is allocated (model-folder.ts). A LoRA folder (manifest `base`)
   * is loaded over its base, checked by size and SHA-256, through `o.bases` (shared with every
   * character loaded through it) or a registry of its own (docs/serving.md 10).
   */
  static async load(dir: string, o: CharacterLoadOptions = {}): Promise<CharacterModel> {
    const manifest = readManifest(dir);
    const character = readCharacterFile(dir, reviveBytes);
    const tokenizer = Tokenizer.fromFile(requireFile(dir, CHARACTER_MODEL_FILES.tokenizer));
    checkTokenizerFits(dir, tokenizer.vocabSize, manifest.modelConfig);
    if (manifest.base !== undefined) return CharacterModel.loadOverBase(dir, manifest, character, tokenizer, o.bases ?? new SharedBases());
    checkDeclaredSize(dir, manifest.modelConfig);
    const { model, vae, bytes } = loadModelAndVae(join(dir, CHARACTER_MODEL_FILES.model), join(dir, CHARACTER_MODEL_FILES.vae), manifest.modelConfig);
    return new CharacterModel(character, model, vae, tokenizer, manifest, { memory: { ownBytes: bytes, base: null } });
  }

  /** A LoRA folder: its base from the registry (one copy for all its characters), then its own adapters. */
  private static loadOverBase(dir: string, manifest: CharacterModelManifest, character: Character, tokenizer: Tokenizer, bases: SharedBases): CharacterModel {
    const base = parseBaseReference(manifest.base, dir);
    const adapter = requireFile(dir, LORA_CHARACTER_FILES.adapter);
    const before = memory().bytes;
    const lease = bases.acquire(base, manifest.modelConfig, dir);
    try {
      loadLoRA(adapter, lease.model, { strict: true });
    } catch (e) {
      lease.release();
      throw new Error(`${adapter}: ${(e as Error).message}`);
    }
    lease.model.eval();
    const ownBytes = memory().bytes - before - (lease.loaded ? lease.baseBytes : 0);
    const loaded = { memory: { ownBytes, base: { key: lease.key, bytes: lease.baseBytes } }, release: lease.release };
    return new CharacterModel(character, lease.model, lease.vae, tokenizer, manifest, loaded);
  }

  /**
   * Writes the folder atomically (a temporary folder renamed into place). With `base` (the
   * weights and VAE this model's LoRA adapters were trained over) it writes a LoRA folder: the
   * adapters alone and the base's reference (docs/serving.md 10), not the whole weights.
   */
  save(dir: string, o: { base?: BaseReference } = {}): void {
    if (o.base && loraLayers(this.model).length === 0) throw new Error(`save ${dir}: a LoRA folder (base given) needs a model with LoRA adapters`);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const manifest: CharacterModelManifest = o.base ? { ...this.manifest, base: o.base } : { ...this.manifest };
    if (!o.base) delete manifest.base;
    writeFileSync(join(tmp, CHARACTER_MODEL_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n');
    writeFileSync(join(tmp, CHARACTER_MODEL_FILES.character), JSON.stringify(this.character, bytesAsBase64) + '\n');
    this.tokenizer.save(join(tmp, CHARACTER_MODEL_FILES.tokenizer));
    if (o.base) {
      saveLoRA(join(tmp, LORA_CHARACTER_FILES.adapter), this.model, { base: o.base.model.path });
    } else {
      saveCheckpoint(join(tmp, CHARACTER_MODEL_FILES.model), this.model);
      saveCheckpoint(join(tmp, CHARACTER_MODEL_FILES.vae), this.vae);
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }

  /** Frees the model (a LoRA character: its adapters and handles; the base when no other character uses it). */
  dispose(): void {
    this.utf8?.dispose();
    this.prefixes.clear();
    if (this.loaded?.release) {
      this.loaded.release();
      return;
    }
    this.model.dispose();
    this.vae.dispose();
  }

  /** KV entries the model holds at most: its position limit (docs/serving.md 2). */
  get contextTokens(): number {
    return this.model.config.llm.maxPositionEmbeddings;
  }

  /** The side user images are resized to for the ViT: the training size of the VQA samples,
   * else 378 (the reference's smallest ViT side) within what the ViT's position table holds. */
  get vitImageSide(): number {
    const v = this.model.config.vit;
    const p = this.manifest.provenance.vitImageSize;
    if (typeof p === 'number' && p % v.patchSize === 0) return p;
    return Math.min(v.patchSize * v.maxNumPatchPerSide, Math.round(378 / v.patchSize) * v.patchSize);
  }

  /** Tokens one user image takes in the context: its ViT patches and the two markers. */
  get vitImageTokens(): number {
    const n = this.vitImageSide / this.model.config.vit.patchSize;
    return n * n + 2;
  }

  /** The guard that keeps replies valid, printable UTF-8 (built once per model). */
  get utf8Guard(): Utf8Guard {
    this.utf8 ??= new Utf8Guard(this.tokenizer, this.model.config.llm.vocabSize, this.model.config.tokens.eos);
    return this.utf8;
  }

  /**
   * Measures a conversation through the chat template (docs/serving.md 1-2) without any model
   * work: the prompt's token ids and images, its size, and how many old turns were cut to leave
   * room for maxTokens. Throws ChatRequestError when it cannot fit.
   */
  /**
   * The memory a reply needs beyond the model (docs/serving.md 2), in bytes, as float32: the KV
   * cache of prompt + reply twice (decoding appends to a fork of the prompt's cache), the scores of
   * one 256-token prefill chunk against the whole prompt, and with an image a third cache of a
   * full context for its caption plus the image's latent tokens.
   */
  requestMemoryBytes(promptTokens: number, maxTokens: number, withImage: boolean): number {
    const { numLayers, numKvHeads, numHeads, headDim } = this.model.config.llm;
    const perToken = numLayers * 2 * numKvHeads * headDim * 4;
    const kv = 2 * perToken * (promptTokens + maxTokens + 1);
    const scores = numHeads * Math.min(256, promptTokens) * promptTokens * 4;
    const grid = this.manifest.imageSize / latentDownsample(this.model.config);
    const image = withImage ? perToken * (this.contextTokens + grid * grid + 2) : 0;
    return kv + scores + image;
  }

  async planChat(turns: readonly ChatTurn[], o: { maxTokens?: number; withImage?: boolean; memoryBytes?: number } = {}): Promise<BudgetedPrompt & { images: Uint8Array[]; userText: string }> {
    const c = this.character;
    const layout = layoutChat(turns, c.names.display);
    const maxTokens = o.maxTokens ?? 500;
    const budget = await budgetChat(
      { description: c.description, opening: c.opening, name: c.names.prefix },
      layout,
      { context: this.contextTokens, reserve: maxTokens + 1, imageTokens: this.vitImageTokens, maxTokenBytes: this.utf8Guard.maxTokenBytes },
      (texts) => this.tokenizer.encodeBatch(texts),
    );
    if (o.memoryBytes !== undefined) {
      const need = this.requestMemoryBytes(budget.promptTokens, maxTokens, o.withImage ?? false);
      if (need > o.memoryBytes) {
        throw new ChatRequestError(
          `messages: this request would need about ${Math.ceil(need / 2 ** 20)} MiB for its context, over the server's ${Math.floor(o.memoryBytes / 2 ** 20)} MiB per request: shorten the messages or lower max_tokens`,
          'request_too_large',
          'messages',
        );
      }
    }
    return { ...budget, images: layout.images, userText: layout.userText };
  }

  /**
   * The character's reply to a conversation (docs/serving.md 1-3, 7): the whole prompt through
   * the chat template, user images on the ViT path (as the VQA samples are built, docs/method.md 2.1),
   * a chunked prefill that stops on abort, then decoding with every sampling option, the stop
   * strings cut and held back while streaming, and only valid printable UTF-8 let through.
   */
  async chat(turns: readonly ChatTurn[], o: ChatReplyOptions = {}): Promise<ChatReply> {
    if (o.signal?.aborted) throw abortError();
    const thinking = resolveThinking(o.thinking);
    if (thinking && !o.image) throw new ChatRequestError("thinking: the plan is for the reply's image; ask for the image too", 'invalid_thinking', 'thinking');
    const maxTokens = o.maxTokens ?? 500;
    const { ctx, plan, promptIds, cachedTokens } = await this.prefillChat(turns, { ...o, maxTokens });
    let decoded: { text: string; completionTokens: number; finishReason: 'stop' | 'length' };
    try {
      decoded = await this.decodeReply(ctx, promptIds, { ...o, maxTokens });
    } finally {
      ctx.dispose();
    }
    const reply: ChatReply = { ...decoded, promptTokens: plan.promptTokens, cachedTokens, droppedTurns: plan.droppedTurns };
    if (o.image) {
      const io: ImageOptions = { ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(typeof o.image === 'object' ? o.image : {}), ...(o.signal ? { signal: o.signal } : {}) };
      // the reply drew from its own source: the plan draws from the global generator, seeded here
      if (thinking && o.seed !== undefined) manualSeed(o.seed);
      if (thinking) reply.plan = await this.imagePlan(plan.userText, decoded.text, { ...thinking, ...(o.signal ? { signal: o.signal } : {}) });
      reply.image = await this.image(reply.plan?.imagePrompt ?? (await this.sceneCaption(plan.userText, decoded.text)), io);
    }
    return reply;
  }

  /**
   * The context a reply is decoded from: the conversation planned (planChat), accepted, then
   * prefilled segment by segment, text in chunks and user images through the ViT (docs/method.md 2.1,
   * the `_vqa` layout), its leading text through the prompt prefix cache (docs/serving.md 9). The
   * caller disposes `ctx`; `promptIds` are the prompt's text ids; `cachedTokens` the leading
   * tokens taken from the cache.
   */
  async prefillChat(
    turns: readonly ChatTurn[],
    o: Pick<ChatReplyOptions, 'maxTokens' | 'signal' | 'onAccepted' | 'image' | 'memoryBytes'> = {},
  ): Promise<{ ctx: KVCache; plan: BudgetedPrompt & { images: Uint8Array[]; userText: string }; promptIds: number[]; cachedTokens: number }> {
    const plan = await this.planChat(turns, {
      maxTokens: o.maxTokens ?? 500, withImage: Boolean(o.image), ...(o.memoryBytes !== undefined ? { memoryBytes: o.memoryBytes } : {}),
    });
    // Images are decoded before the prompt is accepted: one that cannot be read is the request's error.
    const side = this.vitImageSide;
    const pixels = new Map<number, ChwImage>();
    for (const seg of plan.segments) {
      if (seg.image === undefined || pixels.has(seg.image)) continue;
      try {
        pixels.set(seg.image, await prepareImage(plan.images[seg.image]!, { rule: 'fixed', width: side, height: side }));
      } catch (e) {
        throw new ChatRequestError(`messages: image ${seg.image + 1} of the conversation could not be decoded (${(e as Error).message})`, 'invalid_image', 'messages');
      }
    }
    await o.onAccepted?.({ promptTokens: plan.promptTokens, droppedTurns: plan.droppedTurns });
    const { ctx, cachedTokens } = await this.prefillLead(plan, o.signal);
    try {
      return { ctx, plan, promptIds: await this.prefillPlan(ctx, plan, pixels, o.signal), cachedTokens };
    } catch (e) {
      ctx.dispose();
      throw e;
    }
  }

  /** The prompt's leading text segment through the prefix cache (docs/serving.md 9); an empty context when it opens with an image. */
  private async prefillLead(plan: BudgetedPrompt, signal?: AbortSignal): Promise<PrefixPrefill> {
    const lead = plan.segments[0]?.ids;
    if (!lead) return { ctx: newContext(this.model), cachedTokens: 0 };
    const { bos, eos } = this.model.config.tokens;
    return this.prefixes.prefill(this.model, [bos, ...lead, eos], signal, this.prefills);
  }

  /** The segments after the leading text one (prefilled by prefillLead); returns the prompt's text ids. */
  private async prefillPlan(ctx: KVCache, plan: BudgetedPrompt, pixels: Map<number, ChwImage>, signal?: AbortSignal): Promise<number[]> {
    const promptIds: number[] = [...(plan.segments[0]?.ids ?? [])];
    for (const seg of plan.segments.slice(plan.segments[0]?.ids ? 1 : 0)) {
      if (signal?.aborted) throw abortError();
      if (seg.ids) {
        promptIds.push(...seg.ids);
        await prefillTextChunked(this.model, ctx, seg.ids, signal ? { signal } : {});
      } else if (seg.image !== undefined) {
        const chw = pixels.get(seg.image)!;
        const t = tensor(chw.data, { shape: [3, chw.height, chw.width] });
        try {
          prefillVitImage(this.model, ctx, t);
        } finally {
          t.dispose();
        }
      }
    }
    return promptIds;
  }

  /**
   * Decodes the reply through this model's decode batcher (docs/serving.md 9): alone it is a
   * batch of one; beside other replies of this model it joins their batched steps. The reply's
   * random source is seeded by `seed`, else by a draw from the global generator.
   */
  private async decodeReply(ctx: KVCache, promptIds: number[], o: ChatReplyOptions & { maxTokens: number }): Promise<DecodedReply> {
    const seed = o.seed ?? noGrad(() => scope(() => randint(0, 2 ** 31, [1], { dtype: 'int64' }).item()));
    const reply = new ReplyDecoding(this.model, ctx, this.tokenizer, this.utf8Guard, promptIds, { ...o, seed });
    try {
      await this.batcher.decode(reply, o.signal);
      return reply.finish();
    } finally {
      reply.dispose();
    }
  }

  /** The batcher every reply of this model is decoded through (maxBatch: setMaxBatch). */
  get batcher(): DecodeBatcher {
    this.decodeBatcher ??= new DecodeBatcher(this.model);
    return this.decodeBatcher;
  }

  /** The batcher the prompts' leading text is prefilled through, chunks of concurrent prompts together (maxBatch: setMaxBatch). */
  get prefills(): PrefillBatcher {
    this.prefillBatcher ??= new PrefillBatcher(this.model);
    return this.prefillBatcher;
  }

  /** The scene caption of a reply's image (docs/method.md 4.3 step 3; with a plan the thinking
   * caption), its user text shortened until it fits the context. */
  private async sceneCaption(user: string, reply: string, plan?: ParsedPlan): Promise<string> {
    let u = user;
    for (;;) {
      const slots = { description: this.character.description, user: u, reply };
      const caption = plan ? t2iThinkingCaption({ ...slots, ...plan }) : t2iCaption(slots);
      if (u.length === 0 || (await this.imagePromptFits(caption))) return caption;
      u = u.slice(0, Math.floor(u.length / 2));
    }
  }

  /** Whether a T2I prompt and the image's latent tokens fit the context (docs/serving.md 2). */
  private async imagePromptFits(prompt: string): Promise<boolean> {
    return (await this.imagePromptTokens(prompt)) !== null;
  }

  /** The prompt's ids when it and the latent tokens fit the context, else null (never encoding a text too long to fit). */
  private async imagePromptTokens(prompt: string): Promise<number[] | null> {
    const grid = this.manifest.imageSize / latentDownsample(this.model.config);
    const room = this.contextTokens - (grid * grid + 2) - 2;
    if (Buffer.byteLength(prompt, 'utf8') / (3 * this.utf8Guard.maxTokenBytes) > room) return null;
    const ids = await this.encode(prompt);
    return ids.length <= room ? ids : null;
  }

  /** Token ids of a text segment (bos/eos are added by prefill). */
  async encode(text: string): Promise<number[]> {
    return this.tokenizer.encode(text);
  }

  /** Decodes text after a prompt (docs/method.md 4.4): primed with <|im_start|>, stops at <|im_end|>. */
  async generateText(prompt: string, o: ReplyOptions = {}): Promise<string> {
    if (o.signal?.aborted) throw abortError();
    const ids = await this.encode(prompt);
    const ctx = newContext(this.model);
    try {
      prefillText(this.model, ctx, ids);
      const stream = new StreamDecoder(this.tokenizer, { skipSpecialTokens: true });
      let text = '';
      let generated = 0;
      const maxTokens = o.maxTokens ?? 500;
      if (o.usage) Object.assign(o.usage, { promptTokens: ids.length + 2, completionTokens: 0, hitLimit: false });
      for (const id of decodeSteps(this.model, ctx, { temperature: o.temperature ?? 0, maxTokens })) {
        if (o.signal?.aborted) throw abortError();
        generated++;
        if (o.usage) Object.assign(o.usage, { completionTokens: generated, hitLimit: generated >= maxTokens });
        const piece = stream.push(id);
        if (piece) {
          text += piece;
          o.onText?.(piece);
        }
        // Let other work (timers, aborts) run between tokens.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const rest = stream.flush();
      if (rest) {
        text += rest;
        o.onText?.(rest);
      }
      return text;
    } finally {
      ctx.dispose();
    }
  }

  /** The character's reply to a user turn (docs/method.md 4.3 step 1; sampling at T = 0.7 by default). */
  async reply(user: string, o: ReplyOptions = {}): Promise<string> {
    const c = this.character;
    const prompt = rolePlayPrompt({ description: c.description, opening: c.opening, user, name: c.names.prefix, history: o.history });
    return this.generateText(prompt, { ...o, temperature: o.temperature ?? 0.7, maxTokens: o.maxTokens ?? 500 });
  }

  /**
   * The plan of a reply's image (docs/method.md 4.3 step 2): the official prompt (the thinking
   * system prompt, the scene, the request to plan) decoded greedily, or at T = 0.3 with `sample`,
   * for at most 1000 tokens, split by the official parser; the user text is shortened until
   * prompt and plan fit the context. `imagePrompt` is the caption the image is drawn from.
   */
  async imagePlan(user: string, reply: string, o: ThinkingOptions & { signal?: AbortSignal } = {}): Promise<ImagePlan> {
    const t = resolveThinking(o)!;
    let u = user;
    let prompt = thinkingInferencePrompt({ description: this.character.description, user: u, reply });
    while ((await this.encode(prompt)).length + 3 + t.maxTokens > this.contextTokens) {
      if (u.length === 0) throw new ChatRequestError(`thinking: the plan's prompt and ${t.maxTokens} plan tokens do not fit this model's context of ${this.contextTokens} tokens`, 'context_length_exceeded', 'thinking');
      u = u.slice(0, Math.floor(u.length / 2));
      prompt = thinkingInferencePrompt({ description: this.character.description, user: u, reply });
    }
    const usage = { promptTokens: 0, completionTokens: 0, hitLimit: false };
    const text = await this.generateText(prompt, {
      temperature: t.sample ? THINKING_DEFAULTS.sampleTemperature : 0, maxTokens: t.maxTokens, usage,
      ...(t.onText ? { onText: t.onText } : {}), ...(o.signal ? { signal: o.signal } : {}),
    });
    const parsed = parseImagePlan(text);
    return {
      ...parsed, text, imagePrompt: await this.sceneCaption(user, reply, parsed),
      promptTokens: usage.promptTokens, completionTokens: usage.completionTokens, finishReason: usage.hitLimit ? 'length' : 'stop',
    };
  }

  /** A PNG image for a text prompt (plain T2I with the ODE sampler and text CFG, docs/method.md 4.4). */
  async image(prompt: string, o: ImageOptions = {}): Promise<Uint8Array> {
    const ids = await this.imagePromptTokens(prompt);
    if (!ids) {
      throw new ChatRequestError(`prompt: too long for this model's context of ${this.contextTokens} tokens with the image's own tokens: shorten it`, 'context_length_exceeded', 'prompt');
    }
    if (o.signal?.aborted) throw abortError();
    if (o.seed !== undefined) manualSeed(o.seed);
    const side = this.manifest.imageSize;
    const grid = side / latentDownsample(this.model.config);
    const gen = newContext(this.model);
    const cfgText = newContext(this.model); // empty: the text-unconditional branch of plain T2I
    try {
      prefillText(this.model, gen, ids);
      const pixels = noGrad(() => scope(() => {
        const latent = generateImage(this.model, { gen, cfgText }, {
          h: grid, w: grid, numTimesteps: o.numTimesteps ?? 50, cfgTextScale: o.cfgTextScale ?? 4.0, timestepShift: o.timestepShift ?? 3.0,
        });
        const unit = this.vae.decodeToUnit(latent.unsqueeze(0)).squeeze(0); // [3, H, W] in [0, 1]
        return unit.mul(255).round().to('uint8').permute([1, 2, 0]).contiguous();
      }));
      const data = new Uint8Array((pixels.dataSync() as Uint8Array).buffer);
      const [height, width] = pixels.shape as [number, number, number];
      pixels.dispose();
      return await encodePng({ width, height, data });
    } finally {
      gen.dispose();
      cfgText.dispose();
    }
  }

  /** Reply first, then (thinking) the image's plan, then an image of the scene (docs/method.md 4.3 steps 1-3). */
  async rolePlay(user: string, o: ReplyOptions & { image?: ImageOptions; thinking?: boolean | ThinkingOptions } = {}): Promise<{ reply: string; image: Uint8Array; plan?: ImagePlan }> {
    const thinking = resolveThinking(o.thinking);
    const reply = await this.reply(user, o);
    const plan = thinking ? await this.imagePlan(user, reply, { ...thinking, ...(o.signal ? { signal: o.signal } : {}) }) : undefined;
    const prompt = plan?.imagePrompt ?? t2iCaption({ description: this.character.description, user, reply });
    const image = await this.image(prompt, { ...o.image, signal: o.signal });
    return { reply, image, ...(plan ? { plan } : {}) };
  }
}
