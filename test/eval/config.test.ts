// The evaluation config (src/eval/config.ts): the documented defaults are filled in, unknown keys
// and repeated run labels are refused naming the field, and the CLI and the server's eval jobs
// refuse the same bad values with the same message (one rule per field, EVAL_LIMIT_FIELDS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVAL_HELP, evalCommand, parseEvalConfig } from '../../src/eval/index.js';
import { toApiError } from '../../src/serve/index.js';
import { JobRequestSchema } from '../../src/serve/jobs.js';

test('parseEvalConfig fills the defaults of EvalLimits and docs/architecture.md "Evaluation"', () => {
  const c = parseEvalConfig({ runs: [{ label: 'a', modelDir: '/m' }], out: '/o' });
  assert.deepEqual(c.limits, { maxTokens: 500, maxAnswerTokens: 64, maxThinkTokens: 1000, numTimesteps: 50, samplesPerPrompt: 2, temperature: 0.7, seed: 0 });
  assert.equal(c.copyBaseline, true);
  assert.deepEqual(c.evaluators, {});
  assert.equal(c.judge, undefined);
});

test('parseEvalConfig refuses unknown keys, repeated labels, a judge without a model, and names each field', () => {
  assert.throws(() => parseEvalConfig({ runs: [], out: '/o', limits: { maxItem: 3 } }), /evaluation config: limits: Unrecognized key\(s\) in object: 'maxItem'/);
  assert.throws(() => parseEvalConfig({ runs: [{ label: 'a', modelDir: '/m' }, { label: 'a', modelDir: '/n' }], out: '/o' }), /runs\.1\.label: run label "a" is used twice/);
  assert.throws(() => parseEvalConfig({ runs: [], out: '/o', judge: { url: 'http://127.0.0.1:1/v1' } }), /judge\.model: Required/);
  assert.throws(() => parseEvalConfig({ runs: [], out: '' }), /out: String must contain at least 1 character/);
  // two bad fields: both named
  assert.throws(() => parseEvalConfig({ runs: [], out: '/o', limits: { maxItems: 0, seed: 0.5 } }), /limits\.maxItems: .*; limits\.seed: /);
});

// [CLI flag, server option, value, what zod says independently of either caller]
const BAD: [string, string, number, RegExp][] = [
  ['--max-items', 'max_items', 0, /greater than or equal to 1$/],
  ['--max-tokens', 'max_tokens', 1.5, /integer/],
  ['--max-tokens', 'max_tokens', 40_000, /less than or equal to 32768$/],
  ['--max-answer-tokens', 'max_answer_tokens', 5000, /less than or equal to 4096$/],
  ['--max-think-tokens', 'max_think_tokens', 0, /greater than or equal to 1$/],
  ['--timesteps', 'num_timesteps', 1, /greater than or equal to 2$/],
  ['--samples-per-prompt', 'samples_per_prompt', 17, /less than or equal to 16$/],
  ['--temperature', 'temperature', 2.5, /less than or equal to 2$/],
  ['--seed', 'seed', 0.5, /integer/],
];

async function cliError(flag: string, value: number): Promise<{ code: number; message: string }> {
  const lines: string[] = [];
  // the config is checked before any model folder or character is read
  const code = await evalCommand(['--run', '/nonexistent/model', '--character', 'sample', flag, String(value)], (l) => lines.push(l));
  return { code, message: lines.join('\n') };
}

function serverError(option: string, value: number): string | null {
  const r = JobRequestSchema.safeParse({ kind: 'eval', character: 'tessel', options: { [option]: value } });
  return r.success ? null : toApiError(r.error).message;
}

test('the CLI and the server refuse the same bad evaluation values with the same message', async () => {
  for (const [flag, option, value, says] of BAD) {
    const cli = await cliError(flag, value);
    const server = serverError(option, value);
    assert.equal(cli.code, 2, `${flag} ${value}`);
    assert.ok(server, `${option} ${value} accepted by the server`);
    const cliText = cli.message.replace(`eval: ${flag}: `, '');
    const serverText = server.replace(`options.${option}: `, '');
    assert.notEqual(cliText, cli.message, `CLI message names ${flag}: ${cli.message}`);
    assert.notEqual(serverText, server, `server message names options.${option}: ${server}`);
    assert.match(cliText, says);
    assert.equal(cliText, serverText);
  }
});

test('the limits\' bounds are accepted by both, and the CLI help states them', () => {
  const ok = { max_items: 1, max_tokens: 32_768, max_answer_tokens: 1, num_timesteps: 2, samples_per_prompt: 16, temperature: 0, seed: -3 };
  assert.equal(serverError('max_items', 1), null);
  assert.ok(JobRequestSchema.safeParse({ kind: 'eval', character: 'tessel', options: ok }).success);
  const c = parseEvalConfig({ runs: [], out: '/o', limits: { maxItems: 1, maxTokens: 32_768, maxAnswerTokens: 1, numTimesteps: 2, samplesPerPrompt: 16, temperature: 0, seed: -3 } });
  assert.equal(c.limits.samplesPerPrompt, 16);
  for (const line of ['--max-items N', '(1-1000000;', '(1-32768;', '--max-answer-tokens N', '(2-1000;', '(1-16;', '(0-2;']) assert.ok(EVAL_HELP.includes(line), line);
});
