// Model install (model-install.ts) under kill -9: a child installing a model folder is killed at
// each step of the install, and at random moments of a loop of installs (mid-copy included);
// start-up recovery then leaves exactly one complete model, byte for byte the old or the new one,
// never none, and an empty staging folder. A server restart completes the install of a job that
// died installing once its copy was complete (the job is then 'succeeded'; before that it is
// 'interrupted' and the previous model stays), and the message of a job that died training names
// only the checkpoint its run directory holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ModelChatEngine, Store, startServer } from '../../src/serve/index.js';
import { installModel, recoverInstalls, type InstallPhase } from '../../src/serve/model-install.js';
import { RunDir } from '../../src/train/index.js';
import { withTempDir } from '../train/helpers.js';
import { runAndKill } from './crash.js';

/** A fake character model folder (the installer copies folders; it does not parse weights). */
function modelFolder(dir: string, label: string, megabytes: number): string {
  mkdirSync(join(dir, 'extra'), { recursive: true });
  writeFileSync(join(dir, 'unicharacter.json'), JSON.stringify({ format: 1, label }) + '\n');
  writeFileSync(join(dir, 'model.safetensors'), randomBytes(megabytes * 1024 * 1024));
  writeFileSync(join(dir, 'extra', 'notes.txt'), `model ${label}\n`);
  return dir;
}

/** Every file under dir with its sha256: equal for byte-identical folders. */
function digest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

interface Layout {
  models: string;
  staging: string;
  a: string;
  b: string;
}

function layout(work: string, megabytes = 1): Layout {
  return {
    models: join(work, 'models'),
    staging: join(work, '.staging'),
    a: modelFolder(join(work, 'src-a'), 'A', megabytes),
    b: modelFolder(join(work, 'src-b'), 'B', megabytes),
  };
}

const PHASES: InstallPhase[] = ['copied', 'moved-aside', 'committed', 'cleaned'];

for (const phase of PHASES) {
  test(`kill -9 at '${phase}' while replacing a model: recovery keeps one complete copy (the new one)`, async () => {
    await withTempDir(async (work) => {
      const l = layout(work);
      await installModel(l.a, l.models, 'tessel', l.staging);
      const acked = await runAndKill(['install-at', l.models, l.staging, 'tessel', l.b, phase], 1);
      assert.deepEqual(acked, [phase]);
      const report = recoverInstalls(l.models, l.staging);
      // From 'copied' on the new copy is complete and fsync'd, so the install goes through.
      assert.deepEqual(digest(join(l.models, 'tessel')), digest(l.b));
      assert.deepEqual(report.completed, phase === 'copied' || phase === 'moved-aside' ? ['tessel'] : []);
      assert.deepEqual(readdirSync(l.staging), []);
      assert.deepEqual(readdirSync(l.models), ['tessel']);
    });
  });
}

test('kill -9 during a first install at each step: the model is complete or (before it was copied) absent', async () => {
  await withTempDir(async (work) => {
    const l = layout(work);
    for (const phase of ['copied', 'committed'] as InstallPhase[]) {
      const id = `first-${phase}`;
      await runAndKill(['install-at', l.models, l.staging, id, l.a, phase], 1);
      recoverInstalls(l.models, l.staging);
      assert.deepEqual(digest(join(l.models, id)), digest(l.a), phase);
      assert.deepEqual(readdirSync(l.staging), []);
    }
  });
});

test('kill -9 at moments spread over repeated installs: always one complete model, the last or the next', async () => {
  await withTempDir(async (work) => {
    const l = layout(work, 4);
    const want = { A: digest(l.a), B: digest(l.b) };
    const t0 = performance.now();
    await installModel(l.a, l.models, 'tessel', l.staging);
    const ms = performance.now() - t0;
    const seen = new Set<string>();
    for (let round = 0; round < 8; round++) {
      // Kill delays spread over one install's duration, so the kills land in different steps.
      const acked = await runAndKill(['install', l.models, l.staging, 'tessel', l.a, l.b], 1 + (round % 3), Math.floor((ms * round) / 8));
      const last = acked.at(-1)!;
      const next = last === 'A' ? 'B' : 'A';
      const leftovers = readdirSync(l.staging);
      recoverInstalls(l.models, l.staging);
      const got = digest(join(l.models, 'tessel'));
      const which = JSON.stringify(got) === JSON.stringify(want[last as 'A' | 'B']) ? last : JSON.stringify(got) === JSON.stringify(want[next]) ? next : null;
      assert.ok(which, `round ${round}: the installed folder is neither A nor B (staging held ${leftovers.join(', ')})`);
      seen.add(leftovers.map((n) => n.replace(/-[0-9a-f]{12}$/, '')).join(',') || 'nothing');
      assert.deepEqual(readdirSync(l.staging), []);
      // the next round starts from what is installed now: install A first, so reset to A
      await installModel(l.a, l.models, 'tessel', l.staging);
    }
    console.log(`# staging at the kills: ${[...seen].join(' | ')}`);
  });
});

test('recovery puts an old model back when only it is left, and removes half-written copies', async () => {
  await withTempDir(async (work) => {
    const l = layout(work);
    mkdirSync(l.staging, { recursive: true });
    // A crash between 'moved-aside' and the commit of an install whose new copy is gone.
    const old = join(l.staging, 'tessel.old-0123456789ab');
    cpSync(l.a, old, { recursive: true });
    const copying = join(l.staging, 'tessel.copying-ba9876543210');
    mkdirSync(copying);
    writeFileSync(join(copying, 'unicharacter.json'), '{"format": 1, "lab');
    writeFileSync(join(l.staging, 'stray'), 'x');
    const report = recoverInstalls(l.models, l.staging);
    assert.deepEqual(report.restored, ['tessel']);
    assert.deepEqual(report.completed, []);
    assert.deepEqual(report.removed.sort(), ['stray', 'tessel.copying-ba9876543210']);
    assert.ok(!existsSync(old));
    assert.deepEqual(digest(join(l.models, 'tessel')), digest(l.a));
    assert.deepEqual(readdirSync(l.staging), []);
  });
});

