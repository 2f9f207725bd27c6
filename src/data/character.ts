// The one in-memory form of a character, whatever it came from (docs/architecture.md "Data"):
// a RoleScape-20 folder, a character card, or the project's sample character.
// Field meanings follow docs/dataset.md 3; the zod schema is the runtime check used by every reader.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const CATEGORIES = ['human', 'animal', 'anime', 'other'] as const;
export type Category = (typeof CATEGORIES)[number];

/** The name forms a loader needs (docs/dataset.md 1: folder vs file prefix vs GRPO folder). */
export const CharacterNamesSchema = z.object({
  display: z.string().min(1),
  /** File prefix `<P>`, also the `{name}` slot of the role-play template (docs/method.md 2.5). */
  prefix: z.string().min(1),
  folder: z.string().min(1),
  grpo: z.string().min(1),
  /** V3 card nickname: replaces {{char}} in prompts when present (docs/ecosystem.md 1.1). */
  nickname: z.string().optional(),
});
export type CharacterNames = z.infer<typeof CharacterNamesSchema>;

/** A reference or held-out image. Either a file path or in-memory bytes (cards). */
export const CharacterImageSchema = z.object({
  /** The string id "n" of `<n>.png` (docs/dataset.md 2). */
  id: z.string().min(1),
  path: z.string().optional(),
  data: z.instanceof(Uint8Array).optional(),
  /** The short "pure" T2I caption of this image (docs/dataset.md 3.5). */
  t2iInstruction: z.string().optional(),
});
export type CharacterImage = z.infer<typeof CharacterImageSchema>;

/** One two-turn scene: a user line and the character's reply, optionally illustrated. */
export const SceneSchema = z.object({
  id: z.string(),
  user: z.string(),
  reply: z.string(),
  /** Image id in the same split; only annotated scenes have one (docs/dataset.md 3.3, 3.9). */
  image: z.string().optional(),
  thinkingProcess: z.string().optional(),
  generationInstruction: z.string().optional(),
});
export type Scene = z.infer<typeof SceneSchema>;

export const KnowledgeQaSchema = z.object({
  id: z.string(),
  question: z.string(),
  answer: z.string(),
  /** Always a list here; the data has a string or a list (docs/dataset.md 9.5). */
  evidence: z.array(z.string()),
  type: z.string(),
  difficulty: z.string(),
  reasoningSteps: z.array(z.string()),
  confidence: z.number().optional(),
});
export type KnowledgeQa = z.infer<typeof KnowledgeQaSchema>;

export const OPTION_KEYS = ['A', 'B', 'C', 'D'] as const;
export type OptionKey = (typeof OPTION_KEYS)[number];

export const McqSchema = z.object({
  id: z.string(),
  question: z.string(),
  /** Always strings here; some data items carry integers (docs/dataset.md 3.4). */
  options: z.object({ A: z.string(), B: z.string(), C: z.string(), D: z.string() }),
  answerKey: z.enum(OPTION_KEYS),
  difficulty: z.string().optional(),
  evidence: z.string().optional(),
  rationale: z.string().optional(),
});
export type Mcq = z.infer<typeof McqSchema>;

export const VqaPairSchema = z.object({
  imageId: z.string(),
  question: z.string(),
  answer: z.string(),
  type: z.enum(['objective', 'subjective']),
});
export type VqaPair = z.infer<typeof VqaPairSchema>;

export const ImageMcqSchema = McqSchema.extend({ imageId: z.string() });
export type ImageMcq = z.infer<typeof ImageMcqSchema>;

/** One checklist question of a creative T2I prompt (docs/dataset.md 6.2). */
export const ChecklistQuestionSchema = z.object({
  question: z.string(),
  type: z.enum(['yes_no', 'multiple_choice', 'open_ended']),
  category: z.string(),
  answer: z.string(),
  choices: z.array(z.string()).optional(),
  weight: z.number(),
  isNegative: z.boolean(),
});
export type ChecklistQuestion = z.infer<typeof ChecklistQuestionSchema>;

export const T2iPromptSchema = z.object({
  id: z.string(),
  text: z.string(),
  checklist: z.array(ChecklistQuestionSchema),
});
export type T2iPrompt = z.infer<typeof T2iPromptSchema>;

/** Evaluation sets. docs/dataset.md 7: knowledge, memorization, personality and text role-play tests
 * live in the train folder; held-out images and their scenes come from the test split. */
export const CharacterTestsSchema = z.object({
  knowledgeMcq: z.array(McqSchema),
  memorization: z.array(z.string()),
  personality: z.array(z.string()),
  dialogue: z.array(SceneSchema),
  heldOutImages: z.array(CharacterImageSchema),
  heldOutScenes: z.array(SceneSchema),
});
export type CharacterTests = z.infer<typeof CharacterTestsSchema>;

export const CharacterSchema = z.object({
  id: z.string().min(1),
  names: CharacterNamesSchema,
  category: z.enum(CATEGORIES),
  /** One-paragraph persona summary: the `{desc}` slot of every template (docs/method.md 2.5). */
  description: z.string(),
  /** The character's greeting: the `{opening}` slot; may be empty (docs/dataset.md 3). */
  opening: z.string(),
  /** The long character sheet (docs/dataset.md 3.1). */
  profile: z.string(),
  /** Personality and speaking style (docs/dataset.md 3.2). */
  style: z.string(),
  visualDescription: z.string(),
  referenceImages: z.array(CharacterImageSchema),
  /** Annotated scenes, one per reference image (docs/dataset.md 3.3, 3.4). */
  scenes: z.array(SceneSchema),
  /** Text-only role-play scenes (the generated part of docs/dataset.md 3.9, without the appended
   * annotated scenes). */
  dialogue: z.array(SceneSchema),
  knowledgeQa: z.array(KnowledgeQaSchema),
  vqa: z.array(VqaPairSchema),
  vqaMcq: z.array(ImageMcqSchema),
  /** Creative T2I prompts with VQA checklists (docs/dataset.md 6). */
  t2iPrompts: z.array(T2iPromptSchema),
  tests: CharacterTestsSchema,
  /** Data this project does not interpret (e.g. unknown card fields), kept for round trips. */
  extensions: z.record(z.unknown()),
});
export type Character = z.infer<typeof CharacterSchema>;

export function emptyTests(): CharacterTests {
  return { knowledgeMcq: [], memorization: [], personality: [], dialogue: [], heldOutImages: [], heldOutScenes: [] };
}

/** The bytes of a character image: its data, else its file. */
export function imageBytes(img: CharacterImage): Uint8Array {
  if (img.data) return img.data;
  if (img.path) return new Uint8Array(readFileSync(img.path));
  throw new Error(`image ${img.id} has neither data nor a path`);
}

/** A character with only a name; every list empty. Card importers and tests start from it. */
export function emptyCharacter(name: string): Character {
  return {
    id: name,
    names: { display: name, prefix: name, folder: name, grpo: name.replace(/ /g, '_') },
    category: 'other',
    description: '',
    opening: '',
    profile: '',
    style: '',
    visualDescription: '',
    referenceImages: [],
    scenes: [],
    dialogue: [],
    knowledgeQa: [],
    vqa: [],
    vqaMcq: [],
    t2iPrompts: [],
    tests: emptyTests(),
    extensions: {},
  };
}

/** Checks a value against the schema; the error lists each failing path. */
export function parseCharacter(value: unknown, source = 'character'): Character {
  const r = CharacterSchema.safeParse(value);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new Error(`${source}: invalid Character:\n  ${lines.join('\n  ')}`);
}
