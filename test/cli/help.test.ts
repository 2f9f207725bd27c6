// `--help` works on every command and subcommand that `unicharacter help` lists: exit 0, the
// command's own usage on stdout (never an option error, never the command running), nothing on
// stderr; `-h` the same. The list comes from the help text itself, so a new command is covered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });

/** Each entry of `unicharacter help`: its words before the first option or placeholder. */
function listedCommands(): string[][] {
  const out = run(['help']);
  assert.equal(out.status, 0, out.stderr);
  const commands: string[][] = [];
  for (const line of out.stdout.split('\n')) {
    const m = /^  ([a-z]+)(?: ([a-z]+))?(?=\s|$)/.exec(line);
    if (m && !/^  Precision|^  Configs|^  Under/.test(line)) commands.push(m[2] ? [m[1]!, m[2]] : [m[1]!]);
  }
  return commands;
}

const commands = listedCommands();

test('help lists every command this test knows to exist', () => {
  const names = new Set(commands.map((c) => c[0]));
  for (const c of ['demo', 'data', 'train', 'customize', 'launch', 'eval', 'serve', 'chat', 'plan', 'engine', 'help']) assert.ok(names.has(c), c);
  assert.deepEqual(commands.filter((c) => c[0] === 'train').map((c) => c[1]), ['vae', 'sft', 'base', 'grpo']);
  assert.deepEqual(commands.filter((c) => c[0] === 'data').map((c) => c[1]), ['validate', 'stats']);
});

// The parent commands as well as each listed entry, each with --help and -h, two at a time.
const cases = [...commands, ['data'], ['train']].filter((c) => c[0] !== 'help').flatMap((c) => [[...c, '--help'], [...c, '-h']]);
type Result = { status: number | null; stdout: string; stderr: string };
function runAsync(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
const results = new Map<string, Result>();
for (let i = 0; i < cases.length; i += 2) {
  const batch = cases.slice(i, i + 2);
  const out = await Promise.all(batch.map(runAsync));
  batch.forEach((c, k) => results.set(c.join(' '), out[k]!));
}

for (const args of cases) {
  test(`unicharacter ${args.join(' ')}`, () => {
    const r = results.get(args.join(' '))!;
    const words = args.slice(0, -1);
    assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
    assert.equal(r.stderr, '');
    // The command's own usage: it names the command (a parent, one of its subcommands).
    assert.match(r.stdout, new RegExp(`^unicharacter ${words.join(' +')}`), r.stdout.slice(0, 200));
    assert.doesNotMatch(r.stdout, /Unknown option|libtorch \d/);
  });
}

test('--help after a positional is still help; after -- it belongs to the command', () => {
  const r = run(['customize', 'sample', '--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^unicharacter customize <character>/);
  const d = run(['data', 'validate', '--', '--help']);
  assert.notEqual(d.status, 0, 'a folder named --help is read, not help');
});
