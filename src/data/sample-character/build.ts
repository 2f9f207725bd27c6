// Tessel as a Character, built from content.ts (the inverse of reading samples/ back).
import { emptyTests, type Character, type CharacterImage, type ImageMcq, type Scene, type VqaPair, type Mcq } from '../character.js';
import { EXPRESSION, PLACE, POSE, PROP, DESCRIPTION, OPENING, PROFILE, STYLE, VISUAL_DESCRIPTION, TRAIN_IMAGES, TEST_IMAGES, DIALOGUE, DIALOGUE_TEST, KNOWLEDGE, KNOWLEDGE_MCQ, MEMORIZATION, PERSONALITY, GRPO_PROMPTS, type ImageScene } from './content.js';
import { SAMPLE_FOLDER, SAMPLE_PREFIX } from './paths.js';
import type { ImageSpec } from './draw.js';

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export function generationInstruction(spec: ImageSpec): string {
  const prop = spec.prop === 'none' ? '' : `, ${PROP[spec.prop].phrase}`;
  return `Tessel, a teal fox mascot with an orange four-pointed star on her forehead, ${POSE[spec.pose].phrase}${prop}, ${EXPRESSION[spec.expression].phrase}, ${PLACE[spec.place].phrase}, yellow scarf with a brass compass, bushy tail with three orange rings, flat vector cartoon style, clean shapes, high quality`;
}

export function t2iInstruction(spec: ImageSpec): string {
  const prop = spec.prop === 'none' ? '' : `, ${PROP[spec.prop].phrase}`;
  return `Tessel ${POSE[spec.pose].phrase} ${PLACE[spec.place].phrase}${prop}, ${EXPRESSION[spec.expression].phrase}, teal fur, orange star marking, yellow scarf, ringed tail`;
}

export function thinkingProcess(s: ImageScene): string {
  const e = EXPRESSION[s.spec.expression];
  return `${s.why} Her ${e.answer} expression matches the ${e.mood} tone of the reply. Keeping her teal fur, the orange star on her forehead, the yellow scarf with its brass compass and the three orange rings on her tail makes her instantly recognisable.`;
}

/** VQA pairs whose answers are read off the ImageSpec, so they are true of the drawing. */
export function vqaPairs(imageId: string, spec: ImageSpec, why: string): VqaPair[] {
  const o = (question: string, answer: string): VqaPair => ({ imageId, question, answer, type: 'objective' });
  const out = [
    o('What is Tessel doing in the image?', `She is ${POSE[spec.pose].phrase}.`),
    o('Where is Tessel?', cap(PLACE[spec.place].phrase) + '.'),
    o('What expression does Tessel have?', `${cap(EXPRESSION[spec.expression].answer)}, with ${EXPRESSION[spec.expression].phrase}.`),
    o('What colour is Tessel’s scarf?', 'Yellow, with a small brass compass.'),
    o('What is on Tessel’s forehead?', 'An orange four-pointed star.'),
    o('How many orange rings are on Tessel’s tail?', 'Three.'),
    o('What is Tessel holding?', cap(PROP[spec.prop].answer) + '.'),
  ];
  if (PLACE[spec.place].time !== 'none') out.push(o('What time of day is it?', cap(PLACE[spec.place].time) + '.'));
  out.push({ imageId, question: 'What mood does the image convey?', answer: `It feels ${EXPRESSION[spec.expression].mood}.`, type: 'subjective' });
  out.push({ imageId, question: 'Why might Tessel look like this?', answer: why, type: 'subjective' });
  return out;
}

const KEYS = ['A', 'B', 'C', 'D'] as const;

function mcq(id: string, question: string, correct: string, pool: string[], slot: number): Mcq {
  const others = pool.filter((p) => p !== correct).slice(0, 3);
  const opts = [...others];
  opts.splice(slot % 4, 0, correct);
  return { id, question, options: { A: opts[0]!, B: opts[1]!, C: opts[2]!, D: opts[3]! }, answerKey: KEYS[slot % 4]!, difficulty: 'easy', rationale: `The image shows Tessel ${correct}.` };
}

export function vqaMcqs(imageId: string, spec: ImageSpec, n: number): ImageMcq[] {
  const poses = Object.values(POSE).map((p) => p.answer);
  const places = Object.values(PLACE).filter((p) => p.time !== 'none').map((p) => p.answer);
  const exprs = Object.values(EXPRESSION).map((p) => p.answer);
  const items = [mcq('q1', 'What is Tessel doing?', POSE[spec.pose].answer, poses, n), mcq('q2', 'What expression does Tessel have?', EXPRESSION[spec.expression].answer, exprs, n + 1)];
  if (spec.place !== 'none') items.push(mcq('q3', 'Where is Tessel?', PLACE[spec.place].answer, places, n + 2));
  return items.map((m) => ({ ...m, imageId }));
}

function imageScene(s: ImageScene, i: number): Scene {
  return { id: String(i), user: s.user, reply: s.reply, image: String(i), thinkingProcess: thinkingProcess(s), generationInstruction: generationInstruction(s.spec) };
}

function images(list: ImageScene[]): CharacterImage[] {
  return list.map((s, i) => ({ id: String(i), t2iInstruction: t2iInstruction(s.spec) }));
}

/** Tessel as a Character (without image paths: the reader fills those in). */
export function buildSampleCharacter(): Character {
  const tests = emptyTests();
  tests.knowledgeMcq = KNOWLEDGE_MCQ.map(([question, A, B, C, D, answerKey, difficulty], i) => ({ id: `mcq_${String(i + 1).padStart(3, '0')}`, question, options: { A, B, C, D }, answerKey, difficulty, evidence: '', rationale: 'Stated in the profile.' }));
  tests.memorization = MEMORIZATION.slice();
  tests.personality = PERSONALITY.slice();
  tests.dialogue = DIALOGUE_TEST.map(([user, reply], i) => ({ id: String(i), user, reply }));
  tests.heldOutImages = images(TEST_IMAGES);
  tests.heldOutScenes = TEST_IMAGES.map(imageScene);
  return {
    id: SAMPLE_FOLDER,
    names: { display: 'Tessel', prefix: SAMPLE_PREFIX, folder: SAMPLE_FOLDER, grpo: SAMPLE_PREFIX },
    category: 'anime',
    description: DESCRIPTION,
    opening: OPENING,
    profile: PROFILE,
    style: STYLE,
    visualDescription: VISUAL_DESCRIPTION,
    referenceImages: images(TRAIN_IMAGES),
    scenes: TRAIN_IMAGES.map(imageScene),
    dialogue: DIALOGUE.map(([user, reply], i) => ({ id: String(i), user, reply })),
    knowledgeQa: KNOWLEDGE.map(([question, answer, evidence, type, difficulty], i) => ({ id: `qa_${String(i + 1).padStart(3, '0')}`, question, answer, evidence: [evidence], type, difficulty, reasoningSteps: ['Stated directly in the profile.'], confidence: 1 })),
    vqa: TRAIN_IMAGES.flatMap((s, i) => vqaPairs(String(i), s.spec, s.why)),
    vqaMcq: TRAIN_IMAGES.flatMap((s, i) => vqaMcqs(String(i), s.spec, i)),
    t2iPrompts: GRPO_PROMPTS.map(([text, qs], i) => ({
      id: String(i),
      text,
      checklist: qs.map(([question, type, category, answer, weight, isNegative, choices]) => (choices ? { question, type, category, answer, weight, isNegative, choices } : { question, type, category, answer, weight, isNegative })),
    })),
    tests,
    extensions: {},
  };
}
