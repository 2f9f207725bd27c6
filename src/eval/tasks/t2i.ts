// Text-to-image (docs/method.md 3.4): images from the held-out T2I instructions, scored for
// alignment with the prompt (CLIP-T), identity against the held-out images, and diversity.
import type { Character } from '../../data/index.js';
import type { CharacterModel } from '../../character/index.js';
import { mean } from '../text-metrics.js';
import type { EvalContext, EvalTask, ImageOut } from './context.js';
import { limit, saveImage } from './context.js';
import { defineIdentityRows, identityCells, identityKeys } from './identity.js';
import { PAPER_NUMBERS, TaskTable, measured, notMeasured } from './table.js';

export interface T2iPromptItem {
  id: string;
  text: string;
}

/** The T2I prompts of the split: each held-out image's pure T2I instruction (else its scene's). */
export function t2iPrompts(c: Character, maxItems: number): T2iPromptItem[] {
  const out: T2iPromptItem[] = [];
  for (const img of c.tests.heldOutImages) {
    const scene = c.tests.heldOutScenes.find((s) => s.image === img.id);
    const text = img.t2iInstruction ?? scene?.generationInstruction;
    if (text) out.push({ id: img.id, text });
  }
  return limit(out, maxItems);
}

/** Scores a column's images (`groupKeys[i]`: the prompt id of image i, k images per prompt). */
export async function t2iScore(ctx: EvalContext, t: TaskTable, column: string, prompts: T2iPromptItem[], images: ImageOut[], groupKeys: string[], k: number): Promise<void> {
  if (images.length === 0) {
    for (const key of t.rows.keys()) t.set(key, column, notMeasured('-', 'the split has no held-out T2I prompts'));
    return;
  }
  const promptTexts = groupKeys.map((g) => prompts.find((p) => p.id === g)!.text);
  const chw = images.map((i) => i.chw);
  t.set('t2i.clipT', column, measured(mean(ctx.scorers.alignment.score(chw, promptTexts)), ctx.scorers.alignment.id, chw.length));
  await identityCells(ctx, t, column, images, identityKeys('t2i'));
  t.set('t2i.diversity', column, k >= 2 ? measured(mean(ctx.scorers.diversity.score(chw, groupKeys)), ctx.scorers.diversity.id, chw.length, { samplesPerPrompt: k }) : notMeasured(ctx.scorers.diversity.id, 'one image per prompt (samplesPerPrompt < 2)'));
}

function define(c: Character): TaskTable {
  const t2i = new TaskTable('t2i', 'Text-to-image');
  t2i.def('t2i.clipT', { title: 'CLIP-T alignment', unit: 'reward', higherIsBetter: true, description: 'text-image alignment of each generated image with its prompt: (100/30)·cos for CLIP (docs/method.md 3.4), or the named fallback' });
  defineIdentityRows(t2i, 't2i', 'the generated images', c.category === 'human', PAPER_NUMBERS.t2iClipI);
  t2i.def('t2i.diversity', { title: 'diversity', unit: 'distance', higherIsBetter: true, description: 'mean pairwise perceptual distance (LPIPS or its named fallback) between the images generated for the same prompt with different seeds' });
  t2i.notes.push(`Prompts: the pure T2I instruction of each held-out image (${c.tests.heldOutImages.length} in the split); the held-out images are the references.`);
  return t2i;
}

async function run(ctx: EvalContext, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
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

export const t2iTask: EvalTask = {
  name: 't2i',
  progress: 'text-to-image',
  define,
  items: (c, limits) => t2iPrompts(c, limits.maxItems).length,
  run,
};
