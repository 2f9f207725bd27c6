// `unicharacter eval --character <id|dir> --split <dir> --run <run dir> ...` (docs/architecture.md "Evaluation"): resolves
// the character and the runs, then runEval. Returns the exit code; the caller wires it into main.
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadSampleCharacter, readRoleScapeCharacter, type Character } from '../data/index.js';
import { CharacterModel } from '../character/index.js';
import { runEval } from './run-eval.js';
import { EVAL_LIMIT_FIELDS, evalConfigIssues, type EvalConfigInput, type EvalRun } from './config.js';
import { JUDGE_API_KEY_ENV } from './judge.js';
import { REPORT_FILES } from './report.js';

/** `lo-hi` of a limit, read from its rule in EVAL_LIMIT_FIELDS. */
const range = (k: 'maxItems' | 'maxTokens' | 'maxAnswerTokens' | 'maxThinkTokens' | 'numTimesteps' | 'samplesPerPrompt' | 'temperature'): string =>
  `${EVAL_LIMIT_FIELDS[k].minValue}-${EVAL_LIMIT_FIELDS[k].maxValue}`;

export const EVAL_HELP = `unicharacter eval [options]
  --character <id|dir>   a RoleScape-20 character folder (train split), the sample character
                         ("sample", "tessel" or its id), or a folder name under --data-root/train;
                         default: the character stored in the first run's model folder
  --split <dir>          held-out split: the character's test folder, or a split root holding it
  --held-out-after N     no test split: the reference images after the character's first N (those
                         \`customize --max-images N\` did not train on) and their scenes are held out
  --run [label=]<dir>    a character model folder; repeat for base / SFT / SFT+GRPO (label default:
                         the folder name)
  --out <dir>            report folder (default eval-report/)
  --judge-url <url>      OpenAI-compatible endpoint for judge-only metrics (key: $${JUDGE_API_KEY_ENV})
  --judge-model <name>
  --clip-dir <dir>  --dino-dir <dir>  --lpips <file>   real scorer weights (else named fallbacks)
  --no-independent       skip the nsfwjs / face evaluators
  --no-copy-baseline     skip the nearest-training-image baseline
  --max-items N          at most N items per task (${range('maxItems')}; default: all)
  --max-tokens N         token limit of replies and open answers (${range('maxTokens')}; default 500)
  --max-answer-tokens N  token limit of MCQ and VQA answers (${range('maxAnswerTokens')}; default 64)
  --max-think-tokens N   token limit of the image plans of role-play with thinking (${range('maxThinkTokens')};
                         default 1000, the official limit)
  --timesteps N          ODE steps per image (${range('numTimesteps')}; default 50)
  --samples-per-prompt N images per T2I prompt, 2 or more gives diversity (${range('samplesPerPrompt')}; default 2)
  --seed N               an integer (default 0)
  --temperature T        sampling temperature of role-play replies (${range('temperature')}; default 0.7)
  --data-root <dir>      RoleScape-20 copy (default ../shared/rolescape20)`;

/** The character named on the command line. */
export function resolveCharacter(spec: string, dataRoot: string): Character {
  const sample = loadSampleCharacter().character;
  if (['sample', 'tessel', sample.id.toLowerCase(), sample.names.display.toLowerCase()].includes(spec.toLowerCase())) return sample;
  const dirs = [spec, join(dataRoot, 'train', spec)];
  for (const d of dirs) {
    if (existsSync(d) && statSync(d).isDirectory() && existsSync(join(d, 'annotation.json'))) {
      return readRoleScapeCharacter(resolve(d), { split: 'train' }).loaded.character;
    }
  }
  throw new Error(`eval: character "${spec}" is neither the sample character nor a character folder (looked at ${dirs.join(', ')})`);
}

function parseRun(s: string): EvalRun {
  const eq = s.indexOf('=');
  if (eq > 0 && !existsSync(s)) return { label: s.slice(0, eq), modelDir: s.slice(eq + 1) };
  return { label: s.replace(/[\\/]+$/, '').split(/[\\/]/).pop() || s, modelDir: s };
}

const num = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`eval: --${name} must be a number, got "${v}"`);
  return n;
};

