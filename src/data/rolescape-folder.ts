// One RoleScape-20 character folder read into a Character (docs/dataset.md 3, 7, 10), one step per
// file kind: images, annotation, the image dialogue, T2I instructions, profiles, knowledge QA and
// its MCQ test, probes, dialogue extensions, processed files, the GRPO folder. Known quirks
// (docs/dataset.md 9) are accepted with a warning; anything else throws a DataError naming the
// file, the record and the field.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { z } from 'zod';
import {
  CharacterSchema,
  emptyTests,
  type Character,
  type CharacterImage,
  type CharacterNames,
  type ImageMcq,
  type KnowledgeQa,
  type Mcq,
  type Scene,
  type VqaPair,
} from './character.js';
import { DataError, type Diagnostics } from './diagnostics.js';
import { sniffImageFormat } from './image.js';
import { parseWith, readJsonFile, readTextFile } from './json-file.js';
import { namesOfFolder } from './names.js';
import {
  AnnotationFile,
  KnowledgeQaFile,
  KnowledgeQaTestFile,
  ProbeFile,
  T2iInstructionFile,
  WithImageFile,
  type RawMcq,
  type RawScene,
} from './rolescape-files.js';
import { categoryOf } from './rolescape-categories.js';
import { readGrpoFolder } from './rolescape-grpo.js';
import { readProcessed } from './rolescape-processed.js';
import type { FolderFacts, LoadedCharacter, ReadOptions, SplitName } from './rolescape-types.js';

const IMAGE_NAME = /^(0|[1-9][0-9]*)\.png$/;
// A CJK glyph glued to a Latin letter is a generator artefact (docs/dataset.md 9.6, 9.7); a glyph
// standing alone (a legitimate quote such as 水) is not flagged.
const STRAY_CJK = /[A-Za-z][\u3400-\u9fff]|[\u3400-\u9fff][A-Za-z]/;

type ImageFact = FolderFacts['images'][number];
type Annotation = z.infer<typeof AnnotationFile>;
type WithImageScene = z.infer<typeof WithImageFile>['scenes'][number];
type RawKnowledgeItem = z.infer<typeof KnowledgeQaFile>['qa_items'][number];
type Loc = { file: string; record?: string; field?: string };

/** The folder being read: where it is, whose it is, and how strict to be. */
interface Folder {
  dir: string;
  folder: string;
  names: CharacterNames;
  /** The file prefix `<P>` (docs/dataset.md 1.1). */
  P: string;
  split: SplitName;
  isTrain: boolean;
  opts: ReadOptions;
  diag: Diagnostics;
}

/** The scenes of `<P>_with_image.json` and the image questions they carry. */
interface ImageDialogue {
  scenes: Scene[];
  vqa: VqaPair[];
  vqaMcq: ImageMcq[];
  cjk: number;
  intOptions: number;
}

/** The held-out and probe material of a folder, before it is placed by split. */
interface FolderTests {
  knowledgeMcq: Mcq[];
  memorization: string[];
  personality: string[];
  dialogue: Scene[];
}

function splitOf(dir: string): SplitName {
  const p = basename(dirname(dir));
  return p === 'train' || p === 'test' ? p : 'unknown';
}

/** Reads one character folder: each file kind in turn, then the GRPO folder beside the split. */
export function readCharacterFolder(dir: string, opts: ReadOptions, diag: Diagnostics): LoadedCharacter {
  const at = folderAt(dir, opts, diag);
  const images = readImages(dir, diag);
  const imageIds = new Set(images.map((i) => i.id));
  const ann = readAnnotation(at, imageIds);
  const dialogue = readImageDialogue(at, ann);
  const charImages = readT2iInstructions(at, images, imageIds);
  const profile = readFullProfile(at);
  const styleFile = trainFile(at, `${at.P}_personality_simplified_profile.txt`);
  const style = styleFile ? readTextFile(styleFile) : '';
  const knowledgeQa = readKnowledgeQa(at);
  const knowledgeMcq = readKnowledgeMcq(at);
  const memorization = readProbes(at, `${at.P}_memorization_test.json`, 'memorization');
  const personality = readProbes(at, `${at.P}_personality_test.json`, 'personality');
  const generated = readTrainExtension(at, dialogue.scenes);
  const extTest = trainFile(at, `${at.P}_dialogue_text_extension_test.json`);
  const testDialogue = extTest ? readExtension(extTest, diag) : [];
  const processed = readProcessed(dir, at.names, at.split, diag);
  const character = assembleCharacter(at, { ann, profile, style, charImages, dialogue, generated, knowledgeQa }, {
    knowledgeMcq, memorization, personality, dialogue: testDialogue,
  });
  const facts: FolderFacts = { split: at.split, dir, images, processed };
  attachGrpo(at, character, facts, charImages.length);
  return { character: CharacterSchema.parse(character), facts };
}

