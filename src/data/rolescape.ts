// RoleScape-20 reader for any split folder (docs/dataset.md 2–7, 10). Reads every file kind of a
// character folder into a Character, accepts the known quirks of docs/dataset.md 9 with a warning,
// and throws a DataError naming the file, the record and the field for anything else.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  CharacterSchema,
  emptyTests,
  type Category,
  type Character,
  type CharacterImage,
  type ChecklistQuestion,
  type ImageMcq,
  type KnowledgeQa,
  type Mcq,
  type Scene,
  type T2iPrompt,
  type VqaPair,
} from './character.js';
import { DataError, Diagnostics, type DataWarning } from './diagnostics.js';
import { sniffImageFormat } from './image.js';
import { parseWith, readJsonFile, readJsonlFile, readTextFile } from './json-file.js';
import { characterFieldMatches, namesOfFolder } from './names.js';
import {
  AnnotationFile,
  GrpoPureLine,
  GrpoVqaLine,
  KnowledgeQaFile,
  KnowledgeQaTestFile,
  ProbeFile,
  T2iInstructionFile,
  T2iLine,
  T2I_VARIANTS,
  VlmLine,
  VLM_FILES,
  WithImageFile,
  type RawMcq,
  type RawScene,
} from './rolescape-files.js';
import { categoryOf } from './rolescape-categories.js';

export type SplitName = 'train' | 'test' | 'unknown';

/** What the reader saw beside the Character: file line counts and image facts, for stats. */
export interface FolderFacts {
  split: SplitName;
  dir: string;
  images: { id: string; format: 'png' | 'jpeg' }[];
  /** Lines per processed file kind (`t2i`, `vqa`, …); absent kinds are missing. */
  processed: Record<string, number>;
  /** GRPO files: lines of `<G>_pure_t2i.jsonl` / `<G>_pure_t2i_with_vqa.jsonl`, and whether the
   * GRPO folder was found. Its images are the train images (docs/dataset.md 6, 10). */
  grpo?: { dir: string; pure: number; withVqa: number; images: number };
}

export interface LoadedCharacter {
  character: Character;
  facts: FolderFacts;
}

export interface SplitResult {
  characters: LoadedCharacter[];
  warnings: DataWarning[];
}

export interface ReadOptions {
  /** Split of the folder; default: the parent folder's name when it is `train` or `test`. */
  split?: SplitName;
  /** GRPO root holding `<G>/` folders; default `<split dir>/../grpo` when it exists. `null`: none. */
  grpoRoot?: string | null;
  /** Category per folder, for characters not in the docs/dataset.md 2 table. */
  categories?: Record<string, Category>;
  /** Warn when counts fall short of the RoleScape-20 generation prompts (20 QA pairs and 5 MCQ
   * per image, 20 probes, 180 extension scenes; docs/dataset.md 9.8). Default true; off for
   * characters that were not generated with those prompts. */
  generationTargets?: boolean;
}

const IMAGE_NAME = /^(0|[1-9][0-9]*)\.png$/;
// A CJK glyph glued to a Latin letter is a generator artefact (docs/dataset.md 9.6, 9.7); a glyph
// standing alone (a legitimate quote such as 水) is not flagged.
const STRAY_CJK = /[A-Za-z][\u3400-\u9fff]|[\u3400-\u9fff][A-Za-z]/;

function splitOf(dir: string): SplitName {
  const p = basename(dirname(dir));
  return p === 'train' || p === 'test' ? p : 'unknown';
}

