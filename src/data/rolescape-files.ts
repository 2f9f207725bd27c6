// zod schemas of the raw RoleScape-20 files (docs/dataset.md 3, 4, 5, 6). They accept the
// documented type drift (§9.5) so the reader can coerce it with a warning; anything else fails
// with the file, record and field.
import { z } from 'zod';

const UserTurn = z.object({ role: z.literal('user'), text: z.string() });
const MachineTurn = z
  .object({
    role: z.literal('machine'),
    text: z.string(),
    image: z.string().optional(),
    thinking_process: z.string().optional(),
    generation_instruction: z.string().optional(),
  })
  .passthrough();
export const RawScene = z.tuple([UserTurn, MachineTurn]);
export type RawScene = z.infer<typeof RawScene>;

const Base = { description: z.string(), opening: z.string() };

export const AnnotationFile = z.object({ ...Base, scenes: z.array(RawScene) });

export const RawQaPair = z.object({
  question: z.string(),
  answer: z.string(),
  type: z.enum(['objective', 'subjective']),
});

/** MCQ options may be integers (docs/dataset.md 3.4); evidence may be a list (§3.6). */
const OptionValue = z.union([z.string(), z.number()]);
export const RawMcq = z
  .object({
    id: z.string(),
    question: z.string(),
    options: z.object({ A: OptionValue, B: OptionValue, C: OptionValue, D: OptionValue }).strict(),
    answer_key: z.enum(['A', 'B', 'C', 'D']),
    difficulty: z.string().optional(),
    evidence: z.union([z.string(), z.array(z.string())]).optional(),
    rationale: z.string().optional(),
  })
  .passthrough();
export type RawMcq = z.infer<typeof RawMcq>;

const WithImageMachine = MachineTurn.extend({
  qa_pairs: z.array(RawQaPair).optional(),
  mcq_items: z.array(RawMcq).optional(),
});
export const WithImageFile = z.object({ ...Base, scenes: z.array(z.tuple([UserTurn, WithImageMachine])) });

export const T2iInstructionFile = z.object({
  ...Base,
  t2i_instructions: z.array(z.object({ image_id: z.string(), t2i_instruction: z.string() })),
});

export const RawKnowledgeQa = z
  .object({
    id: z.string(),
    question: z.string(),
    answer: z.string(),
    evidence: z.union([z.string(), z.array(z.string())]),
    type: z.string(),
    difficulty: z.string(),
    reasoning_steps: z.array(z.string()).optional(),
    confidence: z.number().optional(),
  })
  .passthrough();
export const KnowledgeQaFile = z.object({ ...Base, qa_items: z.array(RawKnowledgeQa) });
export const KnowledgeQaTestFile = z.object({ ...Base, mcq_items: z.array(RawMcq) });
export const ProbeFile = z.object({ ...Base, test_questions: z.array(z.string()) });

const SceneId = z.union([z.string(), z.number().int()]);
export const T2iLine = z.object({ text: z.string(), image: z.string(), character: z.string(), scene_id: SceneId });
export const VlmLine = z.object({
  id: z.union([z.string(), z.number().int()]),
  conversations: z.tuple([
    z.object({ from: z.literal('human'), value: z.string() }),
    z.object({ from: z.literal('gpt'), value: z.string() }),
  ]),
  image: z.string().optional(),
  qa_type: z.string().optional(),
});

export const RawChecklistQuestion = z
  .object({
    question: z.string(),
    type: z.enum(['yes_no', 'multiple_choice', 'open_ended']),
    category: z.string(),
    answer: z.string(),
    choices: z.array(z.string()).optional(),
    weight: z.number(),
    is_negative: z.boolean(),
  })
  .passthrough();
export type RawChecklistQuestion = z.infer<typeof RawChecklistQuestion>;
export const GrpoPureLine = z.object({
  text: z.string(),
  character: z.string(),
  scene_id: SceneId,
  reference_images_path: z.string(),
});
export const GrpoVqaLine = GrpoPureLine.extend({ vqa_questions: z.array(RawChecklistQuestion) });

/** The four T2I variants of processed/t2i (docs/dataset.md 4), in that order. */
export const T2I_VARIANTS = ['t2i', 't2i_with_thinking', 't2i_generation_instruction_only', 'pure_t2i'] as const;
export type T2iVariant = (typeof T2I_VARIANTS)[number];
/** The per-task VLM files of processed/vlm (docs/dataset.md 5), without the older `_full*` files. */
export const VLM_FILES = ['vlm', 'vlm_extension', 'vlm_thinking', 'knowledge_qa', 'vqa'] as const;
export type VlmFile = (typeof VLM_FILES)[number];