function folderAt(dir: string, opts: ReadOptions, diag: Diagnostics): Folder {
  const folder = basename(dir);
  const names = namesOfFolder(folder);
  const split = opts.split ?? splitOf(dir);
  return { dir, folder, names, P: names.prefix, split, isTrain: split === 'train', opts, diag };
}

function need(at: Folder, name: string): string {
  const file = join(at.dir, name);
  if (!existsSync(file)) throw new DataError({ file }, 'required file is missing');
  return file;
}

/** Train-only files are required in a train folder and optional elsewhere (docs/dataset.md 7). */
function trainFile(at: Folder, name: string): string | undefined {
  const file = join(at.dir, name);
  if (existsSync(file)) return file;
  if (at.isTrain) throw new DataError({ file }, 'required train file is missing');
  return undefined;
}

/** `<n>.png` numbered from 0 without gaps; JPEG bytes under the name are accepted (docs/dataset.md 3.11, 9.3). */
function readImages(dir: string, diag: Diagnostics): ImageFact[] {
  const out: ImageFact[] = [];
  for (const name of readdirSync(dir)) {
    if (name === '.DS_Store') diag.warn({ file: join(dir, name) }, 'macOS junk file ignored', 14);
    if (!name.endsWith('.png')) continue;
    if (!IMAGE_NAME.test(name)) throw new DataError({ file: join(dir, name) }, 'image names must be <n>.png');
    const file = join(dir, name);
    const head = readFileSync(file).subarray(0, 16);
    const fmt = sniffImageFormat(head);
    if (fmt === 'jpeg') diag.warn({ file }, 'JPEG data under a .png name; decoded by content', 3);
    else if (fmt !== 'png') throw new DataError({ file }, `not a PNG or JPEG image (${fmt})`);
    out.push({ id: name.slice(0, -4), format: fmt });
  }
  out.sort((a, b) => Number(a.id) - Number(b.id));
  out.forEach((img, i) => {
    if (img.id !== String(i)) throw new DataError({ file: join(dir, `${i}.png`) }, `image numbering has a gap: expected ${i}.png, next is ${img.id}.png`);
  });
  return out;
}

/** annotation.json: one scene per image, each image referenced exactly once (docs/dataset.md 3.3). */
function readAnnotation(at: Folder, imageIds: Set<string>): Annotation {
  const annFile = need(at, 'annotation.json');
  const ann = parseWith(AnnotationFile, readJsonFile(annFile), annFile);
  const seen = new Map<string, number>();
  ann.scenes.forEach((s, i) => {
    const img = s[1].image;
    const loc = { file: annFile, record: `scenes[${i}]`, field: '1.image' };
    if (img === undefined) throw new DataError(loc, 'annotated scene has no image');
    if (!imageIds.has(img)) throw new DataError(loc, `image "${img}" does not exist in ${at.dir}`);
    if (seen.has(img)) throw new DataError(loc, `image "${img}" already used by scenes[${seen.get(img)}]`);
    seen.set(img, i);
  });
  for (const id of imageIds) if (!seen.has(id)) throw new DataError({ file: annFile }, `image ${id}.png is not referenced by any scene`);
  return ann;
}

/** `<P>_with_image.json`: the same dialogue plus per-image rationale, caption and VQA (docs/dataset.md 3.4). */
function readImageDialogue(at: Folder, ann: Annotation): ImageDialogue {
  const wiFile = need(at, `${at.P}_with_image.json`);
  const wi = parseWith(WithImageFile, readJsonFile(wiFile), wiFile);
  if (wi.scenes.length !== ann.scenes.length) throw new DataError({ file: wiFile, field: 'scenes' }, `has ${wi.scenes.length} scenes, annotation.json has ${ann.scenes.length}`);
  if (wi.description !== ann.description || wi.opening !== ann.opening) at.diag.warn({ file: wiFile, field: 'description' }, 'description/opening differ from annotation.json');
  const out: ImageDialogue = { scenes: [], vqa: [], vqaMcq: [], cjk: 0, intOptions: 0 };
  wi.scenes.forEach((s, i) => readImageScene(at, s, ann.scenes[i]!, { file: wiFile, record: `scenes[${i}]` }, out));
  if (out.intOptions) at.diag.warn({ file: wiFile }, `${out.intOptions} MCQ item(s) with integer options, converted to strings`, 5);
  if (out.cjk) at.diag.warn({ file: wiFile }, `${out.cjk} VQA item(s) contain stray CJK tokens glued to English words`, 7);
  return out;
}

