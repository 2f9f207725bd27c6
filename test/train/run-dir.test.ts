// The run directory: config.json checks, metrics.jsonl, atomic checkpoints with a `latest`
// pointer that a crash (SIGKILL of a child process) at any moment never leaves broken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import {
  ConfigMismatchError, RunDir, checkCheckpoint, diffConfig, readLatestCheckpoint, readMetrics,
} from '../../src/train/index.js';
import { startChild, withTempDir } from './helpers.js';

const config = { model: { dim: 4, layers: 2 }, optimizer: { lr: 1e-3, betas: [0.9, 0.95] }, saveEvery: 5 };

test('a fresh run writes config.json, metrics lines, samples/ and checkpoints with a latest pointer', async () => {
  await withTempDir(async (root) => {
    const run = RunDir.open(root, config);
    assert.deepEqual(JSON.parse(readFileSync(join(root, 'config.json'), 'utf8')), config);
    assert.ok(existsSync(join(root, 'samples')));
    run.appendMetrics({ step: 1, loss: 2.5 });
    run.appendMetrics({ step: 2, loss: 2.25, ce: 1 });
    assert.equal(run.latestCheckpoint(), null);
    const info = await run.saveCheckpoint(2, (dir) => writeFileSync(join(dir, 'w.bin'), 'abc'));
    assert.equal(info.step, 2);
    assert.equal(readFileSync(join(root, 'checkpoints', 'latest'), 'utf8'), 'step-2\n');
    assert.deepEqual(run.latestCheckpoint(), { step: 2, dir: join(root, 'checkpoints', 'step-2') });
    const manifest = JSON.parse(readFileSync(join(info.dir, 'checkpoint.json'), 'utf8'));
    assert.deepEqual(manifest.files, [{ path: 'w.bin', bytes: 3 }]);
    assert.equal(run.samplePath(120, 'reply.txt'), join(root, 'samples', 'step-000120-reply.txt'));
    run.close();
    assert.deepEqual(readMetrics(join(root, 'metrics.jsonl')), [{ step: 1, loss: 2.5 }, { step: 2, loss: 2.25, ce: 1 }]);
    assert.ok(!existsSync(join(root, 'run.lock')), 'close releases the lock');
  });
});

test('an existing run is refused without resume, and a second open while one is live is refused', async () => {
  await withTempDir(async (root) => {
    const run = RunDir.open(root, config);
    assert.throws(() => RunDir.open(root, config, { resume: true }), /in use by this process/);
    run.appendMetrics({ step: 1, loss: 1 });
    run.close();
    assert.throws(() => RunDir.open(root, config), /already holds a run.*resume/);
    RunDir.open(root, config, { resume: true }).close();
  });
});

test('resume refuses a config that differs in keys that matter, listing them', async () => {
  await withTempDir(async (root) => {
    RunDir.open(root, config).close();
    const changed = { model: { dim: 8, layers: 2 }, optimizer: { lr: 1e-3, betas: [0.9, 0.99] }, saveEvery: 50, extra: true };
    let err: unknown;
    try {
      RunDir.open(root, changed, { resume: true });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigMismatchError, String(err));
    assert.deepEqual(err.differences.map((d) => d.key), ['extra', 'model.dim', 'optimizer.betas.1']);
    assert.match(err.message, /extra, model\.dim, optimizer\.betas\.1/);
    assert.match(err.message, /model\.dim: stored 4, given 8/);
    assert.match(err.message, /extra: stored \(absent\), given true/);
    assert.ok(!err.message.includes('saveEvery'), 'saveEvery does not change what a run computes');
    assert.ok(!existsSync(join(root, 'run.lock')), 'a refused open leaves no lock');
    // only volatile keys differ: accepted, and config.json keeps the run's values
    RunDir.open(root, { ...config, saveEvery: 50 }, { resume: true }).close();
    // ignoreKeys widens the allowance
    RunDir.open(root, { ...changed }, { resume: true, ignoreKeys: ['model', 'optimizer', 'extra', 'saveEvery'] }).close();
  });
});

test('diffConfig compares nested objects and arrays key by key', () => {
  assert.deepEqual(diffConfig({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 3] } }), [{ key: 'b.c.1', stored: 2, given: 3 }]);
  assert.deepEqual(diffConfig({ a: [1] }, { a: [1, 2] }).map((d) => d.key), ['a']);
  assert.deepEqual(diffConfig({ a: { x: 1 } }, { a: { x: 2 } }, ['a']), []);
});

test('discardAfter drops later metrics lines and a torn last line, and later checkpoint folders', async () => {
  await withTempDir(async (root) => {
    const run = RunDir.open(root, config, { keepLast: 10 });
    for (let s = 1; s <= 7; s++) {
      run.appendMetrics({ step: s, loss: 10 - s });
      if (s === 3 || s === 6) await run.saveCheckpoint(s, (dir) => writeFileSync(join(dir, 'x'), String(s)));
    }
    run.close();
    appendFileSync(join(root, 'metrics.jsonl'), '{"step": 8, "lo'); // a crash mid-append
    const again = RunDir.open(root, config, { resume: true, keepLast: 10 });
    const r = again.discardAfter(3);
    assert.deepEqual(r, { droppedLines: 5, removedCheckpoints: [6] });
    assert.deepEqual(again.readMetrics().map((m) => m.step), [1, 2, 3]);
    assert.ok(readFileSync(join(root, 'metrics.jsonl'), 'utf8').endsWith('\n'));
    assert.deepEqual(again.checkpointSteps(), [3]);
    again.appendMetrics({ step: 4, loss: 0 });
    again.close();
    assert.deepEqual(readMetrics(join(root, 'metrics.jsonl')).map((m) => m.step), [1, 2, 3, 4]);
  });
});

