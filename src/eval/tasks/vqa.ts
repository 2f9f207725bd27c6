// Visual question answering (docs/dataset.md 3.4): greedy answers about the character's images,
// exact match on the objective pairs and letter accuracy on the image MCQs.
import { StreamDecoder, imageBytes, prepareImage, scaledRule, VIT_RULE, type Character, type ChwImage, type SizeSpec } from '../../data/index.js';
import type { CharacterModel } from '../../character/index.js';
import { decodeSteps, newContext, prefillText, prefillVitImage } from '../../model/index.js';
import { tensor } from '../../torch/index.js';
import { mcqPrompt, parseMcqChoice } from '../mcq.js';
import { vqaExactMatch } from '../text-metrics.js';
import type { ResolvedLimits } from '../config.js';
import type { EvalContext, EvalTask } from './context.js';
import { limit } from './context.js';
import { PAPER_NUMBERS, PAPER_SOURCE, RULE, TaskTable, measured, notMeasured } from './table.js';

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

function vitSide(cm: CharacterModel, o: ResolvedLimits): number | 'rule' {
  if (o.vitImageSize) return o.vitImageSize;
  const p = cm.manifest.provenance.vitImageSize;
  if (typeof p === 'number') return p;
  const v = cm.manifest.modelConfig.vit;
  return v.patchSize * v.maxNumPatchPerSide >= 378 ? 'rule' : 4 * v.patchSize;
}

function define(): TaskTable {
  const vqa = new TaskTable('vqa', 'Visual question answering');
  vqa.def('vqa.exactMatch', { title: 'VQA accuracy (exact match)', unit: '%', higherIsBetter: true, description: 'greedy answer to an objective question about a character image, normalised as the VQA evaluation does (lower-case, punctuation stripped, number words to digits, articles dropped) and compared exactly with the one reference answer', paper: { value: PAPER_NUMBERS.vqa, source: PAPER_SOURCE } });
  vqa.def('vqa.mcqAccuracy', { title: 'image MCQ accuracy', unit: '%', higherIsBetter: true, description: '4-option MCQs about a character image (mcq_items of *_with_image.json), letter parsed as for knowledge MCQs' });
  vqa.notes.push('The held-out test split has no VQA ground truth (docs/dataset.md 3.4, 7): these items are the objective qa_pairs and mcq_items of the TRAIN images, so they measure recall of training supervision, not generalisation.');
  return vqa;
}

async function run(ctx: EvalContext, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
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

export const vqaTask: EvalTask = {
  name: 'vqa',
  progress: 'VQA',
  define,
  items: (c: Character, limits) => Math.min(c.vqa.filter((q) => q.type === 'objective').length, limits.maxItems),
  run,
};