/** One image scene: its dialogue must match annotation.json; its QA pairs and MCQ are collected. */
function readImageScene(at: Folder, s: WithImageScene, a: RawScene, rec: { file: string; record: string }, out: ImageDialogue): void {
  if (s[0].text !== a[0].text || s[1].text !== a[1].text || s[1].image !== a[1].image) {
    throw new DataError({ ...rec, field: '1.text' }, 'dialogue differs from annotation.json');
  }
  const m = s[1];
  const id = m.image!;
  out.scenes.push(imageScene(s, rec));
  for (const q of m.qa_pairs ?? []) {
    if (STRAY_CJK.test(q.question + q.answer)) out.cjk++;
    out.vqa.push({ imageId: id, question: q.question, answer: q.answer, type: q.type });
  }
  (m.mcq_items ?? []).forEach((q, k) => {
    const mcq = toMcq(q, { ...rec, field: `1.mcq_items[${k}]` }, at.diag);
    if (mcq.intOptions) out.intOptions++;
    if (STRAY_CJK.test(Object.values(mcq.mcq.options).join(' ') + mcq.mcq.question)) out.cjk++;
    out.vqaMcq.push({ ...mcq.mcq, imageId: id });
  });
  if (at.isTrain && at.opts.generationTargets !== false) {
    const n = m.qa_pairs?.length ?? 0;
    if (n !== 20) at.diag.warn({ ...rec, field: '1.qa_pairs' }, `${n} QA pairs instead of 20`, 8);
    const k = m.mcq_items?.length ?? 0;
    if (k !== 5) at.diag.warn({ ...rec, field: '1.mcq_items' }, `${k} MCQ items instead of 5`, 8);
  }
}

/** An image scene needs both its rationale and its generation instruction (docs/dataset.md 3.4). */
function imageScene(s: WithImageScene, rec: { file: string; record: string }): Scene {
  const m = s[1];
  const id = m.image!;
  const scene: Scene = { id, user: s[0].text, reply: m.text, image: id };
  if (m.thinking_process !== undefined) scene.thinkingProcess = m.thinking_process;
  else throw new DataError({ ...rec, field: '1.thinking_process' }, 'missing');
  if (m.generation_instruction !== undefined) scene.generationInstruction = m.generation_instruction;
  else throw new DataError({ ...rec, field: '1.generation_instruction' }, 'missing');
  return scene;
}

/** `<P>_t2i_instruction.json`: one pure T2I caption per image (docs/dataset.md 3.5). */
function readT2iInstructions(at: Folder, images: ImageFact[], imageIds: Set<string>): CharacterImage[] {
  const tiFile = need(at, `${at.P}_t2i_instruction.json`);
  const ti = parseWith(T2iInstructionFile, readJsonFile(tiFile), tiFile);
  const t2iById = new Map<string, string>();
  ti.t2i_instructions.forEach((t, i) => {
    if (!imageIds.has(t.image_id)) throw new DataError({ file: tiFile, record: `t2i_instructions[${i}]`, field: 'image_id' }, `image "${t.image_id}" does not exist`);
    t2iById.set(t.image_id, t.t2i_instruction);
  });
  return images.map((img) => {
    const out: CharacterImage = { id: img.id, path: join(at.dir, `${img.id}.png`) };
    const t = t2iById.get(img.id);
    if (t !== undefined) out.t2iInstruction = t;
    else throw new DataError({ file: tiFile, field: 't2i_instructions' }, `no entry for image "${img.id}"`);
    return out;
  });
}

/** The full profile (docs/dataset.md 3.1). The test split lacks 3 of them (docs/dataset.md 9.4): the train copy is used. */
function readFullProfile(at: Folder): string {
  const profFile = join(at.dir, `${at.P}_full_profile.txt`);
  if (existsSync(profFile)) return readTextFile(profFile);
  if (at.isTrain) throw new DataError({ file: profFile }, 'required train file is missing');
  at.diag.warn({ file: profFile }, 'full profile missing; use the train copy (identical where both exist)', 4);
  return '';
}

