// Sample builders: a Character → training samples per task, as sequence plans (docs/method.md 2.1).
// A plan is a plain description (text segments and image items with their loss and CFG flags);
// the model layer turns it into tokens and tensors.
import type { Character, CharacterImage, KnowledgeQa, Scene, VqaPair } from './character.js';
import {
  IMAGE_PLACEHOLDER,
  rolePlayPrompt,
  t2iCaption,
  t2iThinkingCaption,
  thinkingPlanAnswer,
  thinkingPlanPrompt,
  vqaPrompt,
} from './templates.js';

/** The per-task sources of docs/method.md 2.5, named like the reference datasets' suffixes. */
export const TASKS = ['t2i', 't2i_with_thinking', 'pure_t2i', 'vlm', 'vlm_extension', 'vlm_thinking', 'knowledge_qa', 'vqa'] as const;
export type Task = (typeof TASKS)[number];
/** T2I tasks belong to the `t2i_pretrain` group, the others to `vlm_sft` (docs/method.md 2.5). */
export function isT2iTask(t: Task): boolean {
  return t === 't2i' || t === 't2i_with_thinking' || t === 'pure_t2i';
}

export type PlanItem =
  | { kind: 'text'; text: string; loss: 0 | 1; enableCfg: 0 | 1 }
  | { kind: 'vit_image' | 'vae_image'; image: CharacterImage; loss: 0 | 1; enableCfg: 0 | 1 };

export interface SamplePlan {
  task: Task;
  /** `<character id>/<task>/<record id>`: where the sample came from. */
  source: string;
  items: PlanItem[];
}

function imageOf(c: Character, id: string): CharacterImage {
  const img = c.referenceImages.find((i) => i.id === id);
  if (!img) throw new Error(`${c.id}: no reference image "${id}"`);
  return img;
}

/** T2I sample: caption (loss 0, CFG-droppable) then the VAE image (loss 1) (docs/method.md 2.1). */
function t2iPlan(task: Task, source: string, caption: string, image: CharacterImage): SamplePlan {
  return {
    task,
    source,
    items: [
      { kind: 'text', text: caption, loss: 0, enableCfg: 1 },
      { kind: 'vae_image', image, loss: 1, enableCfg: 0 },
    ],
  };
}

/** VLM sample: the human turn split at `<image>` (text and ViT items, loss 0), then the gpt turn
 * (loss 1); CFG off everywhere (docs/method.md 2.1). Empty text pieces are dropped. */
export function vlmPlan(task: Task, source: string, human: string, gpt: string, images: CharacterImage[] = []): SamplePlan {
  const pieces = human.split(IMAGE_PLACEHOLDER);
  if (pieces.length - 1 !== images.length) throw new Error(`${source}: ${pieces.length - 1} <image> placeholders for ${images.length} images`);
  const items: PlanItem[] = [];
  pieces.forEach((text, i) => {
    if (i > 0) items.push({ kind: 'vit_image', image: images[i - 1]!, loss: 0, enableCfg: 0 });
    if (text !== '') items.push({ kind: 'text', text, loss: 0, enableCfg: 0 });
  });
  items.push({ kind: 'text', text: gpt, loss: 1, enableCfg: 0 });
  return { task, source, items };
}

function sceneSlots(c: Character, s: Scene) {
  return { description: c.description, user: s.user, reply: s.reply };
}

function needPlan(c: Character, s: Scene): { thinkingProcess: string; generationInstruction: string } {
  if (s.thinkingProcess === undefined || s.generationInstruction === undefined) throw new Error(`${c.id}: scene ${s.id} has no thinking plan`);
  return { thinkingProcess: s.thinkingProcess, generationInstruction: s.generationInstruction };
}

export function buildRolePlayT2i(c: Character, s: Scene): SamplePlan {
  return t2iPlan('t2i', `${c.id}/t2i/${s.id}`, t2iCaption(sceneSlots(c, s)), imageOf(c, s.image ?? ''));
}