test('a restart completes the install of a job that died installing and names only real checkpoints', async () => {
  await withTempDir(async (dataDir) => {
    const models = join(dataDir, 'models');
    const staging = join(dataDir, '.staging');
    const store = new Store(join(dataDir, 'unicharacter.db'));
    for (const id of ['tessel', 'fox']) store.insertCharacter({ id, name: id, cardJson: '{}', avatarHash: null });
    const installing = store.createJob('customize', { options: {} }, 'tessel');
    store.updateJob(installing.id, { status: 'running', progress: { phase: 'install', step: 4, total: 4, metrics: [], samples: [] } });
    const installed = store.createJob('grpo', { options: {} }, 'fox');
    store.updateJob(installed.id, { status: 'running', progress: { phase: 'install', step: 2, total: 2, metrics: [], samples: [] } });
    const inVae = store.createJob('customize', { options: {} });
    store.updateJob(inVae.id, { status: 'running', progress: { phase: 'vae', step: 0, total: 4 } });
    const none = store.createJob('customize', { options: {} });
    store.updateJob(none.id, { status: 'running', progress: { phase: 'vae', step: 0, total: 4 } });
    store.close();
    // The first job died between moving the old model aside and the commit; the second after
    // its commit, before its status was written. Each job's model folder is in its run folder.
    const old = modelFolder(join(dataDir, 'src-old'), 'old', 1);
    const mine = modelFolder(join(dataDir, 'runs', installing.id, 'character'), 'tessel-new', 1);
    await installModel(old, models, 'tessel', staging);
    await runAndKill(['install-at', models, staging, 'tessel', mine, 'moved-aside'], 1);
    assert.ok(!existsSync(join(models, 'tessel')), 'the crash left no model in place');
    const fox = modelFolder(join(dataDir, 'runs', installed.id, 'model'), 'fox-new', 1);
    await installModel(old, models, 'fox', staging);
    await runAndKill(['install-at', models, staging, 'fox', fox, 'committed'], 1);
    // The VAE stage of the third job had saved a checkpoint at step 3.
    const vaeRun = RunDir.open(join(dataDir, 'runs', inVae.id, 'vae'), { stage: 'vae' });
    vaeRun.appendMetrics({ step: 1, loss: 1 });
    await vaeRun.saveCheckpoint(3, (dir) => writeFileSync(join(dir, 'state.json'), '{}'));
    vaeRun.close();

    const s = await startServer({ dataDir, engine: new ModelChatEngine(models), port: 0 });
    try {
      const job = async (id: string) => (await (await fetch(`${s.url}/v1/jobs/${id}`)).json()) as { status: string; error: string | null; progress: { model?: string; message?: string } };
      const a = await job(installing.id);
      assert.equal(a.status, 'succeeded');
      assert.equal(a.error, null);
      assert.equal(a.progress.model, 'tessel');
      assert.match(a.progress.message!, /install was completed when the server restarted/);
      assert.deepEqual(digest(join(models, 'tessel')), digest(mine));
      const f = await job(installed.id);
      assert.equal(f.status, 'succeeded');
      assert.match(f.progress.message!, /the server stopped after the install/);
      assert.deepEqual(digest(join(models, 'fox')), digest(fox));
      assert.deepEqual(readdirSync(staging), []);
      const b = await job(inVae.id);
      assert.equal(b.status, 'interrupted');
      assert.match(b.error!, new RegExp(`runs/${inVae.id}/vae keeps the VAE stage's checkpoint of step 3`));
      const c = await job(none.id);
      assert.equal(c.status, 'interrupted');
      assert.match(c.error!, /no checkpoint was saved/);
      assert.doesNotMatch(c.error!, /keeps/);
    } finally {
      await s.close();
    }
  });
});

test('a job that died while copying its model stays interrupted, and the previous model is still the one served', async () => {
  await withTempDir(async (dataDir) => {
    const models = join(dataDir, 'models');
    const store = new Store(join(dataDir, 'unicharacter.db'));
    store.insertCharacter({ id: 'tessel', name: 'tessel', cardJson: '{}', avatarHash: null });
    const j = store.createJob('customize', { options: {} }, 'tessel');
    store.updateJob(j.id, { status: 'running', progress: { phase: 'install', step: 4, total: 4, metrics: [], samples: [] } });
    store.close();
    const old = modelFolder(join(dataDir, 'src-old'), 'old', 1);
    modelFolder(join(dataDir, 'runs', j.id, 'character'), 'tessel-new', 1);
    await installModel(old, models, 'tessel', join(dataDir, '.staging'));
    const copying = join(dataDir, '.staging', 'tessel.copying-00112233aabb');
    mkdirSync(copying);
    writeFileSync(join(copying, 'unicharacter.json'), readFileSync(join(dataDir, 'runs', j.id, 'character', 'unicharacter.json')));
    const s = await startServer({ dataDir, engine: new ModelChatEngine(models), port: 0 });
    try {
      const got = (await (await fetch(`${s.url}/v1/jobs/${j.id}`)).json()) as { status: string };
      assert.equal(got.status, 'interrupted');
      assert.deepEqual(digest(join(models, 'tessel')), digest(old));
    } finally {
      await s.close();
    }
  });
});
