// Text role-play (docs/dataset.md 3.9): sampled replies to the held-out dialogue scenes, scored by
// ROUGE-L and BLEU against the reference reply and by the judge (reply template: docs/method.md 4.3).
import type { Character } from '../../data/index.js';
import type { CharacterModel } from '../../character/index.js';
import { manualSeed } from '../../torch/index.js';
import { corpusBleu, mean, rougeL, sentenceBleu } from '../text-metrics.js';
import type { EvalContext, EvalTask } from './context.js';
import { limit } from './context.js';
import { judgeMean } from './judge-mean.js';
import { NO_JUDGE, RULE, TaskTable, measured, notMeasured } from './table.js';

function define(c: Character): TaskTable {
  const rp = new TaskTable('roleplay', 'Text role-play');
  rp.def('roleplay.rougeL', { title: 'ROUGE-L', unit: 'F1', higherIsBetter: true, description: 'mean sentence ROUGE-L F1 of the reply against the reference reply (RoleBench convention; lower-cased alphanumeric tokens, no stemming)' });
  rp.def('roleplay.bleu', { title: 'BLEU-4 (corpus)', unit: 'BLEU', higherIsBetter: true, description: 'corpus BLEU-4, uniform weights, brevity penalty, no smoothing, same tokens as ROUGE-L; 0..1' });
  rp.def('roleplay.sentenceBleu', { title: 'BLEU-4 (sentence mean)', unit: 'BLEU', higherIsBetter: true, description: 'mean sentence BLEU-4 with smoothing method 1 (epsilon 0.1)' });
  rp.def('roleplay.judge', { title: 'role-play (judge)', unit: 'score 1-10', higherIsBetter: true, description: 'replies graded 1-10 by the judge with the reference reply for orientation (prompt roleplay.txt)' });
  rp.notes.push(`Items: ${c.tests.dialogue.length} held-out dialogue scenes (*_dialogue_text_extension_test.json); replies sampled as the reference does (reply template of docs/method.md 4.3).`);
  return rp;
}

async function run(ctx: EvalContext, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
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

export const rolePlayTask: EvalTask = {
  name: 'roleplay',
  progress: 'text role-play',
  define,
  items: (c, limits) => Math.min(c.tests.dialogue.length, limits.maxItems),
  run,
};
