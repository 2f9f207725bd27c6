// The main job end to end in its reduced form (`unicharacter demo --quick`), as CI runs it:
// every stage runs, the report and the first exchange's image exist, and a second run reuses
// the finished stages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageSize } from '../../src/data/index.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('demo --quick runs every stage, then reuses them', async () => {
  const out = mkdtempSync(join(tmpdir(), 'demo-'));
  try {
    const first = execFileSync(process.execPath, [main, 'demo', '--quick', '--out', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
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
