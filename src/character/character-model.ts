// A customized character as one unit: the unified model, its frozen VAE, the tokenizer and the
// character itself, saved as a folder. Training writes it; evaluation and serving load it and
// call reply / image / rolePlay, which follow the reference inference (method.md 4.2-4.4).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad, scope, manualSeed } from '../torch/index.js';
import {
  Bagel, AutoEncoder, newContext, prefillText, decodeSteps, generateImage, loadCheckpoint, saveCheckpoint,
  latentDownsample, validateConfig, type ModelConfig,
} from '../model/index.js';
import {
  CharacterSchema, Tokenizer, StreamDecoder, rolePlayPrompt, t2iCaption, encodePng, trainTinyTokenizer, type Character,
} from '../data/index.js';
import { CHARACTER_MODEL_FILES, type CharacterModelManifest } from './manifest.js';

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

export class CharacterModel {
  constructor(
    readonly character: Character,
    readonly model: Bagel,
    readonly vae: AutoEncoder,
    readonly tokenizer: Tokenizer,
    readonly manifest: CharacterModelManifest,
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

  /** Loads a folder written by save(); errors name the missing or malformed file. */
  static async load(dir: string): Promise<CharacterModel> {
    const file = (name: string): string => {
      const p = join(dir, name);
      if (!existsSync(p)) throw new Error(`${dir}: not a character model folder (${name} is missing)`);
      return p;
    };
    let manifest: CharacterModelManifest;
    try {
      manifest = JSON.parse(readFileSync(file(CHARACTER_MODEL_FILES.manifest), 'utf8')) as CharacterModelManifest;
    } catch (e) {
      throw new Error(`${join(dir, CHARACTER_MODEL_FILES.manifest)}: ${(e as Error).message}`);
    }
    if (manifest.format !== 1) throw new Error(`${dir}: unknown character model format ${String(manifest.format)}`);
    validateConfig(manifest.modelConfig);
    const character = CharacterSchema.parse(JSON.parse(readFileSync(file(CHARACTER_MODEL_FILES.character), 'utf8'), reviveBytes));
    const tokenizer = Tokenizer.fromFile(file(CHARACTER_MODEL_FILES.tokenizer));
    const model = new Bagel(manifest.modelConfig);
    loadCheckpoint(file(CHARACTER_MODEL_FILES.model), model, { strict: true });
    const vae = new AutoEncoder(manifest.modelConfig.vae);
    loadCheckpoint(file(CHARACTER_MODEL_FILES.vae), vae, { strict: true });
    model.eval();
    vae.eval();
    return new CharacterModel(character, model, vae, tokenizer, manifest);
  }

  /** Writes the folder atomically (a temporary folder renamed into place). */
  save(dir: string): void {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, CHARACTER_MODEL_FILES.manifest), JSON.stringify(this.manifest, null, 2) + '\n');
    writeFileSync(join(tmp, CHARACTER_MODEL_FILES.character), JSON.stringify(this.character, bytesAsBase64) + '\n');
    this.tokenizer.save(join(tmp, CHARACTER_MODEL_FILES.tokenizer));
    saveCheckpoint(join(tmp, CHARACTER_MODEL_FILES.model), this.model);
    saveCheckpoint(join(tmp, CHARACTER_MODEL_FILES.vae), this.vae);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }

  dispose(): void {
    this.model.dispose();
    this.vae.dispose();
  }

  /** Token ids of a text segment (bos/eos are added by prefill). */
  async encode(text: string): Promise<number[]> {
    return this.tokenizer.encode(text);
  }

  /** Decodes text after a prompt (method.md 4.4): primed with <|im_start|>, stops at <|im_end|>. */
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

  /** The character's reply to a user turn (method.md 4.3 step 1; sampling at T = 0.7 by default). */
  async reply(user: string, o: ReplyOptions = {}): Promise<string> {
    const c = this.character;
    const prompt = rolePlayPrompt({ description: c.description, opening: c.opening, user, name: c.names.prefix, history: o.history });
    return this.generateText(prompt, { ...o, temperature: o.temperature ?? 0.7, maxTokens: o.maxTokens ?? 500 });
  }

  /** A PNG image for a text prompt (plain T2I with the ODE sampler and text CFG, method.md 4.4). */
  async image(prompt: string, o: ImageOptions = {}): Promise<Uint8Array> {
    const ids = await this.encode(prompt);
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

  /** Reply first, then an image of the scene (method.md 4.3 steps 1 and 3). */
  async rolePlay(user: string, o: ReplyOptions & { image?: ImageOptions } = {}): Promise<{ reply: string; image: Uint8Array }> {
    const reply = await this.reply(user, o);
    const prompt = t2iCaption({ description: this.character.description, user, reply });
    const image = await this.image(prompt, { ...o.image, signal: o.signal });
    return { reply, image };
  }
}

function abortError(): Error {
  const e = new Error('generation cancelled');
  e.name = 'AbortError';
  return e;
}