/** Knowledge QA (docs/dataset.md 3.6), with its corrupted-key and list-evidence quirks (docs/dataset.md 9.5, 9.6). */
function readKnowledgeQa(at: Folder): KnowledgeQa[] {
  const kqFile = trainFile(at, `${at.P}_knowledge_qa.json`);
  if (!kqFile) return [];
  const kq = parseWith(KnowledgeQaFile, readJsonFile(kqFile), kqFile);
  const counts = { listEvidence: 0, strayCjk: 0 };
  const items = kq.qa_items.map((q, i) => knowledgeItem(at, q, { file: kqFile, record: `qa_items[${i}] (${q.id})` }, counts));
  if (counts.listEvidence) at.diag.warn({ file: kqFile, field: 'evidence' }, `${counts.listEvidence} item(s) have a list as evidence`, 5);
  if (counts.strayCjk) at.diag.warn({ file: kqFile }, `${counts.strayCjk} item(s) contain stray CJK tokens glued to English words`, 6);
  return items;
}

function knowledgeItem(at: Folder, q: RawKnowledgeItem, rec: { file: string; record: string }, counts: { listEvidence: number; strayCjk: number }): KnowledgeQa {
  const steps = reasoningSteps(at, q, rec);
  if (Array.isArray(q.evidence)) counts.listEvidence++;
  if (STRAY_CJK.test([q.question, q.answer, ...[q.evidence].flat(), ...steps].join(' '))) counts.strayCjk++;
  const item: KnowledgeQa = {
    id: q.id,
    question: q.question,
    answer: q.answer,
    evidence: Array.isArray(q.evidence) ? q.evidence : [q.evidence],
    type: q.type,
    difficulty: q.difficulty,
    reasoningSteps: steps,
  };
  if (q.confidence !== undefined) item.confidence = q.confidence;
  return item;
}

/** `reasoning_steps`, or a corrupted spelling of the key read in its place (docs/dataset.md 9.6). */
function reasoningSteps(at: Folder, q: RawKnowledgeItem, rec: { file: string; record: string }): string[] {
  let steps = q.reasoning_steps;
  for (const key of Object.keys(q)) {
    if (key !== 'reasoning_steps' && /^reason.*_steps$/.test(key)) {
      at.diag.warn({ ...rec, field: key }, 'corrupted key read as reasoning_steps', 6);
      const v = (q as Record<string, unknown>)[key];
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) steps = v as string[];
      else throw new DataError({ ...rec, field: key }, 'expected a list of strings');
    }
  }
  if (steps === undefined) throw new DataError({ ...rec, field: 'reasoning_steps' }, 'missing');
  return steps;
}

/** The knowledge MCQ test (docs/dataset.md 3.7). */
function readKnowledgeMcq(at: Folder): Mcq[] {
  const kmFile = trainFile(at, `${at.P}_knowledge_qa_test.json`);
  if (!kmFile) return [];
  const km = parseWith(KnowledgeQaTestFile, readJsonFile(kmFile), kmFile);
  return km.mcq_items.map((q, i) => toMcq(q, { file: kmFile, record: `mcq_items[${i}]` }, at.diag).mcq);
}

/** Memorization and personality probes (docs/dataset.md 3.8); quoted probes are unwrapped. */
function readProbes(at: Folder, name: string, kind: string): string[] {
  const file = trainFile(at, name);
  if (!file) return [];
  const p = parseWith(ProbeFile, readJsonFile(file), file);
  let quoted = 0;
  const qs = p.test_questions.map((q) => {
    const t = q.trim();
    if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) {
      quoted++;
      return t.slice(1, -1);
    }
    return q;
  });
  if (quoted) at.diag.warn({ file, field: 'test_questions' }, `${quoted} question(s) wrapped in literal quotes; stripped`);
  if (qs.length < 20 && at.opts.generationTargets !== false) at.diag.warn({ file, field: 'test_questions' }, `${qs.length} ${kind} questions instead of 20`, 8);
  return qs;
}

/** The train dialogue extension (docs/dataset.md 3.9): generated scenes, ending with the annotated ones, which are cut off. */
function readTrainExtension(at: Folder, scenes: Scene[]): Scene[] {
  const extTrain = trainFile(at, `${at.P}_dialogue_text_extension_train.json`);
  if (!extTrain) return [];
  const all = readExtension(extTrain, at.diag);
  const n = scenes.length;
  const tail = all.slice(all.length - n);
  const appended = n > 0 && all.length >= n && tail.every((s, i) => s.user === scenes[i]!.user && s.reply === scenes[i]!.reply);
  let dialogue: Scene[];
  if (appended) dialogue = all.slice(0, all.length - n);
  else {
    at.diag.warn({ file: extTrain }, 'the last scenes are not the annotated scenes; all kept as generated dialogue');
    dialogue = all;
  }
  if (at.isTrain && at.opts.generationTargets !== false && dialogue.length !== 180) at.diag.warn({ file: extTrain }, `${dialogue.length} generated scenes instead of 180`, 8);
  return dialogue;
}

