// The GRPO folder of a RoleScape-20 character (docs/dataset.md 6, 10): prompts with their VQA
// checklists, checked against the pure prompt file; its images are the train images.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import type { Character, ChecklistQuestion, T2iPrompt } from './character.js';
import { DataError, type Diagnostics } from './diagnostics.js';
import { parseWith, readJsonlFile, readTextFile } from './json-file.js';
import { characterFieldMatches } from './names.js';
import { GrpoPureLine, GrpoVqaLine, type RawChecklistQuestion } from './rolescape-files.js';

type Numbered<T> = { line: number; v: T };
type PureLine = Numbered<z.infer<typeof GrpoPureLine>>;
type VqaLine = Numbered<z.infer<typeof GrpoVqaLine>>;

/** Quirks counted over the prompts, reported once per file (docs/dataset.md 9.11, 9.12). */
interface GrpoQuirks {
  texts: Set<string>;
  dupPrompts: number;
  dupQuestions: number;
  mcOutside: number;
  nonBinary: number;
  underscoreName: boolean;
}

/** GRPO folder: prompts with VQA checklists; images resolved to the train images (docs/dataset.md 6, 10). */
export function readGrpoFolder(gdir: string, character: Character, diag: Diagnostics): { prompts: T2iPrompt[]; pure: number } {
  const G = character.names.grpo;
  const prof = join(gdir, `${G}_full_profile.txt`);
  if (existsSync(prof) && readTextFile(prof) !== character.profile) diag.warn({ file: prof }, 'differs from the train full profile; the train copy is used');
  const pureFile = join(gdir, `${G}_pure_t2i.jsonl`);
  const vqaFile = join(gdir, `${G}_pure_t2i_with_vqa.jsonl`);
  const { pure, withVqa } = readGrpoLines(pureFile, vqaFile, diag);
  const quirks: GrpoQuirks = { texts: new Set(), dupPrompts: 0, dupQuestions: 0, mcOutside: 0, nonBinary: 0, underscoreName: false };
  const prompts = withVqa.map((l, i) => grpoPrompt(l, pure[i], { vqaFile, pureFile }, character, quirks));
  warnGrpoQuirks(vqaFile, character, quirks, diag);
  return { prompts, pure: pure.length };
}

/** Both prompt files, numbered; the pure file is optional but, when present, matches line for line. */
function readGrpoLines(pureFile: string, vqaFile: string, diag: Diagnostics): { pure: PureLine[]; withVqa: VqaLine[] } {
  if (!existsSync(vqaFile)) throw new DataError({ file: vqaFile }, 'required GRPO file is missing');
  const pure = existsSync(pureFile) ? readJsonlFile(pureFile, diag).map((l) => ({ line: l.line, v: parseWith(GrpoPureLine, l.value, pureFile, `line ${l.line}`) })) : [];
  const withVqa = readJsonlFile(vqaFile, diag).map((l) => ({ line: l.line, v: parseWith(GrpoVqaLine, l.value, vqaFile, `line ${l.line}`) }));
  if (pure.length && pure.length !== withVqa.length) throw new DataError({ file: vqaFile }, `${withVqa.length} prompts, ${pureFile} has ${pure.length}`);
  return { pure, withVqa };
}

function grpoPrompt({ line, v }: VqaLine, p: PureLine | undefined, files: { vqaFile: string; pureFile: string }, character: Character, quirks: GrpoQuirks): T2iPrompt {
  const G = character.names.grpo;
  const rec = { file: files.vqaFile, record: `line ${line}` };
  if (p && (p.v.text !== v.text || String(p.v.scene_id) !== String(v.scene_id))) {
    throw new DataError({ ...rec, field: 'text' }, `differs from ${files.pureFile} line ${p.line}`);
  }
  const match = characterFieldMatches(v.character, character.names);
  if (!match) throw new DataError({ ...rec, field: 'character' }, `"${v.character}" is neither ${character.names.prefix} nor ${G}`);
  if (match === 'grpo' && G !== character.names.prefix) quirks.underscoreName = true;
  if (!v.reference_images_path.endsWith(`/${G}`)) throw new DataError({ ...rec, field: 'reference_images_path' }, `does not name the GRPO folder ${G}`);
  if (quirks.texts.has(v.text)) quirks.dupPrompts++;
  quirks.texts.add(v.text);
  const qs = new Set<string>();
  const checklist = v.vqa_questions.map((q) => {
    if (qs.has(q.question)) quirks.dupQuestions++;
    qs.add(q.question);
    return checklistQuestion(q, quirks);
  });
  return { id: String(v.scene_id), text: v.text, checklist };
}

function checklistQuestion(q: RawChecklistQuestion, quirks: GrpoQuirks): ChecklistQuestion {
  if (q.type === 'multiple_choice' && q.choices && !q.choices.includes(q.answer)) quirks.mcOutside++;
  if (q.type === 'yes_no' && q.answer !== 'yes' && q.answer !== 'no') quirks.nonBinary++;
  const c: ChecklistQuestion = { question: q.question, type: q.type, category: q.category, answer: q.answer, weight: q.weight, isNegative: q.is_negative };
  if (q.choices !== undefined) c.choices = q.choices;
  return c;
}

function warnGrpoQuirks(vqaFile: string, character: Character, quirks: GrpoQuirks, diag: Diagnostics): void {
  const G = character.names.grpo;
  if (quirks.underscoreName) diag.warn({ file: vqaFile, field: 'character' }, `uses the GRPO form "${G}" instead of "${character.names.prefix}"`, 11);
  if (quirks.dupPrompts) diag.warn({ file: vqaFile }, `${quirks.dupPrompts} duplicated prompt text(s)`, 12);
  if (quirks.dupQuestions) diag.warn({ file: vqaFile }, `${quirks.dupQuestions} checklist question(s) repeated inside their prompt; dedupe before scoring`, 12);
  if (quirks.mcOutside) diag.warn({ file: vqaFile }, `${quirks.mcOutside} multiple-choice answer(s) not among their choices`, 12);
  if (quirks.nonBinary) diag.warn({ file: vqaFile }, `${quirks.nonBinary} yes/no answer(s) other than "yes"/"no"`, 12);
}
