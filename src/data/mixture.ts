// Data-mixture recipes (docs/method.md 2.5): groups of tasks with a sampling weight, a mandatory flag
// and per-task caps, written in YAML. A Mixture turns a recipe and a character into endless,
// seed-deterministic sample streams, one per group.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Character } from './character.js';
import { Rng } from './rng.js';
import { TASKS, buildTask, type SamplePlan, type Task } from './samples.js';

const GroupSchema = z
  .object({
    tasks: z.array(z.enum(TASKS)).min(1),
    weight: z.number().positive(),
    is_mandatory: z.boolean().default(true),
    /** Cap per task, same order as `tasks` (the reference `num_used_data`). */
    num_used_data: z.array(z.number().int().nonnegative()).optional(),
    /** Shuffle each task's records before the cap (reference: VLM jsonl, seed 0). */
    shuffle_lines: z.boolean().default(false),
    shuffle_seed: z.number().int().default(0),
  })
  .strict()
  .refine((g) => !g.num_used_data || g.num_used_data.length === g.tasks.length, { message: 'num_used_data needs one cap per task', path: ['num_used_data'] });

export const RecipeSchema = z
  .object({
    name: z.string(),
    /** Seed of the group order per epoch (reference `data_seed` 42). */
    seed: z.number().int().default(42),
    groups: z.record(GroupSchema).refine((g) => Object.keys(g).length > 0, { message: 'a recipe needs at least one group' }),
  })
  .strict();
export type Recipe = z.infer<typeof RecipeSchema>;
export type RecipeGroup = Recipe['groups'][string];

export function parseRecipe(yamlText: string, source = 'recipe'): Recipe {
  let raw: unknown;
  try {
    raw = parseYaml(yamlText);
  } catch (e) {
    throw new Error(`${source}: invalid YAML: ${(e as Error).message}`);
  }
  const r = RecipeSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`${source}: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return r.data;
}

/** The four per-character recipes of the reference (docs/method.md 2.5 table), without caps. */
export const BUILTIN_RECIPES: Record<string, string> = {
  base: `name: base
groups:
  t2i_pretrain: { tasks: [t2i], weight: 8000, is_mandatory: true }
  vlm_sft: { tasks: [vlm], weight: 1, is_mandatory: true, shuffle_lines: true, shuffle_seed: 0 }
`,
  extension: `name: extension
groups:
  t2i_pretrain: { tasks: [t2i], weight: 20000, is_mandatory: true }
  vlm_sft: { tasks: [vlm_extension], weight: 1, is_mandatory: true, shuffle_lines: true, shuffle_seed: 0 }
`,
  extension_with_thinking: `name: extension_with_thinking
groups:
  t2i_pretrain: { tasks: [t2i, t2i_with_thinking], weight: 20000, is_mandatory: true }
  vlm_sft: { tasks: [vlm_extension, vlm_thinking], weight: 1, is_mandatory: true, shuffle_lines: true, shuffle_seed: 0 }
`,
  full: `name: full
groups:
  t2i_pretrain: { tasks: [t2i, t2i_with_thinking, pure_t2i], weight: 20000, is_mandatory: true }
  vlm_sft: { tasks: [vlm_extension, vlm_thinking, knowledge_qa, vqa], weight: 1, is_mandatory: true, shuffle_lines: true, shuffle_seed: 0 }
`,
};

/** One group's endless stream: its records, reshuffled every epoch with (seed, epoch). */
export class GroupStream {
  private epoch = 0;
  private order: SamplePlan[] = [];
  private pos = 0;
  constructor(
    readonly name: string,
    readonly group: RecipeGroup,
    readonly records: SamplePlan[],
    private readonly seed: number,
  ) {
    if (records.length === 0) throw new Error(`mixture group ${name} has no samples`);
  }
  next(): SamplePlan {
    if (this.pos >= this.order.length) {
      this.order = new Rng(this.seed * 1_000_003 + this.epoch).shuffle(this.records);
      this.epoch++;
      this.pos = 0;
    }
    return this.order[this.pos++]!;
  }
}

export class Mixture {
  readonly streams: GroupStream[];
  constructor(
    readonly recipe: Recipe,
    character: Character,
  ) {
    this.streams = Object.entries(recipe.groups).map(([name, g], gi) => {
      const records = g.tasks.flatMap((task: Task, ti) => {
        let rs = buildTask(character, task);
        if (g.shuffle_lines) rs = new Rng(g.shuffle_seed).shuffle(rs);
        const cap = g.num_used_data?.[ti];
        return cap === undefined ? rs : rs.slice(0, cap);
      });
      return new GroupStream(name, g, records, recipe.seed + gi);
    });
  }
}
