// Multimodal role-play (docs/method.md 4.3): for each held-out scene a reply, then an image of the
// scene from the reply; scored for the reply, the image-reply consistency and identity.
import type { Character, Scene } from '../../data/index.js';
import type { CharacterModel } from '../../character/index.js';
import { manualSeed } from '../../torch/index.js';
import { mean, rougeL } from '../text-metrics.js';
import type { EvalContext, EvalTask, ImageOut } from './context.js';
import { limit, saveImage } from './context.js';
import { defineIdentityRows, identityCells, identityKeys } from './identity.js';
import { PAPER_NUMBERS, RULE, TaskTable, measured, notMeasured } from './table.js';

/** Scores a column's scene images; `replies` null (the copy baseline) scores identity only. */
export async function multimodalScore(ctx: EvalContext, t: TaskTable, column: string, scenes: Scene[], images: ImageOut[], replies: string[] | null): Promise<void> {
  if (scenes.length === 0) {
    for (const key of t.rows.keys()) t.set(key, column, notMeasured('-', 'the split has no held-out scenes'));
    return;
  }
  if (replies) {
    t.set('multimodal.replyRougeL', column, measured(mean(replies.map((r, i) => rougeL(r, scenes[i]!.reply).f)), RULE.rouge, replies.length));
    t.set('multimodal.consistency', column, measured(mean(ctx.scorers.alignment.score(images.map((i) => i.chw), replies)), ctx.scorers.alignment.id, replies.length));
  }
  await identityCells(ctx, t, column, images, identityKeys('multimodal'));
}

function define(c: Character): TaskTable {
  const mm = new TaskTable('multimodal', 'Multimodal role-play');
  mm.def('multimodal.replyRougeL', { title: 'reply ROUGE-L', unit: 'F1', higherIsBetter: true, description: 'ROUGE-L F1 of the reply against the held-out scene\'s reference reply' });
  mm.def('multimodal.consistency', { title: 'image-reply consistency', unit: 'reward', higherIsBetter: true, description: 'alignment of the image with the model\'s own reply text (CLIP-T form, or the named fallback): does the picture show what the character just said' });
  defineIdentityRows(mm, 'multimodal', 'the role-play images', c.category === 'human', PAPER_NUMBERS.multimodalClipI);
  mm.notes.push(`Scenes: the ${c.tests.heldOutScenes.length} held-out annotated scenes; reply first, then an image of the scene from the reply (docs/method.md 4.3).`);
  return mm;
}

async function run(ctx: EvalContext, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
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

export const multimodalTask: EvalTask = {
  name: 'multimodal',
  progress: 'multimodal role-play',
  define,
  items: (c, limits) => Math.min(c.tests.heldOutScenes.length, limits.maxItems),
  run,
};