test('only the last keepLast checkpoints are kept', async () => {
  await withTempDir(async (root) => {
    const run = RunDir.open(root, {}, { keepLast: 2 });
    for (const s of [5, 10, 15, 20]) await run.saveCheckpoint(s, (dir) => writeFileSync(join(dir, 'x'), 'y'));
    assert.deepEqual(run.checkpointSteps(), [15, 20]);
    assert.deepEqual(readdirSync(join(root, 'checkpoints')).sort(), ['latest', 'step-15', 'step-20']);
    run.close();
  });
});

test('a checkpoint whose writer throws leaves latest and the folder list unchanged', async () => {
  await withTempDir(async (root) => {
    const run = RunDir.open(root, {});
    await run.saveCheckpoint(1, (dir) => writeFileSync(join(dir, 'x'), '1'));
    await assert.rejects(run.saveCheckpoint(2, (dir) => {
      writeFileSync(join(dir, 'x'), 'partial');
      throw new Error('disk full');
    }), /disk full/);
    assert.equal(run.latestCheckpoint()?.step, 1);
    assert.deepEqual(readdirSync(join(root, 'checkpoints')).sort(), ['latest', 'step-1']);
    run.close();
  });
});

test('a checkpoint with a missing or truncated file is reported as broken', async () => {
  await withTempDir(async (root) => {
    const run = RunDir.open(root, {});
    const { dir } = await run.saveCheckpoint(1, (d) => writeFileSync(join(d, 'x'), '12345'));
    run.close();
    writeFileSync(join(dir, 'x'), '12');
    assert.match(checkCheckpoint(dir) ?? '', /x has 2 bytes, the manifest says 5/);
    assert.throws(() => readLatestCheckpoint(root), /names step-1, which is broken/);
  });
});

// ---- crashes: a child writing checkpoints is killed with SIGKILL at each moment of a write ----

function assertLatestLoadable(root: string, expectedStep: number): void {
  const latest = readLatestCheckpoint(root); // throws if the manifest and files disagree
  assert.ok(latest, 'latest exists');
  assert.equal(latest.step, expectedStep);
  torch.scope(() => {
    const t = torch.safetensors.load(join(latest.dir, 'data.safetensors')).tensors.get('x')!;
    assert.equal(t.numel, 256 * 1024);
    assert.equal(t.min().item(), expectedStep);
    assert.equal(t.max().item(), expectedStep);
  });
  assert.deepEqual(JSON.parse(readFileSync(join(latest.dir, 'info.json'), 'utf8')), { step: expectedStep });
}

const PHASES: [phase: string, latestAfterKill: (step: number) => number][] = [
  ['writing', (s) => s - 1],
  ['files-written', (s) => s - 1],
  ['renamed', (s) => s - 1],
  ['latest-written', (s) => s],
  ['pruned', (s) => s],
];

for (const [phase, expected] of PHASES) {
  test(`SIGKILL at '${phase}' leaves latest on a complete checkpoint, and the run resumes`, async () => {
    await withTempDir(async (root) => {
      const child = startChild('checkpoint-writer.js', [root, 'stop-at', phase, '3']);
      await child.waitFor(new RegExp(`^AT ${phase} 3$`));
      child.proc.kill('SIGKILL');
      const exit = await child.exited;
      assert.equal(exit.signal, 'SIGKILL');
      assertLatestLoadable(root, expected(3));
      // Reopening removes the temporary folders and the lock of the dead process; a resume
      // then discards what lies beyond latest and saves on from there.
      const run = RunDir.open(root, { writer: 'checkpoint-writer' }, { resume: true, keepLast: 2 });
      assert.deepEqual(readdirSync(join(root, 'checkpoints')).filter((n) => n.includes('tmp') || n.startsWith('.')), []);
      run.discardAfter(run.latestCheckpoint()!.step);
      assert.ok(run.checkpointSteps().every((s) => s <= expected(3)));
      await run.saveCheckpoint(expected(3) + 1, (dir) => {
        torch.scope(() => torch.safetensors.save(join(dir, 'data.safetensors'), { x: torch.full([256 * 1024], expected(3) + 1) }));
        writeFileSync(join(dir, 'info.json'), JSON.stringify({ step: expected(3) + 1 }));
      });
      run.close();
      assertLatestLoadable(root, expected(3) + 1);
    });
  });
}

test('SIGKILL at random moments of continuous checkpointing never breaks latest', async () => {
  await withTempDir(async (root) => {
    let lastSeen = 0;
    for (const delayMs of [37, 83, 141]) {
      const child = startChild('checkpoint-writer.js', [root, 'forever']);
      await child.waitFor(new RegExp(`^SAVED ${lastSeen + 1}$`));
      await new Promise((r) => setTimeout(r, delayMs));
      child.proc.kill('SIGKILL');
      await child.exited;
      const saved = child.lines.filter((l) => l.startsWith('SAVED ')).map((l) => Number(l.slice(6)));
      const latest = readLatestCheckpoint(root)!;
      // latest is the last reported save, or a newer one the child finished before it could print
      assert.ok(latest.step >= saved[saved.length - 1]!, `latest ${latest.step}, saved ${saved}`);
      assertLatestLoadable(root, latest.step);
      lastSeen = latest.step;
    }
  });
});