/** Reads every character folder of a split folder (e.g. `rolescape20/train`). */
export function readRoleScapeSplit(splitDir: string, opts: ReadOptions = {}): SplitResult {
  if (!existsSync(splitDir) || !statSync(splitDir).isDirectory()) throw new DataError({ file: splitDir }, 'is not a folder');
  const diag = new Diagnostics();
  const characters: LoadedCharacter[] = [];
  for (const name of readdirSync(splitDir).sort()) {
    const p = join(splitDir, name);
    if (name === '.DS_Store') {
      diag.warn({ file: p }, 'macOS junk file ignored', 14);
      continue;
    }
    if (!statSync(p).isDirectory()) {
      diag.warn({ file: p }, 'not a character folder; ignored');
      continue;
    }
    characters.push(readCharacterFolder(p, opts, diag));
  }
  if (characters.length) checkTestLeakage(characters, diag);
  return { characters, warnings: diag.warnings };
}

/** Reads one character folder of any split. */
export function readRoleScapeCharacter(dir: string, opts: ReadOptions = {}): { loaded: LoadedCharacter; warnings: DataWarning[] } {
  const diag = new Diagnostics();
  const loaded = readCharacterFolder(dir, opts, diag);
  checkTestLeakage([loaded], diag);
  return { loaded, warnings: diag.warnings };
}

