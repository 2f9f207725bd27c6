import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planCommand, resolveModel, splitSamples } from '../../src/cli/plan.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'plan', ...args], { encoding: 'utf8' });

test('bad flags are errors naming the flag and the value', () => {
  const ok = ['--model', 'tiny', '--tokens-per-pack', '64'];
  const cases: [string[], RegExp][] = [
    [['--tokens-per-pack', '64'], /--model is required/],
    [['--model', 'tiny'], /--tokens-per-pack is required/],
    [['--model', 'huge', '--tokens-per-pack', '64'], /'huge' is neither a preset \(micro, tiny, small, bagel-7b-mot\) nor a file/],
    [[...ok, '--precision', 'fp8'], /--precision must be one of fp32, bf16-mixed, bf16, got 'fp8'/],
    [[...ok, '--mode', 'half'], /--mode must be one of full, lora, got 'half'/],
    [[...ok, '--shard', 'zero3'], /--shard must be one of none, grad, full, got 'zero3'/],
    [[...ok, '--devices', '0'], /--devices must be a positive integer, got '0'/],
    [[...ok, '--devices', '2.5'], /--devices must be a positive integer, got '2.5'/],
    [[...ok, '--device-memory', 'lots'], /'lots' is not a size/],
    [[...ok, '--shard', 'full'], /shard full needs more than one device/],
    [[...ok, '--sample-tokens', '65'], /--sample-tokens 65 exceeds --tokens-per-pack 64/],
    [[...ok, '--lora-r', '4'], /--lora-r applies to --mode lora only/],
    [[...ok, '--optimizer-kernel', 'apex'], /--optimizer-kernel must be one of foreach, fused, got 'apex'/],
    [[...ok, '--ce-tokens=-1'], /--ce-tokens must be a non-negative integer/],
    [[...ok, '--ce-tokens', '40', '--latent-tokens', '40'], /40 CE \+ 40 latent tokens exceed the 64/],
    [[...ok, 'extra'], /no positional arguments, got 'extra'/],
    [[...ok, '--fast'], /Unknown option '--fast'/],
  ];
  for (const [args, re] of cases) assert.throws(() => planCommand(args), re, args.join(' '));
});

test('the command prints the breakdown and exits 0 when it fits, 3 when it does not', () => {
  const fits = run('--model', 'tiny', '--tokens-per-pack', '256', '--device-memory', '1GiB', '--reserve', '0');
  assert.equal(fits.status, 0, fits.stderr);
  for (const row of ['weights', 'gradients', 'optimizer state', 'activations', 'workspace', 'total']) assert.match(fits.stdout, new RegExp(`\\| \\**${row}`));
  assert.match(fits.stdout, /verdict: fits/);
  const not = run('--model', 'bagel-7b-mot', '--tokens-per-pack', '4096');
  assert.equal(not.status, 3, not.stderr);
  assert.match(not.stdout, /verdict: does not fit/);
  const bad = run('--model', 'tiny', '--tokens-per-pack', 'x');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--tokens-per-pack must be a positive integer, got 'x'/);
  const help = run('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--activation-checkpointing/);
});

test('a model file overrides sections of a preset, and its mistakes are named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plan-'));
  try {
    const f = join(dir, 'm.yaml');
    writeFileSync(f, 'base: small\nllm:\n  numLayers: 12\n');
    const c = resolveModel(f);
    assert.equal(c.llm.numLayers, 12);
    assert.equal(c.llm.hiddenSize, 896);
    writeFileSync(f, 'base: small\nllm:\n  numHeads: 5\n');
    assert.throws(() => resolveModel(f), /numHeads 5 is not a multiple of numKvHeads 2/);
    writeFileSync(f, 'base: small\nwidth: 3\n');
    assert.throws(() => resolveModel(f), /unknown key 'width'/);
    writeFileSync(f, 'llm: {}\n');
    assert.throws(() => resolveModel(f), /a full config needs 'vit'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(splitSamples(10, 4), [4, 4, 2]);
});

test("the planner's shard modes are the trainer's, and src/plan loads without src/train", async () => {
  const { PLAN_SHARD_MODES: planned } = await import('../../src/plan/index.js');
  const { SHARD_MODES: trained } = await import('../../src/train/index.js');
  assert.deepEqual([...planned], [...trained]);
  // scripts/device-check.sh carries the compiled src/plan without src/train and its npm
  // dependencies: no compiled planner file may import the trainer at run time (type imports are erased)
  const dir = fileURLToPath(new URL('../../src/plan/', import.meta.url));
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.js'))) {
    assert.doesNotMatch(readFileSync(join(dir, f), 'utf8'), /from '\.\.\/(train|data|cli|serve|character|eval|reward)\//, f);
  }
});
