// Request schemas, validated at the edge before anything reaches the store or the model
// (docs/architecture.md "Serving"). Shapes follow docs/ecosystem.md 4.1 (content parts) and 4.2 (images).
// Unknown fields are dropped, not refused: front ends send fields (user, metadata, ...) that do not
// change the output. Every field that would change it is honoured or refused (docs/serving.md 3).
import { z } from 'zod';
import { CATEGORIES } from '../data/index.js';
import { EVAL_LIMIT_FIELDS } from '../eval/index.js';
import { GRPO_PRESETS } from '../train/index.js';

const TextPart = z.object({ type: z.literal('text'), text: z.string() });
const ImagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }),
});
export const ContentPartSchema = z.discriminatedUnion('type', [TextPart, ImagePart]);

export const ChatMessageSchema = z.object({
  // `developer` is the newer name of `system` (OpenAI); stored as system.
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(ContentPartSchema)]).nullable(),
  name: z.string().optional(),
});

export const ChatCompletionRequestSchema = z.object({
  model: z.string().min(1),
  messages: z.array(ChatMessageSchema).min(1).max(1000),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  modalities: z.array(z.enum(['text', 'image'])).min(1).optional(),
  max_tokens: z.number().int().positive().max(1 << 20).nullable().optional(),
  max_completion_tokens: z.number().int().positive().max(1 << 20).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
  n: z.literal(1, { errorMap: () => ({ message: 'only n=1 is supported' }) }).nullable().optional(),
  // OpenAI's penalties (docs/serving.md 3): logit -= frequency * count + presence * (count > 0).
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  /** Extension (vLLM, text-generation-webui): HF's repetition penalty over prompt and reply. */
  repetition_penalty: z.number().gt(0).max(10).nullable().optional(),
  /** Extension (vLLM): keep the k most likely tokens (0: off). */
  top_k: z.number().int().min(0).max(1 << 20).nullable().optional(),
  // Fields that would change the output but have no implementation here are refused, not ignored.
  logit_bias: z.record(z.number()).nullable().optional().refine((v) => v == null || Object.keys(v).length === 0, 'logit_bias is not supported'),
  logprobs: z.boolean().nullable().optional().refine((v) => v !== true, 'logprobs is not supported'),
  top_logprobs: z.number().int().nullable().optional().refine((v) => v == null || v === 0, 'top_logprobs is not supported'),
  /** OpenAI's `store`: keep this conversation as a chat even without chat_id (docs/serving.md 5). */
  store: z.boolean().nullable().optional(),
  /** Extension: plan the reply's image first (thinking mode, docs/serving.md 4); needs an image. */
  thinking: z.boolean().nullable().optional(),
  /** OpenAI's field, read as far as it means something here: 'none' is thinking off, 'auto' the
   * default; effort levels are refused in the route (thinking has no levels). */
  reasoning_effort: z.string().nullable().optional(),
  /** Extension: continue a stored chat instead of starting a new one. */
  chat_id: z.string().min(1).max(100).optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

export const ImageGenerationRequestSchema = z.object({
  prompt: z.string().min(1).max(32_000),
  /** A character id: the image is of that character. Optional. */
  model: z.string().min(1).optional(),
  n: z.number().int().min(1).max(4).nullable().optional(),
  size: z
    .string()
    .regex(/^(auto|\d{2,4}x\d{2,4})$/, 'expected "auto" or WIDTHxHEIGHT, e.g. 1024x1024')
    .nullable()
    .optional(),
  response_format: z.literal('b64_json', { errorMap: () => ({ message: 'only b64_json is supported' }) }).nullable().optional(),
  seed: z.number().int().nullable().optional(),
});

const text = (max: number) => z.string().max(max);
export const CharacterCreateSchema = z.object({
  name: z.string().trim().min(1).max(200),
  description: text(100_000).optional(),
  opening: text(100_000).optional(),
  profile: text(1_000_000).optional(),
  style: text(100_000).optional(),
  visual_description: text(100_000).optional(),
  category: z.enum(CATEGORIES).optional(),
  /** Replies include an image unless the request's modalities say otherwise (docs/serving.md 4). */
  reply_images: z.boolean().optional(),
  /** Reply images are drawn in thinking mode unless the request says otherwise (docs/serving.md 4). */
  thinking: z.boolean().optional(),
  /** A data:image/... URI. */
  avatar: z.string().optional(),
});
export const CharacterUpdateSchema = CharacterCreateSchema.partial();
export type CharacterInput = z.infer<typeof CharacterUpdateSchema>;

export const ExportQuerySchema = z.object({ format: z.enum(['png', 'json', 'charx']).default('json'), held_out: z.enum(['include', 'omit']).optional() });

// Job requests (POST /v1/jobs; docs/architecture.md "Jobs"): the kind, the character and the
// options of that kind, each option range-checked; unknown options are refused.
const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const CustomizeOptionsSchema = z
  .object({
    /** Training steps (totalSteps). */
    steps: int(1, 100_000).optional(),
    /** Steps of the VAE stage (only when no base run gives a VAE). */
    vae_steps: int(1, 100_000).optional(),
    /** Square image side of the model; a base run's own side wins. */
    image_size: int(16, 1024).optional(),
    vit_image_size: int(14, 980).optional(),
    save_every: int(1, 100_000).optional(),
    /** Write a sample reply and image every N steps (0: only at the end). */
    sample_every: int(0, 100_000).optional(),
    lr: z.number().positive().max(1).optional(),
    seed: z.number().int().optional(),
    max_images: int(1, 1000).optional(),
  })
  .strict();

export const GrpoOptionsSchema = z
  .object({
    epochs: int(1, 10_000).optional(),
    prompts_per_epoch: int(1, 1000).optional(),
    group_size: int(2, 64).optional(),
    num_steps: int(2, 1000).optional(),
    eval_steps: int(2, 1000).optional(),
    eval_every: int(0, 10_000).optional(),
    save_every: int(1, 10_000).optional(),
    window_size: int(1, 100).optional(),
    lr: z.number().positive().max(1).optional(),
    seed: z.number().int().optional(),
    /** The GRPO preset (docs/fidelity.md): 'reference' (default, the official code) or 'project'. */
    preset: z.enum(GRPO_PRESETS).optional(),
  })
  .strict();

// An eval job's options: the evaluation config's own rules (EVAL_LIMIT_FIELDS), so a value the
// CLI refuses is refused here with the same message.
const E = EVAL_LIMIT_FIELDS;
export const EvalOptionsSchema = z
  .object({
    max_items: E.maxItems.optional(),
    max_tokens: E.maxTokens.optional(),
    max_answer_tokens: E.maxAnswerTokens.optional(),
    max_think_tokens: E.maxThinkTokens.optional(),
    num_timesteps: E.numTimesteps.optional(),
    samples_per_prompt: E.samplesPerPrompt.optional(),
    temperature: E.temperature.optional(),
    seed: E.seed.optional(),
    /** The independent npm evaluators (nsfwjs embedding, face identity). */
    independent: z.boolean().optional(),
  })
  .strict();

const character = z.string().min(1).max(64);
export const JobRequestSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('customize'), character, options: CustomizeOptionsSchema.default({}) }),
  z.object({ kind: z.literal('grpo'), character, options: GrpoOptionsSchema.default({}) }),
  z.object({ kind: z.literal('eval'), character, options: EvalOptionsSchema.default({}) }),
]);
export type JobRequest = z.infer<typeof JobRequestSchema>;
export type ServerJobKind = JobRequest['kind'];
