// Multimodal role-play with thinking (docs/method.md 4.3 steps 1-3; docs/fidelity.md "Thinking-mode
// role-play"): the multimodal task's scenes, seeds and replies, with each image planned first
// (`<think>...</think><gen>...</gen>`) and drawn from the plan's caption. The replies are the
// multimodal task's (same seed, same prompt), so this column differs from it only in the images,
// scored the same way, plus how often the model's plan is well formed.
import type { Character, Scene } from '../../data/index.js';
import type { CharacterModel } from '../../character/index.js';
import { manualSeed } from '../../torch/index.js';
import { mean } from '../text-metrics.js';
import type { EvalContext, EvalTask, ImageOut } from './context.js';
import { limit, saveImage } from './context.js';
import { defineIdentityRows, identityCells, identityKeys } from './identity.js';
import { TaskTable, measured, notMeasured } from './table.js';

const NAME = 'multimodalThinking';

function define(c: Character): TaskTable {
  const t = new TaskTable(NAME, 'Multimodal role-play with thinking');
  t.def(`${NAME}.consistency`, { title: 'image-reply consistency', unit: 'reward', higherIsBetter: true, description: 'alignment of the image drawn from the plan with the model\'s own reply (as in multimodal role-play)' });
  t.def(`${NAME}.planWellFormed`, { title: 'well-formed plans', unit: '%', higherIsBetter: true, description: 'plans with both a complete <think>...</think> and a complete <gen>...</gen>; otherwise the missing part is empty in the image prompt, as officially' });
  // No paper number: the paper's multimodal CLIP-I does not say whether thinking was on.
  defineIdentityRows(t, NAME, 'the images drawn from the plans', c.category === 'human');
  t.notes.push(`Scenes: the ${c.tests.heldOutScenes.length} held-out annotated scenes, as multimodal role-play: the same replies, then a plan for the image (the official thinking prompt, greedy), then the image from the caption holding the plan (docs/method.md 4.3).`);
  return t;
}

async function score(ctx: EvalContext, t: TaskTable, column: string, scenes: Scene[], images: ImageOut[], replies: string[], wellFormed: boolean[]): Promise<void> {
  if (scenes.length === 0) {
    for (const key of t.rows.keys()) t.set(key, column, notMeasured('-', 'the split has no held-out scenes'));
    return;
  }
  t.set(`${NAME}.consistency`, column, measured(mean(ctx.scorers.alignment.score(images.map((i) => i.chw), replies)), ctx.scorers.alignment.id, replies.length));
  t.set(`${NAME}.planWellFormed`, column, measured(100 * mean(wellFormed.map(Number)), 'rule:think-gen-tags', wellFormed.length));
  await identityCells(ctx, t, column, images, identityKeys(NAME));
}

async function run(ctx: EvalContext, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
  const scenes = limit(ctx.c.tests.heldOutScenes, ctx.limits.maxItems);
  manualSeed(ctx.limits.seed);
  const images: ImageOut[] = [];
  const replies: string[] = [];
  const wellFormed: boolean[] = [];
  for (const s of scenes) {
    const r = await cm.rolePlay(s.user, {
      temperature: ctx.limits.temperature, maxTokens: ctx.limits.maxTokens, image: { seed: ctx.limits.seed, numTimesteps: ctx.limits.numTimesteps },
      thinking: { maxTokens: ctx.limits.maxThinkTokens },
    });
    const im = await saveImage(ctx, label, `multimodal-thinking-${s.id}`, r.image);
    images.push(im);
    replies.push(r.reply);
    wellFormed.push(r.plan!.missing.length === 0);
    t.samples.push({ column: label, input: s.user, output: `${r.reply}\n\n[plan] ${r.plan!.text}`, reference: s.reply, image: im.file });
  }
  await score(ctx, t, label, scenes, images, replies, wellFormed);
}

export const multimodalThinkingTask: EvalTask = {
  name: NAME,
  progress: 'multimodal role-play with thinking',
  define,
  items: (c, limits) => Math.min(c.tests.heldOutScenes.length, limits.maxItems),
  run,
};