function readCharacterFolder(dir: string, opts: ReadOptions, diag: Diagnostics): LoadedCharacter {
  const folder = basename(dir);
  const names = namesOfFolder(folder);
  const P = names.prefix;
  const split = opts.split ?? splitOf(dir);
  const f = (name: string) => join(dir, name);
  const need = (name: string) => {
    if (!existsSync(f(name))) throw new DataError({ file: f(name) }, 'required file is missing');
    return f(name);
  };
  const isTrain = split === 'train';
  // Train-only files are required in a train folder and optional elsewhere (docs/dataset.md 7).
  const trainFile = (name: string): string | undefined => {
    if (existsSync(f(name))) return f(name);
    if (isTrain) throw new DataError({ file: f(name) }, 'required train file is missing');
    return undefined;
  };

  const images = readImages(dir, diag);
  const imageIds = new Set(images.map((i) => i.id));

  // annotation.json: one scene per image, each image referenced exactly once (docs/dataset.md 3.3).
  const annFile = need('annotation.json');
  const ann = parseWith(AnnotationFile, readJsonFile(annFile), annFile);
  const seen = new Map<string, number>();
  ann.scenes.forEach((s, i) => {
    const img = s[1].image;
    if (img === undefined) throw new DataError({ file: annFile, record: `scenes[${i}]`, field: '1.image' }, 'annotated scene has no image');
    if (!imageIds.has(img)) throw new DataError({ file: annFile, record: `scenes[${i}]`, field: '1.image' }, `image "${img}" does not exist in ${dir}`);
    if (seen.has(img)) throw new DataError({ file: annFile, record: `scenes[${i}]`, field: '1.image' }, `image "${img}" already used by scenes[${seen.get(img)}]`);
    seen.set(img, i);
  });
  for (const id of imageIds) if (!seen.has(id)) throw new DataError({ file: annFile }, `image ${id}.png is not referenced by any scene`);

  // <P>_with_image.json: the same dialogue plus per-image rationale, caption and VQA (§3.4).
  const wiFile = need(`${P}_with_image.json`);
  const wi = parseWith(WithImageFile, readJsonFile(wiFile), wiFile);
  if (wi.scenes.length !== ann.scenes.length) throw new DataError({ file: wiFile, field: 'scenes' }, `has ${wi.scenes.length} scenes, annotation.json has ${ann.scenes.length}`);
  if (wi.description !== ann.description || wi.opening !== ann.opening) diag.warn({ file: wiFile, field: 'description' }, 'description/opening differ from annotation.json');
  const scenes: Scene[] = [];
  const vqa: VqaPair[] = [];
  const vqaMcq: ImageMcq[] = [];
  let cjk = 0;
  let intOptions = 0;
  wi.scenes.forEach((s, i) => {
    const a = ann.scenes[i]!;
    const rec = { file: wiFile, record: `scenes[${i}]` };
    if (s[0].text !== a[0].text || s[1].text !== a[1].text || s[1].image !== a[1].image) {
      throw new DataError({ ...rec, field: '1.text' }, 'dialogue differs from annotation.json');
    }
    const m = s[1];
    const id = m.image!;
    const scene: Scene = { id, user: s[0].text, reply: m.text, image: id };
    if (m.thinking_process !== undefined) scene.thinkingProcess = m.thinking_process;
    else throw new DataError({ ...rec, field: '1.thinking_process' }, 'missing');
    if (m.generation_instruction !== undefined) scene.generationInstruction = m.generation_instruction;
    else throw new DataError({ ...rec, field: '1.generation_instruction' }, 'missing');
    scenes.push(scene);
    for (const q of m.qa_pairs ?? []) {
      if (STRAY_CJK.test(q.question + q.answer)) cjk++;
      vqa.push({ imageId: id, question: q.question, answer: q.answer, type: q.type });
    }
    (m.mcq_items ?? []).forEach((q, k) => {
      const mcq = toMcq(q, { ...rec, field: `1.mcq_items[${k}]` }, diag);
      if (mcq.intOptions) intOptions++;
      if (STRAY_CJK.test(Object.values(mcq.mcq.options).join(' ') + mcq.mcq.question)) cjk++;
      vqaMcq.push({ ...mcq.mcq, imageId: id });
    });
    if (isTrain && opts.generationTargets !== false) {
      const n = m.qa_pairs?.length ?? 0;
      if (n !== 20) diag.warn({ ...rec, field: '1.qa_pairs' }, `${n} QA pairs instead of 20`, 8);
      const k = m.mcq_items?.length ?? 0;
      if (k !== 5) diag.warn({ ...rec, field: '1.mcq_items' }, `${k} MCQ items instead of 5`, 8);
    }
  });
  if (intOptions) diag.warn({ file: wiFile }, `${intOptions} MCQ item(s) with integer options, converted to strings`, 5);
  if (cjk) diag.warn({ file: wiFile }, `${cjk} VQA item(s) contain stray CJK tokens glued to English words`, 7);

  // <P>_t2i_instruction.json: one pure T2I caption per image (§3.5).
  const tiFile = need(`${P}_t2i_instruction.json`);
  const ti = parseWith(T2iInstructionFile, readJsonFile(tiFile), tiFile);
  const t2iById = new Map<string, string>();
  ti.t2i_instructions.forEach((t, i) => {
    if (!imageIds.has(t.image_id)) throw new DataError({ file: tiFile, record: `t2i_instructions[${i}]`, field: 'image_id' }, `image "${t.image_id}" does not exist`);
    t2iById.set(t.image_id, t.t2i_instruction);
  });
  const charImages: CharacterImage[] = images.map((img) => {
    const out: CharacterImage = { id: img.id, path: join(dir, `${img.id}.png`) };
    const t = t2iById.get(img.id);
    if (t !== undefined) out.t2iInstruction = t;
    else throw new DataError({ file: tiFile, field: 't2i_instructions' }, `no entry for image "${img.id}"`);
    return out;
  });

  // Profiles (§3.1, §3.2). The test split lacks 3 full profiles (§9.4): the train copy is used.
  let profile = '';
  const profFile = f(`${P}_full_profile.txt`);
  if (existsSync(profFile)) profile = readTextFile(profFile);
  else if (isTrain) throw new DataError({ file: profFile }, 'required train file is missing');
  else diag.warn({ file: profFile }, 'full profile missing; use the train copy (identical where both exist)', 4);
  const styleFile = trainFile(`${P}_personality_simplified_profile.txt`);
  const style = styleFile ? readTextFile(styleFile) : '';

  // Knowledge QA (§3.6) and its MCQ test (§3.7).
  const knowledgeQa: KnowledgeQa[] = [];
  const kqFile = trainFile(`${P}_knowledge_qa.json`);
  if (kqFile) {
    const kq = parseWith(KnowledgeQaFile, readJsonFile(kqFile), kqFile);
    let listEvidence = 0;
    let strayCjk = 0;
    kq.qa_items.forEach((q, i) => {
      const rec = { file: kqFile, record: `qa_items[${i}] (${q.id})` };
      let steps = q.reasoning_steps;
      for (const key of Object.keys(q)) {
        if (key !== 'reasoning_steps' && /^reason.*_steps$/.test(key)) {
          diag.warn({ ...rec, field: key }, 'corrupted key read as reasoning_steps', 6);
          const v = (q as Record<string, unknown>)[key];
          if (Array.isArray(v) && v.every((x) => typeof x === 'string')) steps = v as string[];
          else throw new DataError({ ...rec, field: key }, 'expected a list of strings');
        }
      }
      if (steps === undefined) throw new DataError({ ...rec, field: 'reasoning_steps' }, 'missing');
      if (Array.isArray(q.evidence)) listEvidence++;
      if (STRAY_CJK.test([q.question, q.answer, ...[q.evidence].flat(), ...steps].join(' '))) strayCjk++;
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
      knowledgeQa.push(item);
    });
    if (listEvidence) diag.warn({ file: kqFile, field: 'evidence' }, `${listEvidence} item(s) have a list as evidence`, 5);
    if (strayCjk) diag.warn({ file: kqFile }, `${strayCjk} item(s) contain stray CJK tokens glued to English words`, 6);
  }
  const knowledgeMcq: Mcq[] = [];
  const kmFile = trainFile(`${P}_knowledge_qa_test.json`);
  if (kmFile) {
    const km = parseWith(KnowledgeQaTestFile, readJsonFile(kmFile), kmFile);
    km.mcq_items.forEach((q, i) => knowledgeMcq.push(toMcq(q, { file: kmFile, record: `mcq_items[${i}]` }, diag).mcq));
  }

  // Memorization and personality probes (§3.8); quoted personality probes are unwrapped.
  const probes = (name: string, kind: string): string[] => {
    const file = trainFile(name);
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
    if (quoted) diag.warn({ file, field: 'test_questions' }, `${quoted} question(s) wrapped in literal quotes; stripped`);
    if (qs.length < 20 && opts.generationTargets !== false) diag.warn({ file, field: 'test_questions' }, `${qs.length} ${kind} questions instead of 20`, 8);
    return qs;
  };
  const memorization = probes(`${P}_memorization_test.json`, 'memorization');
  const personality = probes(`${P}_personality_test.json`, 'personality');

  // Dialogue extensions (§3.9): text-only; the train file ends with the annotated scenes.
  let dialogue: Scene[] = [];
  const extTrain = trainFile(`${P}_dialogue_text_extension_train.json`);
  if (extTrain) {
    const all = readExtension(extTrain, diag);
    const n = scenes.length;
    const tail = all.slice(all.length - n);
    const appended = n > 0 && all.length >= n && tail.every((s, i) => s.user === scenes[i]!.user && s.reply === scenes[i]!.reply);
    if (appended) dialogue = all.slice(0, all.length - n);
    else {
      diag.warn({ file: extTrain }, 'the last scenes are not the annotated scenes; all kept as generated dialogue');
      dialogue = all;
    }
    if (isTrain && opts.generationTargets !== false && dialogue.length !== 180) diag.warn({ file: extTrain }, `${dialogue.length} generated scenes instead of 180`, 8);
  }
  const extTest = trainFile(`${P}_dialogue_text_extension_test.json`);
  const testDialogue = extTest ? readExtension(extTest, diag) : [];

  const processed = readProcessed(dir, names, split, diag);

  // A test folder holds held-out material; a train folder the training material (§7).
  const heldOut = split === 'test';
  const tests = emptyTests();
  tests.knowledgeMcq = knowledgeMcq;
  tests.memorization = memorization;
  tests.personality = personality;
  tests.dialogue = testDialogue;
  if (heldOut) {
    tests.heldOutImages = charImages;
    tests.heldOutScenes = scenes;
  }

  const character: Character = {
    id: folder,
    names: { ...names, display: P },
    category: opts.categories?.[folder] ?? categoryOf(folder),
    description: ann.description,
    opening: ann.opening,
    profile,
    style,
    visualDescription: '',
    referenceImages: heldOut ? [] : charImages,
    scenes: heldOut ? [] : scenes,
    dialogue,
    knowledgeQa,
    vqa,
    vqaMcq,
    t2iPrompts: [],
    tests,
    extensions: {},
  };
  const facts: FolderFacts = { split, dir, images, processed };

  const grpoRoot = opts.grpoRoot === undefined ? join(dirname(dirname(dir)), 'grpo') : opts.grpoRoot;
  if (grpoRoot && split !== 'test') {
    const gdir = join(grpoRoot, names.grpo);
    if (existsSync(gdir)) {
      const g = readGrpoFolder(gdir, character, diag);
      character.t2iPrompts = g.prompts;
      facts.grpo = { dir: gdir, pure: g.pure, withVqa: g.prompts.length, images: charImages.length };
    }
  }
  return { character: CharacterSchema.parse(character), facts };
}

