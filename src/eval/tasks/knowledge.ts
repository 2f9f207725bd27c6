// Knowledge QA (docs/dataset.md 3.7): the held-out 4-option MCQs by letter, and the same questions
// asked open, scored by ROUGE-L against the correct option and by the judge.
import type { Character } from '../../data/index.js';
import type { CharacterModel } from '../../character/index.js';
import { mcqPrompt, parseMcqChoice } from '../mcq.js';
import { mean, rougeL } from '../text-metrics.js';
import type { EvalContext, EvalTask } from './context.js';
import { limit } from './context.js';
import { judgeMean } from './judge-mean.js';
import { NO_JUDGE, PAPER_NUMBERS, PAPER_SOURCE, RULE, TaskTable, measured, notMeasured } from './table.js';

function define(c: Character): TaskTable {
  const k = new TaskTable('knowledge', 'Knowledge QA');
  k.def('knowledge.mcqAccuracy', { title: 'MCQ accuracy', unit: '%', higherIsBetter: true, description: 'share of the held-out 4-option knowledge MCQs answered with the correct letter (an unparseable answer counts as wrong)', paper: { value: PAPER_NUMBERS.knowledgeMcq, source: PAPER_SOURCE } });
  k.def('knowledge.mcqParseRate', { title: 'MCQ answers parsed', unit: '%', higherIsBetter: true, description: 'share of MCQ answers from which a letter could be read' });
  k.def('knowledge.openRougeL', { title: 'open answer ROUGE-L', unit: 'F1', higherIsBetter: true, description: 'the MCQ question asked without options (the knowledge-QA training format); ROUGE-L F1 of the answer against the correct option text' });
  k.def('knowledge.openJudge', { title: 'open answer (judge)', unit: 'score 1-10', higherIsBetter: true, description: 'the same open answers graded by the judge against the correct option (prompt knowledge-open.txt)' });
  k.notes.push(`Items: ${c.tests.knowledgeMcq.length} held-out MCQs (*_knowledge_qa_test.json). Answer keys are skewed (docs/dataset.md 3.7), so the majority-key chance baseline is shown beside uniform chance.`);
  return k;
}

async function run(ctx: EvalContext, t: TaskTable, label: string, cm: CharacterModel): Promise<void> {
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

export const knowledgeTask: EvalTask = {
  name: 'knowledge',
  progress: 'knowledge',
  define,
  items: (c, limits) => Math.min(c.tests.knowledgeMcq.length, limits.maxItems),
  run,
};
