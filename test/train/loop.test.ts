// runTraining: step numbering, metrics, checkpoints at saveEvery and at the end, resume that
// continues exactly, stop requests (AbortSignal, SIGINT in a child process), failing steps, and
// samples that leave the training run's random numbers alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import {
  RunDir, readLatestCheckpoint, readMetrics, runTraining, type StepResult, type TrainingState,
} from '../../src/train/index.js';
import { makeMlpRun } from './fixtures/mlp-run.js';
import { startChild, withTempDir } from './helpers.js';

/** A state holding one counter, saved as a file: enough to check what the loop saves and loads. */
function counterState(): TrainingState & { value: number; loads: string[] } {
  const s = {
    value: 0,
    loads: [] as string[],
    save(dir: string): void {
      writeFileSync(join(dir, 'counter.json'), JSON.stringify({ value: s.value }));
    },
    load(dir: string): void {
      s.loads.push(dir);
      s.value = (JSON.parse(readFileSync(join(dir, 'counter.json'), 'utf8')) as { value: number }).value;
    },
  };
  return s;
}

const counterStep = (s: { value: number }) => (step: number): StepResult => {
  s.value += step;
  return { loss: 1 / step, tokens: 10, metrics: { ce: 0.5 / step } };
};

test('steps count from 1; one metrics line per step; checkpoints at saveEvery and at the end; a plot', async () => {
  await withTempDir(async (root) => {
    const s = counterState();
    const seen: number[] = [];
    const r = await runTraining({
      runDir: root, config: { lr: 1 }, totalSteps: 7, saveEvery: 3, state: s, progress: null,
      trainStep: (k) => {
        seen.push(k);
        return counterStep(s)(k);
      },
      runDirOptions: { keepLast: 10 },
    });
    assert.deepEqual(r, { step: 7, interrupted: false, resumedFrom: null, lastCheckpoint: 7 });
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7]);
    const m = readMetrics(join(root, 'metrics.jsonl'));
    assert.deepEqual(m.map((x) => x.step), [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(m[1]!.loss, 0.5);
    assert.equal(m[1]!.ce, 0.25);
    assert.equal(m[1]!.tokens, 10);
    assert.deepEqual(readdirSync(join(root, 'checkpoints')).sort(), ['latest', 'step-3', 'step-6', 'step-7']);
    assert.deepEqual(JSON.parse(readFileSync(join(root, 'checkpoints', 'step-6', 'counter.json'), 'utf8')), { value: 21 });
    const svg = readFileSync(join(root, 'loss.svg'), 'utf8');
    assert.match(svg, /data-series="loss"/);
    assert.match(svg, /data-series="ce"/);
    assert.ok(!existsSync(join(root, 'run.lock')));
  });
});

test('interrupt (a synchronous stop check) ends the run after its step: no sample for that step, a checkpoint of it', async () => {
  await withTempDir(async (root) => {
    const s = counterState();
    const sampled: number[] = [];
    let stop = false;
    const r = await runTraining({
      runDir: root, config: {}, totalSteps: 10, saveEvery: 100, state: s, progress: null, sampleEvery: 1,
      sample: (k) => void sampled.push(k),
      interrupt: () => stop,
      trainStep: (k) => {
        if (k === 3) stop = true; // raised while step 3 runs, as a worker's shared flag
        return counterStep(s)(k);
      },
    });
    assert.deepEqual(r, { step: 3, interrupted: true, resumedFrom: null, lastCheckpoint: 3 });
    assert.deepEqual(sampled, [1, 2], 'the stopping step is not sampled');
    assert.deepEqual(JSON.parse(readFileSync(join(readLatestCheckpoint(root)!.dir, 'counter.json'), 'utf8')), { value: 6 });
    // Raised before the first step: no step, the start saved as step 0.
    const r0 = await runTraining({ runDir: join(root, 'b'), config: {}, totalSteps: 10, saveEvery: 100, state: counterState(), progress: null, interrupt: () => true, trainStep: () => assert.fail('no step') });
    assert.deepEqual(r0, { step: 0, interrupted: true, resumedFrom: null, lastCheckpoint: 0 });
  });
});