/** Extension scenes are text-only: every image key there is dangling (docs/dataset.md 3.9, 9.1). */
function readExtension(file: string, diag: Diagnostics): Scene[] {
  const e = parseWith(AnnotationFile, readJsonFile(file), file);
  let dangling = 0;
  const out = e.scenes.map((s: RawScene, i): Scene => {
    if (s[1].image !== undefined) dangling++;
    return { id: String(i), user: s[0].text, reply: s[1].text };
  });
  if (dangling) diag.warn({ file }, `${dangling} image reference(s) dropped: extension scenes are text-only`, 1);
  return out;
}

function toMcq(q: RawMcq, loc: Loc, diag: Diagnostics): { mcq: Mcq; intOptions: boolean } {
  let intOptions = false;
  const opt = (v: string | number) => {
    if (typeof v === 'number') intOptions = true;
    return String(v);
  };
  const mcq: Mcq = {
    id: q.id,
    question: q.question,
    options: { A: opt(q.options.A), B: opt(q.options.B), C: opt(q.options.C), D: opt(q.options.D) },
    answerKey: q.answer_key,
  };
  if (q.difficulty !== undefined) mcq.difficulty = q.difficulty;
  if (q.evidence !== undefined) mcq.evidence = Array.isArray(q.evidence) ? q.evidence.join('\n') : q.evidence;
  if (q.rationale !== undefined) mcq.rationale = q.rationale;
  const known = new Set(['id', 'question', 'options', 'answer_key', 'difficulty', 'evidence', 'rationale']);
  for (const k of Object.keys(q)) if (!known.has(k)) diag.warn({ ...loc, field: loc.field === undefined ? k : `${loc.field}.${k}` }, 'unknown MCQ key ignored');
  return { mcq, intOptions };
}

/** What the file steps read, for assembleCharacter. */
interface FolderParts {
  ann: Annotation;
  profile: string;
  style: string;
  charImages: CharacterImage[];
  dialogue: ImageDialogue;
  /** The generated (extension) dialogue, without the annotated scenes. */
  generated: Scene[];
  knowledgeQa: KnowledgeQa[];
}

/** A test folder holds held-out material; a train folder the training material (docs/dataset.md 7). */
function assembleCharacter(at: Folder, parts: FolderParts, probes: FolderTests): Character {
  const heldOut = at.split === 'test';
  const { scenes, vqa, vqaMcq } = parts.dialogue;
  const tests = emptyTests();
  tests.knowledgeMcq = probes.knowledgeMcq;
  tests.memorization = probes.memorization;
  tests.personality = probes.personality;
  tests.dialogue = probes.dialogue;
  if (heldOut) {
    tests.heldOutImages = parts.charImages;
    tests.heldOutScenes = scenes;
  }
  return {
    id: at.folder,
    names: { ...at.names, display: at.P },
    category: at.opts.categories?.[at.folder] ?? categoryOf(at.folder),
    description: parts.ann.description,
    opening: parts.ann.opening,
    profile: parts.profile,
    style: parts.style,
    visualDescription: '',
    referenceImages: heldOut ? [] : parts.charImages,
    scenes: heldOut ? [] : scenes,
    dialogue: parts.generated,
    knowledgeQa: parts.knowledgeQa,
    vqa,
    vqaMcq,
    t2iPrompts: [],
    tests,
    extensions: {},
  };
}

/** The GRPO folder `<grpo root>/<G>/` beside the split, unless the folder is a test folder (docs/dataset.md 6, 10). */
function attachGrpo(at: Folder, character: Character, facts: FolderFacts, images: number): void {
  const grpoRoot = at.opts.grpoRoot === undefined ? join(dirname(dirname(at.dir)), 'grpo') : at.opts.grpoRoot;
  if (!grpoRoot || at.split === 'test') return;
  const gdir = join(grpoRoot, at.names.grpo);
  if (!existsSync(gdir)) return;
  const g = readGrpoFolder(gdir, character, at.diag);
  character.t2iPrompts = g.prompts;
  facts.grpo = { dir: gdir, pure: g.pure, withVqa: g.prompts.length, images };
}
