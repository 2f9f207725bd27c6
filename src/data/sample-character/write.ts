// Writes Tessel to disk in the exact RoleScape-20 layout (docs/dataset.md 3–6, 10):
// samples/train/<Folder>/, samples/test/<Folder>/, samples/grpo/<G>/. Deterministic: the same
// code writes the same bytes, which test/data/sample-character/write.test.ts checks.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Character, Scene } from '../character.js';
import { buildTask, planToConversation, type Task } from '../samples.js';
import { renderPng } from './draw.js';
import { TRAIN_IMAGES, TEST_IMAGES, type ImageScene } from './content.js';
import { buildSampleCharacter } from './build.js';
import { SAMPLE_FOLDER } from './paths.js';

/** The drawing seed of an image: fixed per split and id so backgrounds never shift. */
export function imageSeed(split: 'train' | 'test', id: number): number {
  return (split === 'train' ? 1000 : 2000) + id;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
const jsonl = (vs: unknown[]) => vs.map((v) => JSON.stringify(v)).join('\n') + '\n';

function rawScenes(scenes: Scene[], withExtras: 'none' | 'image' | 'plan' | 'full', c: Character) {
  return scenes.map((s) => {
    const m: Record<string, unknown> = { role: 'machine', text: s.reply };
    if (s.image !== undefined && withExtras !== 'none') m.image = s.image;
    if (withExtras === 'plan' || withExtras === 'full') {
      m.thinking_process = s.thinkingProcess;
      m.generation_instruction = s.generationInstruction;
    }
    if (withExtras === 'full') {
      m.qa_pairs = c.vqa.filter((q) => q.imageId === s.image).map((q) => ({ question: q.question, answer: q.answer, type: q.type }));
      m.mcq_items = c.vqaMcq.filter((q) => q.imageId === s.image).map((q) => ({ id: q.id, question: q.question, options: q.options, answer_key: q.answerKey, difficulty: q.difficulty, rationale: q.rationale }));
    }
    return [{ role: 'user', text: s.user }, m];
  });
}

async function writeSplit(root: string, split: 'train' | 'test', c: Character, list: ImageScene[], scenes: Scene[]): Promise<void> {
  const dir = join(root, split, SAMPLE_FOLDER);
  const P = c.names.prefix;
  mkdirSync(join(dir, 'processed', 't2i'), { recursive: true });
  const base = { description: c.description, opening: c.opening };
  for (let i = 0; i < list.length; i++) writeFileSync(join(dir, `${i}.png`), await renderPng(list[i]!.spec, imageSeed(split, i)));
  writeFileSync(join(dir, 'annotation.json'), json({ ...base, scenes: rawScenes(scenes, 'image', c) }));
  writeFileSync(join(dir, `${P}_with_image.json`), json({ ...base, scenes: rawScenes(scenes, split === 'train' ? 'full' : 'plan', c) }));
  const imgs = split === 'train' ? c.referenceImages : c.tests.heldOutImages;
  writeFileSync(join(dir, `${P}_t2i_instruction.json`), json({ ...base, t2i_instructions: imgs.map((i) => ({ image_id: i.id, t2i_instruction: i.t2iInstruction })) }));
  writeFileSync(join(dir, `${P}_full_profile.txt`), c.profile);

  // Processed T2I lines (docs/dataset.md 4); the test split has them too.
  const view: Character = split === 'train' ? c : { ...c, referenceImages: c.tests.heldOutImages, scenes: c.tests.heldOutScenes };
  const imagePath = (id: string) => `personalized_data/${split}/${SAMPLE_FOLDER}/${id}.png`;
  const t2iLines = (task: Task, stringIds: boolean) =>
    buildTask(view, task).map((p, i) => {
      const text = (p.items[0] as { text: string }).text;
      const id = view.scenes[i]?.image ?? String(i);
      return { text, image: imagePath(id), character: P, scene_id: stringIds ? id : Number(id) };
    });
  writeFileSync(join(dir, 'processed', 't2i', `${P}_t2i.jsonl`), jsonl(t2iLines('t2i', false)));
  writeFileSync(join(dir, 'processed', 't2i', `${P}_t2i_with_thinking.jsonl`), jsonl(t2iLines('t2i_with_thinking', false)));
  writeFileSync(
    join(dir, 'processed', 't2i', `${P}_t2i_generation_instruction_only.jsonl`),
    jsonl(view.scenes.map((s) => ({ text: s.generationInstruction, image: imagePath(s.image!), character: P, scene_id: Number(s.image) }))),
  );
  writeFileSync(join(dir, 'processed', 't2i', `${P}_pure_t2i.jsonl`), jsonl(t2iLines('pure_t2i', true)));
  if (split === 'test') return;

  // Train-only files (docs/dataset.md 7).
  writeFileSync(join(dir, `${P}_personality_simplified_profile.txt`), c.style);
  writeFileSync(
    join(dir, `${P}_knowledge_qa.json`),
    json({ ...base, qa_items: c.knowledgeQa.map((q) => ({ id: q.id, question: q.question, answer: q.answer, evidence: q.evidence[0], type: q.type, difficulty: q.difficulty, reasoning_steps: q.reasoningSteps, confidence: q.confidence })) }),
  );
  writeFileSync(
    join(dir, `${P}_knowledge_qa_test.json`),
    json({ ...base, mcq_items: c.tests.knowledgeMcq.map((q) => ({ id: q.id, question: q.question, options: q.options, answer_key: q.answerKey, difficulty: q.difficulty, evidence: q.evidence, rationale: q.rationale })) }),
  );
  writeFileSync(join(dir, `${P}_memorization_test.json`), json({ ...base, test_questions: c.tests.memorization }));
  writeFileSync(join(dir, `${P}_personality_test.json`), json({ ...base, test_questions: c.tests.personality }));
  // The train extension file ends with the annotated scenes, image keys removed (docs/dataset.md 3.9).
  writeFileSync(join(dir, `${P}_dialogue_text_extension_train.json`), json({ ...base, scenes: rawScenes([...c.dialogue, ...c.scenes], 'none', c) }));
  writeFileSync(join(dir, `${P}_dialogue_text_extension_test.json`), json({ ...base, scenes: rawScenes(c.tests.dialogue, 'none', c) }));

  // Processed VLM lines (docs/dataset.md 5), built by the sample builders.
  mkdirSync(join(dir, 'processed', 'vlm'), { recursive: true });
  const vlm = (task: Task) =>
    buildTask(c, task).map((p, i) => {
      const { human, gpt } = planToConversation(p);
      return { id: i, conversations: [{ from: 'human', value: human }, { from: 'gpt', value: gpt }] };
    });
  for (const task of ['vlm', 'vlm_extension', 'vlm_thinking', 'knowledge_qa'] as const) writeFileSync(join(dir, 'processed', 'vlm', `${P}_${task}.jsonl`), jsonl(vlm(task)));
  const vqa = buildTask(c, 'vqa').map((p, i) => {
    const { human, gpt } = planToConversation(p);
    const q = c.vqa[i]!;
    return { id: p.source.split('/').pop(), image: imagePath(q.imageId), conversations: [{ from: 'human', value: human }, { from: 'gpt', value: gpt }], qa_type: q.type };
  });
  writeFileSync(join(dir, 'processed', 'vlm', `${P}_vqa.jsonl`), jsonl(vqa));
}

function writeGrpo(root: string, c: Character): void {
  const G = c.names.grpo;
  const dir = join(root, 'grpo', G);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${G}_full_profile.txt`), c.profile);
  const base = (p: Character['t2iPrompts'][number]) => ({ text: p.text, character: G, scene_id: p.id, reference_images_path: `dataset/personalized_t2i/${G}` });
  writeFileSync(join(dir, `${G}_pure_t2i.jsonl`), jsonl(c.t2iPrompts.map(base)));
  writeFileSync(
    join(dir, `${G}_pure_t2i_with_vqa.jsonl`),
    jsonl(c.t2iPrompts.map((p) => ({ ...base(p), vqa_questions: p.checklist.map((q) => ({ question: q.question, type: q.type, category: q.category, answer: q.answer, ...(q.choices ? { choices: q.choices } : {}), weight: q.weight, is_negative: q.isNegative })) }))),
  );
}

/** Writes the whole sample character under `root` (normally `samples/`), replacing old files. */
export async function writeSampleCharacter(root: string): Promise<void> {
  const c = buildSampleCharacter();
  for (const d of [join(root, 'train', SAMPLE_FOLDER), join(root, 'test', SAMPLE_FOLDER), join(root, 'grpo', c.names.grpo)]) rmSync(d, { recursive: true, force: true });
  await writeSplit(root, 'train', c, TRAIN_IMAGES, c.scenes);
  await writeSplit(root, 'test', c, TEST_IMAGES, c.tests.heldOutScenes);
  writeGrpo(root, c);
}