function readImages(dir: string, diag: Diagnostics): { id: string; format: 'png' | 'jpeg' }[] {
  const out: { id: string; format: 'png' | 'jpeg' }[] = [];
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

function toMcq(q: RawMcq, loc: { file: string; record?: string; field?: string }, diag: Diagnostics): { mcq: Mcq; intOptions: boolean } {
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

/** Extension scenes are text-only: every image key there is dangling (§3.9, §9.1). */
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

/** processed/t2i and processed/vlm: parse, check image paths, count lines (§4, §5). */
function readProcessed(dir: string, names: { prefix: string; folder: string; grpo: string; display: string }, split: SplitName, diag: Diagnostics): Record<string, number> {
  const counts: Record<string, number> = {};
  const P = names.prefix;
  const splitRoot = dirname(dir);
  const dataRoot = dirname(splitRoot);
  // `personalized_data/<split>/<Folder>/<n>.png` → this copy (docs/dataset.md 10); Bo_t2i_full
  // prefixes `data/` (§9.10).
  const resolve = (p: string, loc: { file: string; record: string }): void => {
    let rel = p;
    if (rel.startsWith('data/personalized_data/')) {
      rel = rel.slice('data/'.length);
    }
    if (!rel.startsWith('personalized_data/')) throw new DataError({ ...loc, field: 'image' }, `image path does not start with personalized_data/: ${p}`);
    const abs = join(dataRoot, rel.slice('personalized_data/'.length));
    if (!existsSync(abs)) throw new DataError({ ...loc, field: 'image' }, `image ${p} does not exist (looked for ${abs})`);
  };
  const t2iDir = join(dir, 'processed', 't2i');
  if (existsSync(t2iDir)) {
    for (const name of readdirSync(t2iDir).sort()) {
      const file = join(t2iDir, name);
      if (name.endsWith('_parquet')) {
        diag.warn({ file }, 'parquet chunks duplicate the JSONL and images; ignored', 15);
        continue;
      }
      if (name === '.DS_Store') continue;
      const kind = name.startsWith(`${P}_`) && name.endsWith('.jsonl') ? name.slice(P.length + 1, -'.jsonl'.length) : undefined;
      if (kind === undefined) {
        diag.warn({ file }, 'unknown file ignored');
        continue;
      }
      const lines = readJsonlFile(file, diag);
      let dataPrefix = 0;
      for (const l of lines) {
        const rec = { file, record: `line ${l.line}` };
        const v = parseWith(T2iLine, l.value, file, rec.record);
        if (v.image.startsWith('data/')) dataPrefix++;
        resolve(v.image, rec);
        if (!characterFieldMatches(v.character, names)) throw new DataError({ ...rec, field: 'character' }, `"${v.character}" is not ${P}`);
        // scene_id is an int in most variants and a string in _pure_t2i (§4, §9.5): both accepted.
      }
      if (dataPrefix) diag.warn({ file, field: 'image' }, `${dataPrefix} path(s) start with data/personalized_data/`, 10);
      if (kind === 't2i_full') diag.warn({ file }, 'older mixed file (t2i + an older thinking variant, repeated 10×); not used', 9);
      counts[kind] = lines.length;
    }
    for (const v of T2I_VARIANTS) if (counts[v] === undefined) diag.warn({ file: join(t2iDir, `${P}_${v}.jsonl`) }, 'processed T2I variant missing');
  }
  const vlmDir = join(dir, 'processed', 'vlm');
  if (existsSync(vlmDir)) {
    for (const name of readdirSync(vlmDir).sort()) {
      const file = join(vlmDir, name);
      if (!name.endsWith('.jsonl')) {
        diag.warn({ file }, 'unknown file ignored');
        continue;
      }
      const stem = name.slice(0, -'.jsonl'.length);
      // The two "full" files are named after the folder, not the prefix (§1, §9.11).
      if (stem === `${names.folder}_full` || stem === `${names.folder}_full_new` || stem === `${P}_full` || stem === `${P}_full_new`) {
        const lines = readJsonlFile(file, diag);
        for (const l of lines) parseWith(VlmLine, l.value, file, `line ${l.line}`);
        diag.warn({ file }, 'older generation that disagrees with the per-task files; not used', 9);
        counts[stem.endsWith('_new') ? 'full_new' : 'full'] = lines.length;
        continue;
      }
      const kind = stem.startsWith(`${P}_`) ? stem.slice(P.length + 1) : undefined;
      if (kind === undefined || !(VLM_FILES as readonly string[]).includes(kind)) {
        diag.warn({ file }, 'unknown file ignored');
        continue;
      }
      const lines = readJsonlFile(file, diag);
      for (const l of lines) {
        const rec = `line ${l.line}`;
        const v = parseWith(VlmLine, l.value, file, rec);
        const placeholders = v.conversations[0].value.split('<image>').length - 1;
        if (placeholders !== (v.image === undefined ? 0 : 1)) {
          throw new DataError({ file, record: rec, field: 'conversations.0.value' }, `${placeholders} <image> placeholder(s) with ${v.image === undefined ? 'no' : 'one'} image`);
        }
        if (v.image !== undefined) resolve(v.image, { file, record: rec });
      }
      counts[kind] = lines.length;
    }
  }
  if (split === 'train' && !existsSync(vlmDir)) diag.warn({ file: vlmDir }, 'processed VLM files missing');
  return counts;
}

/** GRPO folder: prompts with VQA checklists; images resolved to the train images (§6, §10). */
function readGrpoFolder(gdir: string, character: Character, diag: Diagnostics): { prompts: T2iPrompt[]; pure: number } {
  const G = character.names.grpo;
  const prof = join(gdir, `${G}_full_profile.txt`);
  if (existsSync(prof) && readTextFile(prof) !== character.profile) diag.warn({ file: prof }, 'differs from the train full profile; the train copy is used');
  const pureFile = join(gdir, `${G}_pure_t2i.jsonl`);
  const vqaFile = join(gdir, `${G}_pure_t2i_with_vqa.jsonl`);
  if (!existsSync(vqaFile)) throw new DataError({ file: vqaFile }, 'required GRPO file is missing');
  const pure = existsSync(pureFile) ? readJsonlFile(pureFile, diag).map((l) => ({ line: l.line, v: parseWith(GrpoPureLine, l.value, pureFile, `line ${l.line}`) })) : [];
  const withVqa = readJsonlFile(vqaFile, diag).map((l) => ({ line: l.line, v: parseWith(GrpoVqaLine, l.value, vqaFile, `line ${l.line}`) }));
  if (pure.length && pure.length !== withVqa.length) throw new DataError({ file: vqaFile }, `${withVqa.length} prompts, ${pureFile} has ${pure.length}`);
  const texts = new Set<string>();
  let dupPrompts = 0;
  let dupQuestions = 0;
  let mcOutside = 0;
  let nonBinary = 0;
  let underscoreName = false;
  const prompts = withVqa.map(({ line, v }, i) => {
    const rec = { file: vqaFile, record: `line ${line}` };
    const p = pure[i];
    if (p && (p.v.text !== v.text || String(p.v.scene_id) !== String(v.scene_id))) {
      throw new DataError({ ...rec, field: 'text' }, `differs from ${pureFile} line ${p.line}`);
    }
    const match = characterFieldMatches(v.character, character.names);
    if (!match) throw new DataError({ ...rec, field: 'character' }, `"${v.character}" is neither ${character.names.prefix} nor ${G}`);
    if (match === 'grpo' && G !== character.names.prefix) underscoreName = true;
    if (!v.reference_images_path.endsWith(`/${G}`)) throw new DataError({ ...rec, field: 'reference_images_path' }, `does not name the GRPO folder ${G}`);
    if (texts.has(v.text)) dupPrompts++;
    texts.add(v.text);
    const qs = new Set<string>();
    const checklist: ChecklistQuestion[] = v.vqa_questions.map((q) => {
      if (qs.has(q.question)) dupQuestions++;
      qs.add(q.question);
      if (q.type === 'multiple_choice' && q.choices && !q.choices.includes(q.answer)) mcOutside++;
      if (q.type === 'yes_no' && q.answer !== 'yes' && q.answer !== 'no') nonBinary++;
      const c: ChecklistQuestion = { question: q.question, type: q.type, category: q.category, answer: q.answer, weight: q.weight, isNegative: q.is_negative };
      if (q.choices !== undefined) c.choices = q.choices;
      return c;
    });
    return { id: String(v.scene_id), text: v.text, checklist };
  });
  if (underscoreName) diag.warn({ file: vqaFile, field: 'character' }, `uses the GRPO form "${G}" instead of "${character.names.prefix}"`, 11);
  if (dupPrompts) diag.warn({ file: vqaFile }, `${dupPrompts} duplicated prompt text(s)`, 12);
  if (dupQuestions) diag.warn({ file: vqaFile }, `${dupQuestions} checklist question(s) repeated inside their prompt; dedupe before scoring`, 12);
  if (mcOutside) diag.warn({ file: vqaFile }, `${mcOutside} multiple-choice answer(s) not among their choices`, 12);
  if (nonBinary) diag.warn({ file: vqaFile }, `${nonBinary} yes/no answer(s) other than "yes"/"no"`, 12);
  return { prompts, pure: pure.length };
}

/** Test user prompts that reappear as train prompts (§3.9, §9.2): reported, not removed. */
function checkTestLeakage(chars: LoadedCharacter[], diag: Diagnostics): void {
  for (const { character, facts } of chars) {
    const train = new Set(character.dialogue.map((s) => s.user));
    const n = character.tests.dialogue.filter((s) => train.has(s.user)).length;
    if (n) diag.warn({ file: join(facts.dir, `${character.names.prefix}_dialogue_text_extension_test.json`) }, `${n} test user prompt(s) also occur as train prompts`, 2);
  }
}

/** Merges a test-split read into the train-split read of the same character. */
export function mergeSplits(train: Character, test: Character): Character {
  return {
    ...train,
    profile: train.profile || test.profile,
    tests: { ...train.tests, heldOutImages: test.tests.heldOutImages, heldOutScenes: test.tests.heldOutScenes },
  };
}
