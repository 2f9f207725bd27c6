// The copy baseline (docs/architecture.md "Evaluation"): for each T2I prompt and each held-out
// scene, the training image whose own caption is nearest to it, scored like a model's images:
// what copying the training set scores on the image metrics.
import { imageBytes, type Character, type CharacterImage } from '../../data/index.js';
import { rougeL } from '../text-metrics.js';
import type { ReportColumn, TaskName } from '../report-types.js';
import type { EvalContext, ImageOut } from './context.js';
import { limit, saveImage } from './context.js';
import { multimodalScore } from './multimodal.js';
import { t2iPrompts, t2iScore } from './t2i.js';
import { notMeasured, type TaskTable } from './table.js';

export const COPY_LABEL = 'copy: nearest training image';

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

async function copyT2i(ctx: EvalContext, t: TaskTable): Promise<void> {
  const { c, limits } = ctx;
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
    t.samples.push({ column: COPY_LABEL, input: p.text, output: `training image ${hit.id}`, image: im.file });
  }
  if (c.referenceImages.length === 0) {
    for (const key of t.rows.keys()) t.set(key, COPY_LABEL, notMeasured('-', 'the character has no training images'));
  } else {
    await t2iScore(ctx, t, COPY_LABEL, prompts, images, keys, limits.samplesPerPrompt);
  }
}

async function copyMultimodal(ctx: EvalContext, t: TaskTable): Promise<void> {
  const scenes = limit(ctx.c.tests.heldOutScenes, ctx.limits.maxItems);
  const images: ImageOut[] = [];
  for (const s of scenes) {
    const hit = nearestTrainingImage(ctx.c, s.user);
    if (!hit) continue;
    const im = await saveImage(ctx, COPY_LABEL, `multimodal-${s.id}-train-${hit.id}`, imageBytes(hit));
    images.push(im);
    t.samples.push({ column: COPY_LABEL, input: s.user, output: `training image ${hit.id}`, image: im.file });
  }
  if (images.length === scenes.length) await multimodalScore(ctx, t, COPY_LABEL, scenes, images, null);
}

/** Scores the copy baseline into the T2I and multimodal tables; returns its column. */
export async function copyBaselineColumn(ctx: EvalContext, tab: (n: TaskName) => TaskTable): Promise<ReportColumn> {
  const column: ReportColumn = { label: COPY_LABEL, kind: 'copy', description: 'for each prompt or scene, the training image whose own caption is nearest (ROUGE-L) to the prompt / user line: what copying the training set scores on the image metrics' };
  await copyT2i(ctx, tab('t2i'));
  await copyMultimodal(ctx, tab('multimodal'));
  return column;
}