/** The flag that sets each field of the evaluation config (EvalConfigSchema), for its errors. */
const FLAGS: Record<string, string> = {
  split: '--split', heldOutAfter: '--held-out-after', out: '--out', 'judge.url': '--judge-url', 'judge.model': '--judge-model',
  'evaluators.clipDir': '--clip-dir', 'evaluators.dinoDir': '--dino-dir', 'evaluators.lpipsFiles': '--lpips',
  'limits.maxItems': '--max-items', 'limits.maxTokens': '--max-tokens', 'limits.maxAnswerTokens': '--max-answer-tokens', 'limits.maxThinkTokens': '--max-think-tokens', 'limits.numTimesteps': '--timesteps',
  'limits.samplesPerPrompt': '--samples-per-prompt', 'limits.seed': '--seed', 'limits.temperature': '--temperature',
};
const flagOf = (path: string): string => FLAGS[path] ?? (/^runs\.\d+\./.test(path) ? '--run' : FLAGS[path.replace(/\.\d+$/, '')] ?? path);

/** The evaluation config the flags ask for, checked by EvalConfigSchema: an error names the flag. */
export function evalConfigFromFlags(values: Record<string, string | string[] | boolean | undefined>): EvalConfigInput {
  const s = (k: string) => values[k] as string | undefined;
  const config: EvalConfigInput = {
    ...(s('split') !== undefined ? { split: s('split') } : {}),
    ...(s('held-out-after') !== undefined ? { heldOutAfter: num(s('held-out-after'), 'held-out-after') } : {}),
    runs: ((values.run as string[] | undefined) ?? []).map(parseRun),
    ...(s('judge-url') !== undefined || s('judge-model') !== undefined ? { judge: { url: s('judge-url') ?? '', model: s('judge-model') ?? '' } } : {}),
    evaluators: { clipDir: s('clip-dir'), dinoDir: s('dino-dir'), lpipsFiles: values.lpips as string[] | undefined, independent: !values['no-independent'] },
    out: s('out') ?? 'eval-report',
    copyBaseline: !values['no-copy-baseline'],
    limits: {
      maxItems: num(s('max-items'), 'max-items'), maxTokens: num(s('max-tokens'), 'max-tokens'), maxAnswerTokens: num(s('max-answer-tokens'), 'max-answer-tokens'),
      maxThinkTokens: num(s('max-think-tokens'), 'max-think-tokens'), numTimesteps: num(s('timesteps'), 'timesteps'),
      samplesPerPrompt: num(s('samples-per-prompt'), 'samples-per-prompt'), seed: num(s('seed'), 'seed'), temperature: num(s('temperature'), 'temperature'),
    },
  };
  const { issues } = evalConfigIssues(config);
  if (issues.length) throw new Error(`eval: ${issues.map((i) => `${flagOf(i.path)}: ${i.message}`).join('; ')}`);
  return config;
}

export async function evalCommand(args: string[], log: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      character: { type: 'string' }, split: { type: 'string' }, 'held-out-after': { type: 'string' }, run: { type: 'string', multiple: true }, out: { type: 'string' },
      'judge-url': { type: 'string' }, 'judge-model': { type: 'string' },
      'clip-dir': { type: 'string' }, 'dino-dir': { type: 'string' }, lpips: { type: 'string', multiple: true },
      'no-independent': { type: 'boolean', default: false }, 'no-copy-baseline': { type: 'boolean', default: false },
      'max-items': { type: 'string' }, 'max-tokens': { type: 'string' }, 'max-answer-tokens': { type: 'string' }, 'max-think-tokens': { type: 'string' }, timesteps: { type: 'string' }, 'samples-per-prompt': { type: 'string' },
      seed: { type: 'string' }, temperature: { type: 'string' }, 'data-root': { type: 'string' }, help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    // Asked-for help is the command's output (stdout); progress and errors go to `log`.
    process.stdout.write(`${EVAL_HELP}\n`);
    return 0;
  }
  const runs = (values.run ?? []).map(parseRun);
  if (runs.length === 0) {
    log(`eval: give at least one --run <model dir>\n\n${EVAL_HELP}`);
    return 2;
  }
  if (Boolean(values['judge-url']) !== Boolean(values['judge-model'])) {
    log('eval: --judge-url and --judge-model go together');
    return 2;
  }
  let config: EvalConfigInput;
  try {
    config = evalConfigFromFlags(values);
  } catch (e) {
    log((e as Error).message);
    return 2;
  }
  let character: Character;
  if (values.character) character = resolveCharacter(values.character, values['data-root'] ?? join('..', 'shared', 'rolescape20'));
  else {
    const cm = await CharacterModel.load(runs[0]!.modelDir);
    character = cm.character;
    cm.dispose();
  }
  const report = await runEval({ ...config, character, log });
  const out = config.out;
  const nm = report.tasks.flatMap((t) => t.metrics.flatMap((m) => Object.values(m.cells))).filter((c) => c.value === null).length;
  log(`eval: wrote ${join(out, REPORT_FILES.json)}, ${REPORT_FILES.markdown} and ${REPORT_FILES.html} (${nm} cells not measured, each with its reason)`);
  return 0;
}