export function buildRolePlayT2iThinking(c: Character, s: Scene): SamplePlan {
  return t2iPlan('t2i_with_thinking', `${c.id}/t2i_with_thinking/${s.id}`, t2iThinkingCaption({ ...sceneSlots(c, s), ...needPlan(c, s) }), imageOf(c, s.image ?? ''));
}

export function buildPureT2i(c: Character, img: CharacterImage): SamplePlan {
  if (img.t2iInstruction === undefined) throw new Error(`${c.id}: image ${img.id} has no T2I instruction`);
  return t2iPlan('pure_t2i', `${c.id}/pure_t2i/${img.id}`, img.t2iInstruction, img);
}

/** Role-play text (`_vlm`, `_vlm_extension`). No image, although the prompt mentions one
 * (docs/method.md 2.5 [quirk]). */
export function buildRolePlayText(c: Character, s: Scene, task: 'vlm' | 'vlm_extension' = 'vlm'): SamplePlan {
  const human = rolePlayPrompt({ description: c.description, opening: c.opening, user: s.user, name: c.names.prefix });
  return vlmPlan(task, `${c.id}/${task}/${s.id}`, human, s.reply);
}

export function buildThinkingPlan(c: Character, s: Scene): SamplePlan {
  const p = needPlan(c, s);
  return vlmPlan('vlm_thinking', `${c.id}/vlm_thinking/${s.id}`, thinkingPlanPrompt(sceneSlots(c, s)), thinkingPlanAnswer(p.thinkingProcess, p.generationInstruction));
}

export function buildKnowledgeQa(c: Character, q: KnowledgeQa): SamplePlan {
  return vlmPlan('knowledge_qa', `${c.id}/knowledge_qa/${q.id}`, q.question, q.answer);
}

export function buildVqa(c: Character, q: VqaPair, index: number): SamplePlan {
  return vlmPlan('vqa', `${c.id}/vqa/${q.imageId}_${index}`, vqaPrompt(q.question), q.answer, [imageOf(c, q.imageId)]);
}

/** Every sample of one task, in the order of the reference files (docs/dataset.md 4, 5):
 * `vlm_extension` is the generated dialogue followed by the annotated scenes. */
export function buildTask(c: Character, task: Task): SamplePlan[] {
  switch (task) {
    case 't2i':
      return c.scenes.map((s) => buildRolePlayT2i(c, s));
    case 't2i_with_thinking':
      return c.scenes.map((s) => buildRolePlayT2iThinking(c, s));
    case 'pure_t2i':
      return c.referenceImages.map((i) => buildPureT2i(c, i));
    case 'vlm':
      return c.scenes.map((s) => buildRolePlayText(c, s, 'vlm'));
    case 'vlm_extension':
      return [...c.dialogue, ...c.scenes.map((s, i) => ({ ...s, id: String(c.dialogue.length + i) }))].map((s) => buildRolePlayText(c, s, 'vlm_extension'));
    case 'vlm_thinking':
      return c.scenes.map((s) => buildThinkingPlan(c, s));
    case 'knowledge_qa':
      return c.knowledgeQa.map((q) => buildKnowledgeQa(c, q));
    case 'vqa': {
      const perImage = new Map<string, number>();
      return c.vqa.map((q) => {
        const k = perImage.get(q.imageId) ?? 0;
        perImage.set(q.imageId, k + 1);
        return buildVqa(c, q, k);
      });
    }
  }
}

/** The text of a plan's loss-0 prompt and loss-1 answer, joined back into the LLaVA form
 * (`<image>` where a ViT image was) — what the reference JSONL lines hold. */
export function planToConversation(plan: SamplePlan): { human: string; gpt: string } {
  let human = '';
  let gpt = '';
  for (const it of plan.items) {
    if (it.kind === 'vit_image') human += IMAGE_PLACEHOLDER;
    else if (it.kind === 'text') {
      if (it.loss === 1) gpt += it.text;
      else human += it.text;
    }
  }
  return { human, gpt };
}
