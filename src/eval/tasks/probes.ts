// Memorization and personality probes (docs/dataset.md 3.8): sampled replies to the probe
// questions, graded by the judge only (the probes have no reference answers).
import type { Character } from '../../data/index.js';
import type { CharacterModel } from '../../character/index.js';
import { manualSeed } from '../../torch/index.js';
import type { EvalContext, EvalTask } from './context.js';
import { limit } from './context.js';
import { judgeMean } from './judge-mean.js';
import { NO_JUDGE, PAPER_NUMBERS, PAPER_SOURCE, TaskTable, notMeasured } from './table.js';

type ProbeKind = 'memorization' | 'personality';

const stripQuotes = (s: string): string => s.trim().replace(/^"([\s\S]*)"$/, '$1');

async function run(kind: ProbeKind, ctx: EvalContext, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
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

function defineMemorization(c: Character): TaskTable {
  const mem = new TaskTable('memorization', 'Memorization probes');
  mem.def('memorization.judge', { title: 'memorization (judge)', unit: 'score 1-10', higherIsBetter: true, description: 'replies to the memorization probes graded 1-10 for factual recall against the profile (prompt memorization.txt)', paper: { value: PAPER_NUMBERS.memorization, source: `${PAPER_SOURCE}; judge and scale of the paper unknown, so not comparable` } });
  mem.notes.push(`Items: ${c.tests.memorization.length} probes (*_memorization_test.json); no reference answers exist, so only a judge can score them.`);
  return mem;
}

function definePersonality(c: Character): TaskTable {
  const per = new TaskTable('personality', 'Personality probes');
  per.def('personality.judge', { title: 'personality (judge)', unit: 'score 1-10', higherIsBetter: true, description: 'replies to the personality probes graded 1-10 for in-character personality and style (prompt personality.txt)' });
  per.notes.push(`Items: ${c.tests.personality.length} probes (*_personality_test.json); judge only.`);
  return per;
}

function probeTask(kind: ProbeKind, define: (c: Character) => TaskTable): EvalTask {
  return {
    name: kind,
    progress: kind,
    define,
    items: (c, limits) => Math.min(c.tests[kind].length, limits.maxItems),
    run: (ctx, t, label, cm) => run(kind, ctx, t, label, cm),
  };
}

export const memorizationTask = probeTask('memorization', defineMemorization);
export const personalityTask = probeTask('personality', definePersonality);
