// The demo's evaluation stage: src/eval's runner, sized for the demo, on the sample character's
// held-out test split when the character is the sample character.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SAMPLE_ROOT, SAMPLE_FOLDER, type Character } from '../data/index.js';
import { runEval, type EvalRun } from '../eval/index.js';

export interface DemoEvalOptions {
  character: Character;
  out: string;
  quick: boolean;
  runs: EvalRun[];
}

export async function runDemoEval(o: DemoEvalOptions): Promise<void> {
  const sampleSplit = join(SAMPLE_ROOT, 'test', SAMPLE_FOLDER);
  const split = o.character.names.folder === SAMPLE_FOLDER && existsSync(sampleSplit) ? sampleSplit : undefined;
  await runEval({
    character: o.character,
    split,
    runs: o.runs,
    out: o.out,
    evaluators: { independent: !o.quick },
    limits: o.quick
      ? { maxItems: 2, maxTokens: 16, maxAnswerTokens: 8, maxThinkTokens: 16, numTimesteps: 6, samplesPerPrompt: 2 }
      : { maxItems: 8, maxTokens: 48, maxAnswerTokens: 16, maxThinkTokens: 48, numTimesteps: 20, samplesPerPrompt: 2 },
    log: (line) => console.log(`  ${line}`),
  });
}
