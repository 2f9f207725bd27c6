// Per-character counts in the shape of docs/dataset.md 2's table.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { LoadedCharacter } from './rolescape-types.js';

export interface CharacterStats {
  folder: string;
  prefix: string;
  grpo: string;
  category: string;
  trainImages: number;
  testImages: number | null;
  grpoImages: number | null;
  annotatedScenes: number;
  extensionScenes: number;
  extensionTest: number;
  knowledgeQa: number;
  knowledgeMcq: number;
  memorization: number;
  personality: number;
  vqa: number;
  vqaMcq: number;
  t2iTrain: number | null;
  t2iTest: number | null;
  grpoPure: number | null;
  grpoWithVqa: number | null;
  grpoQuestions: number | null;
  trainSizes: [number, number] | null;
  jpegInPng: number;
}

async function sideRange(dir: string, ids: string[]): Promise<[number, number] | null> {
  if (!ids.length) return null;
  let lo = Infinity, hi = 0;
  for (const id of ids) {
    const m = await sharp(readFileSync(join(dir, `${id}.png`))).metadata();
    lo = Math.min(lo, m.width ?? 0, m.height ?? 0);
    hi = Math.max(hi, m.width ?? 0, m.height ?? 0);
  }
  return [lo, hi];
}

export async function characterStats(train: LoadedCharacter, test?: LoadedCharacter): Promise<CharacterStats> {
  const c = train.character;
  const f = train.facts;
  return {
    folder: c.names.folder,
    prefix: c.names.prefix,
    grpo: c.names.grpo,
    category: c.category,
    trainImages: c.referenceImages.length,
    testImages: test ? test.character.tests.heldOutImages.length : null,
    grpoImages: f.grpo ? f.grpo.images : null,
    annotatedScenes: c.scenes.length,
    extensionScenes: c.dialogue.length,
    extensionTest: c.tests.dialogue.length,
    knowledgeQa: c.knowledgeQa.length,
    knowledgeMcq: c.tests.knowledgeMcq.length,
    memorization: c.tests.memorization.length,
    personality: c.tests.personality.length,
    vqa: c.vqa.length,
    vqaMcq: c.vqaMcq.length,
    t2iTrain: f.processed['t2i'] ?? null,
    t2iTest: test ? (test.facts.processed['t2i'] ?? null) : null,
    grpoPure: f.grpo ? f.grpo.pure : null,
    grpoWithVqa: f.grpo ? f.grpo.withVqa : null,
    grpoQuestions: f.grpo ? c.t2iPrompts.reduce((n, p) => n + p.checklist.length, 0) : null,
    trainSizes: await sideRange(f.dir, f.images.map((i) => i.id)),
    jpegInPng: f.images.filter((i) => i.format === 'jpeg').length,
  };
}

const COLUMNS: [string, (s: CharacterStats) => string][] = [
  ['folder', (s) => s.folder],
  ['prefix', (s) => s.prefix],
  ['grpo', (s) => s.grpo],
  ['category', (s) => s.category],
  ['train imgs', (s) => String(s.trainImages)],
  ['test imgs', (s) => (s.testImages === null ? '-' : String(s.testImages))],
  ['grpo imgs', (s) => (s.grpoImages === null ? '-' : String(s.grpoImages))],
  ['dialogue (annot + ext)', (s) => `${s.annotatedScenes + s.extensionScenes} (${s.annotatedScenes} + ${s.extensionScenes})`],
  ['ext test', (s) => String(s.extensionTest)],
  ['QA open / MCQ', (s) => `${s.knowledgeQa} / ${s.knowledgeMcq}`],
  ['memo / pers', (s) => `${s.memorization} / ${s.personality}`],
  ['VQA', (s) => String(s.vqa)],
  ['VQA MCQ', (s) => String(s.vqaMcq)],
  ['T2I train / test', (s) => `${s.t2iTrain ?? '-'} / ${s.t2iTest ?? '-'}`],
  ['GRPO pure / vqa', (s) => (s.grpoPure === null ? '-' : `${s.grpoPure} / ${s.grpoWithVqa}`)],
  ['GRPO questions', (s) => (s.grpoQuestions === null ? '-' : String(s.grpoQuestions))],
  ['train sizes', (s) => (s.trainSizes ? `${s.trainSizes[0]}–${s.trainSizes[1]}px${s.jpegInPng ? ` (${s.jpegInPng} JPEG-in-.png)` : ''}` : '-')],
];

/** A Markdown table like docs/dataset.md 2, with a totals row. */
export function formatStatsTable(rows: CharacterStats[]): string {
  const sum = (f: (s: CharacterStats) => number | null) => rows.reduce((n, r) => n + (f(r) ?? 0), 0);
  const lines = ['| ' + COLUMNS.map(([h]) => h).join(' | ') + ' |', '|' + COLUMNS.map(() => '---').join('|') + '|'];
  for (const r of rows) lines.push('| ' + COLUMNS.map(([, f]) => f(r)).join(' | ') + ' |');
  const cats = ['human', 'animal', 'anime', 'other'].map((k) => `${rows.filter((r) => r.category === k).length} ${k}`).join(' / ');
  const a = sum((r) => r.annotatedScenes), e = sum((r) => r.extensionScenes);
  lines.push(
    `| **total** (${rows.length}) | | | ${cats} | ${sum((r) => r.trainImages)} | ${sum((r) => r.testImages)} | ${sum((r) => r.grpoImages)} | ${a + e} (${a} + ${e}) | ${sum((r) => r.extensionTest)} | ${sum((r) => r.knowledgeQa)} / ${sum((r) => r.knowledgeMcq)} | ${sum((r) => r.memorization)} / ${sum((r) => r.personality)} | ${sum((r) => r.vqa)} | ${sum((r) => r.vqaMcq)} | ${sum((r) => r.t2iTrain)} / ${sum((r) => r.t2iTest)} | ${sum((r) => r.grpoPure)} / ${sum((r) => r.grpoWithVqa)} | ${sum((r) => r.grpoQuestions)} | |`,
  );
  return lines.join('\n');
}
