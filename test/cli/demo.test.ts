// The main job end to end in its reduced form (`unicharacter demo --quick`), as CI runs it: a
// first run killed with SIGKILL during the VAE stage is resumed by the next run by itself (which
// says so), every stage runs, the report and the first exchange's image exist, and a third run
// reuses the finished stages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageSize } from '../../src/data/index.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Starts `demo --quick` and SIGKILLs it once the VAE stage has saved its first checkpoint. */
async function killDuringVaeStage(out: string, root: string): Promise<void> {
  const child = spawn(process.execPath, [main, 'demo', '--quick', '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
  const latest = join(root, 'sft', 'vae', 'checkpoints', 'latest');
  const t0 = Date.now();
  while (!existsSync(latest)) {
    assert.equal(child.exitCode, null, `the demo ended before the VAE stage checkpointed:\n${stderr}`);
    assert.ok(Date.now() - t0 < 300_000, 'no VAE checkpoint within 5 minutes');
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  assert.ok(!existsSync(join(root, 'sft', 'vae', 'ae.safetensors')), 'killed before the VAE stage finished');
}

test('demo --quick killed during the VAE stage resumes by itself, runs every stage, then reuses them', async () => {
  const out = mkdtempSync(join(tmpdir(), 'demo-'));
  try {
    await killDuringVaeStage(out, join(out, 'UniCharacter-Tessel', 'quick'));
    const first = execFileSync(process.execPath, [main, 'demo', '--quick', '--out', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
    assert.match(first, /resuming the interrupted VAE stage from step \d+/);
    for (const stage of ['Unified-SFT', 'Character-GRPO', 'evaluation', 'server with the web UI', 'first exchange']) assert.match(first, new RegExp(stage));
    assert.match(first, /serving on http:\/\/127\.0\.0\.1:\d+/);
    const root = join(out, 'UniCharacter-Tessel', 'quick');
    const image = join(root, 'first-exchange.png');
    assert.match(first, new RegExp(`image: ${image.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    const size = await imageSize(new Uint8Array(readFileSync(image)));
    assert.equal(size.format, 'png');
    const report = readFileSync(join(root, 'eval', 'report.md'), 'utf8');
    for (const section of ['Knowledge QA', 'Memorization', 'Personality', 'VQA']) assert.match(report, new RegExp(section));
    assert.ok(existsSync(join(root, 'grpo', 'model', 'unicharacter.json')));
    const timings = JSON.parse(readFileSync(join(root, 'timings.json'), 'utf8')) as { stages: { name: string; reused: boolean }[] };
    assert.ok(timings.stages.every((s) => !s.reused));

    const second = execFileSync(process.execPath, [main, 'demo', '--quick', '--out', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
    assert.equal((second.match(/finished in an earlier run: reusing it/g) ?? []).length, 3);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