test('resume continues the step numbering from the latest checkpoint and refuses a changed config', async () => {
  await withTempDir(async (root) => {
    const a = counterState();
    const ac = new AbortController();
    const r1 = await runTraining({
      runDir: root, config: { lr: 1 }, totalSteps: 10, saveEvery: 4, state: a, progress: null, signal: ac.signal,
      trainStep: (k) => {
        if (k === 5) ac.abort();
        return counterStep(a)(k);
      },
    });
    assert.deepEqual(r1, { step: 5, interrupted: true, resumedFrom: null, lastCheckpoint: 5 });
    assert.equal(readLatestCheckpoint(root)?.step, 5);

    await assert.rejects(
      runTraining({ runDir: root, config: { lr: 2 }, resume: true, totalSteps: 10, saveEvery: 4, state: counterState(), progress: null, trainStep: () => ({ loss: 1 }) }),
      /differs from the stored config.json in 1 key \(lr\)/,
    );

    const b = counterState();
    const seen: number[] = [];
    const r2 = await runTraining({
      runDir: root, config: { lr: 1 }, resume: true, totalSteps: 10, saveEvery: 4, state: b, progress: null,
      trainStep: (k) => {
        seen.push(k);
        return counterStep(b)(k);
      },
    });
    assert.deepEqual(r2, { step: 10, interrupted: false, resumedFrom: 5, lastCheckpoint: 10 });
    assert.deepEqual(seen, [6, 7, 8, 9, 10]);
    assert.equal(b.value, 55, 'the counter went on from its saved value 15');
    assert.deepEqual(readMetrics(join(root, 'metrics.jsonl')).map((x) => x.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    // resuming a finished run does nothing
    const c = counterState();
    const r3 = await runTraining({ runDir: root, config: { lr: 1 }, resume: true, totalSteps: 10, saveEvery: 4, state: c, progress: null, trainStep: () => assert.fail('no step') });
    assert.deepEqual(r3, { step: 10, interrupted: false, resumedFrom: 10, lastCheckpoint: 10 });
  });
});

test('a step that throws (or returns a NaN loss) saves nothing; the resume truncates metrics.jsonl to the checkpoint', async () => {
  await withTempDir(async (root) => {
    const a = counterState();
    await assert.rejects(runTraining({
      runDir: root, totalSteps: 20, saveEvery: 4, state: a, progress: null,
      trainStep: (k) => {
        if (k === 7) throw new Error('out of memory in step 7');
        return counterStep(a)(k);
      },
    }), /out of memory in step 7/);
    assert.equal(readLatestCheckpoint(root)?.step, 4);
    assert.deepEqual(readMetrics(join(root, 'metrics.jsonl')).map((x) => x.step), [1, 2, 3, 4, 5, 6]);
    assert.ok(!existsSync(join(root, 'run.lock')), 'the lock is released after a failure');

    const b = counterState();
    await assert.rejects(runTraining({
      runDir: root, resume: true, totalSteps: 20, saveEvery: 4, state: b, progress: null,
      trainStep: (k) => (k === 10 ? { loss: NaN } : counterStep(b)(k)),
    }), /step 10: the loss is NaN; stopping without saving \(latest checkpoint: 8\)/);
    assert.deepEqual(readMetrics(join(root, 'metrics.jsonl')).map((x) => x.step), [1, 2, 3, 4, 5, 6, 7, 8, 9]);

    const c = counterState();
    const r = await runTraining({ runDir: root, resume: true, totalSteps: 12, saveEvery: 4, state: c, progress: null, trainStep: counterStep(c) });
    assert.equal(r.resumedFrom, 8);
    assert.deepEqual(readMetrics(join(root, 'metrics.jsonl')).map((x) => x.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.equal(c.value, 78);
  });
});

test('samples are written at sampleEvery without changing the training random numbers', async () => {
  const losses = async (withSamples: boolean): Promise<number[]> => withTempDir(async (root) => {
    torch.manualSeed(3);
    const out: number[] = [];
    await runTraining({
      runDir: root, totalSteps: 6, saveEvery: 6, state: counterState(), progress: null,
      trainStep: () => {
        const v = torch.scope(() => torch.randn([1]).item());
        out.push(v);
        return { loss: Math.abs(v) };
      },
      ...(withSamples ? {
        sampleEvery: 2,
        sample: (step: number, dir: string) => {
          torch.scope(() => torch.randn([100])); // sampling draws from the same generator
          writeFileSync(join(dir, `step-${step}.txt`), 'a reply\n');
        },
      } : {}),
    });
    if (withSamples) assert.deepEqual(readdirSync(join(root, 'samples')).sort(), ['step-2.txt', 'step-4.txt', 'step-6.txt']);
    return out;
  });
  assert.deepEqual(await losses(true), await losses(false));
});

test('a RunDir opened by the caller is used as it is and left open', async () => {
  await withTempDir(async (root) => {
    const run = RunDir.open(root, { a: 1 });
    const s = counterState();
    await runTraining({ runDir: run, totalSteps: 2, saveEvery: 1, state: s, progress: null, trainStep: counterStep(s), plot: false });
    run.appendMetrics({ step: 2, note: 'the caller may still write' });
    run.close();
    assert.equal(readMetrics(run.metricsPath).length, 3);
    assert.ok(!existsSync(join(root, 'loss.svg')), 'plot: false writes no plot');
  });
});

// ---- a real model: bit-for-bit resume ----

async function trainMlp(root: string, totalSteps: number, opts: { resume?: boolean; stopAfter?: number; failAt?: number; initSeed?: number } = {}) {
  const run = makeMlpRun(opts.initSeed ?? 0);
  const ac = new AbortController();
  try {
    const r = await runTraining({
      runDir: root, config: { model: 'mlp', lr: 3e-2, totalSteps }, resume: opts.resume ?? false,
      totalSteps, saveEvery: 4, state: run.state, progress: null, signal: ac.signal,
      trainStep: (k) => {
        if (k === opts.failAt) throw new Error('crash');
        const out = run.trainStep(k);
        if (k === opts.stopAfter) ac.abort();
        return out;
      },
    });
    return { result: r, bits: run.paramBits() };
  } finally {
    run.dispose();
  }
}

const lossesOf = (root: string): number[] => readMetrics(join(root, 'metrics.jsonl')).map((m) => m.loss as number);

test('an MLP with dropout, AdamW, EMA, a JS RNG and a data position resumes bit for bit', async () => {
  await withTempDir(async (tmp) => {
    const ref = join(tmp, 'ref');
    const full = await trainMlp(ref, 14);
    const refLosses = lossesOf(ref);
    assert.equal(refLosses.length, 14);
    assert.ok(refLosses[13]! < refLosses[0]!, `the loss falls: ${refLosses[0]} -> ${refLosses[13]}`);

    // stopped at 6 (checkpoint 6), then a step fails at 11 (checkpoint 8 stays latest, metrics to
    // 10 on disk), then resumed to the end: the same losses and weights as the uninterrupted run
    const cut = join(tmp, 'cut');
    const first = await trainMlp(cut, 14, { stopAfter: 6 });
    assert.deepEqual(first.result, { step: 6, interrupted: true, resumedFrom: null, lastCheckpoint: 6 });
    await assert.rejects(trainMlp(cut, 14, { resume: true, failAt: 11, initSeed: 5 }), /crash/);
    assert.equal(readLatestCheckpoint(cut)?.step, 8);
    torch.manualSeed(999); // whatever the generator holds now is replaced by the checkpoint's
    const last = await trainMlp(cut, 14, { resume: true, initSeed: 77 });
    assert.equal(last.result.resumedFrom, 8);
    assert.deepEqual(readMetrics(join(cut, 'metrics.jsonl')).map((m) => m.step), Array.from({ length: 14 }, (_, i) => i + 1));
    assert.deepEqual(lossesOf(cut), refLosses, 'per-step losses identical');
    assert.deepEqual(last.bits, full.bits, 'final weights and EMA identical bit for bit');
  });
});

test('SIGINT in a child process saves a checkpoint after the current step; a resumed child finishes bit for bit', async () => {
  await withTempDir(async (tmp) => {
    const root = join(tmp, 'run');
    const child = startChild('train-child.js', [root, '30', '10', '0', '40']);
    await child.waitFor(/^STEP 3$/);
    child.proc.kill('SIGINT');
    const exit = await child.exited;
    assert.equal(exit.code, 0, exit.stderr);
    const result = JSON.parse(child.lines.find((l) => l.startsWith('RESULT '))!.slice(7));
    assert.equal(result.interrupted, true);
    assert.ok(result.step >= 3 && result.step < 30, `stopped at ${result.step}`);
    assert.equal(readLatestCheckpoint(root)?.step, result.step, 'the checkpoint is at the step the run stopped');
    assert.equal(readMetrics(join(root, 'metrics.jsonl')).length, result.step);
    assert.ok(!existsSync(join(root, 'run.lock')));

    const resumed = startChild('train-child.js', [root, '30', '10', '1']);
    const exit2 = await resumed.exited;
    assert.equal(exit2.code, 0, exit2.stderr);
    const result2 = JSON.parse(resumed.lines.find((l) => l.startsWith('RESULT '))!.slice(7));
    assert.deepEqual(result2, { step: 30, interrupted: false, resumedFrom: result.step, lastCheckpoint: 30 });
    assert.equal(resumed.lines.find((l) => l.startsWith('STEP ')), `STEP ${result.step + 1}`);

    const ref = join(tmp, 'ref');
    await trainMlp(ref, 30);
    assert.deepEqual(lossesOf(root), lossesOf(ref), 'the interrupted and resumed run matches an uninterrupted one');
  });
});
