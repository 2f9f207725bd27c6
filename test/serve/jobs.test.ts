// Jobs in the server: a real (tiny, quick) customization job runs in the job worker, streams its
// progress over SSE, installs the character model and the character then chats; a running job
// and a queued job cancel; requests are validated in the OpenAI error shape; a restart marks a
// job left 'running' as 'interrupted'. Traffic only on 127.0.0.1.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCard, loadSampleCharacter } from '../../src/data/index.js';
import { ModelChatEngine, Store, startServer, type RunningServer } from '../../src/serve/index.js';
import { pushHistory } from '../../src/serve/jobs.js';
import { RunDir, checkCheckpoint, readLatestCheckpoint, type Json } from '../../src/train/index.js';

let dir: string;
let server: RunningServer;
let id: string;

/** Quick settings (as `unicharacter demo --quick`, smaller): seconds on a CPU. */
const QUICK = { steps: 4, vae_steps: 10, image_size: 32, vit_image_size: 28, sample_every: 2 };

interface SseEvent {
  event: string;
  data: unknown;
}

/** Reads an SSE stream to its end (or until `until` says stop), returning its named events. */
async function readEvents(url: string, until?: (e: SseEvent) => boolean, timeoutMs = 50_000): Promise<SseEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const res = await fetch(url, { signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const out: SseEvent[] = [];
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buf += decoder.decode(value, { stream: !done });
      let at: number;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, at);
        buf = buf.slice(at + 2);
        const lines = block.split('\n');
        const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
        const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (!event) continue; // a comment (ping)
        const e = { event, data: JSON.parse(data) as unknown };
        out.push(e);
        if (until?.(e)) {
          await reader.cancel();
          return out;
        }
      }
      if (done) return out;
    }
  } finally {
    clearTimeout(timer);
  }
}

async function post(path: string, body: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function getJob(jobId: string): Promise<Record<string, any>> {
  return (await (await fetch(`${server.url}/v1/jobs/${jobId}`)).json()) as Record<string, any>;
}

/**
 * Checks a cancelled job's message against its run folder: the checkpoint it names (of the run,
 * else of its VAE stage) is complete on disk, and once the worker has ended (`ended`) it is the
 * folder's latest; or it names none and there is none. Returns the step named, or null.
 */
function assertNamesCheckpointOnDisk(message: string, jobId: string, vaeStage: boolean, ended: boolean): number | null {
  const run = join(dir, 'runs', jobId);
  const root = vaeStage ? join(run, 'vae') : run;
  const latest = readLatestCheckpoint(root); // null, or a folder whose manifest and files agree
  const m = /keeps the (VAE stage's )?checkpoint of step (\d+)$/.exec(message);
  if (!m) {
    if (ended) assert.equal(latest, null, `the message names no checkpoint, but ${latest?.dir} exists`);
    // Without a training checkpoint: the finished VAE stage (its weights on disk), or nothing.
    if (!vaeStage && existsSync(join(run, 'vae', 'ae.safetensors'))) assert.match(message, /\/vae keeps the finished VAE stage \(no training checkpoint yet\)$/);
    else assert.match(message, /; no checkpoint was saved$/);
    return null;
  }
  assert.equal(Boolean(m[1]), vaeStage, message);
  const step = Number(m[2]);
  assert.equal(checkCheckpoint(join(root, 'checkpoints', `step-${step}`), step), null, `step ${step}, named by the message, is complete on disk`);
  if (ended) assert.equal(latest?.step, step, `the message names step ${step}; the folder's latest is ${latest?.step}`);
  return step;
}

/** Cancels a running job and waits for its event stream to end: the time from the request to the
 * stream's `done`, and the job row then (its status must be `cancelled`). */
async function cancelAndSettle(jobId: string, eventsUrl: string) {
  const t0 = performance.now();
  const c = await post(`/v1/jobs/${jobId}/cancel`, {});
  assert.equal(c.status, 200);
  const events = await readEvents(eventsUrl);
  const ms = performance.now() - t0;
  assert.equal(events.at(-1)!.event, 'done');
  const job = await getJob(jobId);
  assert.equal(job.status, 'cancelled');
  return { ms, job };
}

/** The job once its worker has ended: a cancel settled at the deadline says the worker is still
 * finishing its step until then. */
async function afterWorkerEnded(jobId: string): Promise<Record<string, any>> {
  for (let i = 0; i < 600; i++) {
    const job = await getJob(jobId);
    if (!/its worker is finishing its step/.test(job.progress.message)) return job;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`the worker of ${jobId} did not end within 60 s`);
}

/** The run folder can be resumed: its lock is free and its stored config opens it again. */
function assertResumable(root: string): void {
  const config = JSON.parse(readFileSync(join(root, 'config.json'), 'utf8')) as Json;
  RunDir.open(root, config, { resume: true }).close();
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'serve-jobs-'));
  server = await startServer({ dataDir: dir, engine: new ModelChatEngine(join(dir, 'models')), port: 0 });
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:/);
  const { character } = loadSampleCharacter();
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(await exportCard(character, 'json', { heldOut: 'include' })) });
  assert.equal(res.status, 201);
  id = ((await res.json()) as { id: string }).id;
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('invalid job requests are 400s in the OpenAI error shape naming the field', async () => {
  const cases: [unknown, string][] = [
    [{ kind: 'train', character: id }, 'kind'],
    [{ kind: 'customize' }, 'character'],
    [{ kind: 'customize', character: id, options: { steps: 0 } }, 'options.steps'],
    [{ kind: 'customize', character: id, options: { steps: 'many' } }, 'options.steps'],
    [{ kind: 'grpo', character: id, options: { epochs: 1.5 } }, 'options.epochs'],
    [{ kind: 'eval', character: id, options: { bogus: 1 } }, 'options'],
  ];
  for (const [body, param] of cases) {
    const r = await post('/v1/jobs', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.equal(r.body.error.param, param, JSON.stringify(r.body));
  }
  const notJson = await fetch(`${server.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
  assert.equal(notJson.status, 400);
});

test('a job for an unknown character is 404; GRPO before any customization is 409', async () => {
  const r = await post('/v1/jobs', { kind: 'customize', character: 'nobody-here', options: QUICK });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.type, 'not_found_error');
  assert.equal(r.body.error.param, 'character');
  const g = await post('/v1/jobs', { kind: 'grpo', character: id });
  assert.equal(g.status, 409);
  assert.equal(g.body.error.code, 'model_not_ready');
  const missing = await fetch(`${server.url}/v1/jobs/job-00000000-0000-0000-0000-000000000000`);
  assert.equal(missing.status, 404);
  const events = await fetch(`${server.url}/v1/jobs/nope/events`);
  assert.equal(events.status, 404);
});

test('a customization job streams progress, installs the model, and the character then chats', async () => {
  const created = await post('/v1/jobs', { kind: 'customize', character: id, options: QUICK });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const job = created.body;
  assert.equal(job.object, 'job');
  assert.equal(job.kind, 'customize');
  assert.equal(job.character_id, id);
  assert.ok(['queued', 'running'].includes(job.status));

  const events = await readEvents(`${server.url}/v1/jobs/${job.id}/events`);
  const last = events.at(-1)!;
  assert.equal(last.event, 'done', JSON.stringify(last.data));
  assert.equal((last.data as { status: string }).status, 'succeeded');
  const progress = events.filter((e) => e.event === 'progress').map((e) => e.data as { step: number; total: number | null; phase: string; metrics: { step: number; loss: number }[] });
  assert.ok(progress.length >= 3, `progress events: ${progress.length}`);
  const steps = progress.map((p) => p.step);
  for (let i = 1; i < steps.length; i++) assert.ok(steps[i]! >= steps[i - 1]!, `steps never go back: ${steps.join(',')}`);
  assert.ok(new Set(steps).size >= 2, `steps increase: ${steps.join(',')}`);
  assert.equal(steps.at(-1), QUICK.steps);
  assert.ok(progress.some((p) => p.phase === 'vae'), 'the VAE stage shows');

  // The row: final progress with the loss history, latest metrics and sample images.
  const done = await getJob(job.id);
  assert.equal(done.status, 'succeeded');
  assert.equal(done.error, null);
  const p = done.progress;
  assert.equal(p.step, QUICK.steps);
  assert.equal(p.total, QUICK.steps);
  assert.deepEqual(p.metrics.map((m: { step: number }) => m.step), [1, 2, 3, 4]);
  assert.ok(p.metrics.every((m: { loss: number }) => Number.isFinite(m.loss)));
  assert.equal(typeof p.latest.loss, 'number');
  assert.equal(p.model, id);
  assert.ok(p.samples.length >= 1, 'sample images are kept');
  const img = await fetch(server.url + p.samples[0].url);
  assert.equal(img.status, 200);
  assert.equal(img.headers.get('content-type'), 'image/png');
  assert.match(p.samples[0].hash, /^[0-9a-f]{64}$/);
  assert.ok(existsSync(join(dir, 'runs', job.id, 'metrics.jsonl')), 'the run directory is under runs/<job id>');

  // Installed where the engine serves it; no staging leftovers.
  const manifest = JSON.parse(readFileSync(join(dir, 'models', id, 'unicharacter.json'), 'utf8')) as { imageSize: number };
  assert.equal(manifest.imageSize, QUICK.image_size);
  const list = (await (await fetch(`${server.url}/v1/jobs`)).json()) as { data: { id: string }[] };
  assert.ok(list.data.some((j) => j.id === job.id));

  const chat = await post('/v1/chat/completions', { model: id, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 6, temperature: 0 });
  assert.equal(chat.status, 200, JSON.stringify(chat.body));
  assert.equal(typeof chat.body.choices[0].message.content, 'string');

  // A finished job's stream answers at once: its progress, then done.
  const again = await readEvents(`${server.url}/v1/jobs/${job.id}/events`);
  assert.deepEqual(again.map((e) => e.event), ['progress', 'done']);
});

test('a GRPO job honours its preset: project runs with the project fields, reference refuses counts that do not fit its layout', async () => {
  const bad = await post('/v1/jobs', { kind: 'grpo', character: id, options: { preset: 'official' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.param, 'options.preset');
  // Two prompts of two rollouts, two sampler steps, one epoch: seconds on a CPU.
  const small = { epochs: 1, prompts_per_epoch: 2, group_size: 2, num_steps: 2, eval_steps: 2, eval_every: 0, window_size: 1 };
  const project = await post('/v1/jobs', { kind: 'grpo', character: id, options: { ...small, preset: 'project' } });
  assert.equal(project.status, 201, JSON.stringify(project.body));
  const last = (await readEvents(`${server.url}/v1/jobs/${project.body.id}/events`)).at(-1)!;
  assert.equal((last.data as { status: string }).status, 'succeeded', JSON.stringify(last.data));
  const cfg = JSON.parse(readFileSync(join(dir, 'runs', project.body.id, 'config.json'), 'utf8')) as Record<string, any>;
  assert.equal(cfg.preset, 'project');
  // The fields the project preset governs (docs/fidelity.md), against the reference's values.
  assert.equal(cfg.maxGradNorm, 1);
  assert.equal(cfg.windowStart, 'per-rollout');
  assert.deepEqual(cfg.layout, { kind: 'prompt-groups' });
  assert.equal(cfg.updateAccounting, 'capped-at-epoch');
  // A job without options.lr takes the preset's learning rate (the CPU-size 3e-4, docs/grpo-settings.md).
  assert.equal(cfg.lr, 3e-4);
  // Without a preset the job is the reference: 2 rollouts per prompt fill its 8 x 6 sampling
  // batch with 24 prompts, so 2 prompts per epoch is refused by the config check, naming 'project'.
  const reference = await post('/v1/jobs', { kind: 'grpo', character: id, options: small });
  assert.equal(reference.status, 201);
  await readEvents(`${server.url}/v1/jobs/${reference.body.id}/events`);
  const row = await getJob(reference.body.id);
  assert.equal(row.status, 'failed');
  assert.match(row.error, /preset 'reference'.*preset 'project'/);
});

test('cancel reaches a GRPO epoch part-way (rollouts, sampler steps, scoring, update steps): the worker ends by itself within a second, naming the checkpoint left', async () => {
  // Epochs of 16 rollouts: several seconds each on a CPU, so the cancel lands inside epoch 2.
  const options = { epochs: 1000, prompts_per_epoch: 4, group_size: 4, num_steps: 6, eval_steps: 2, eval_every: 0, window_size: 2, save_every: 1, preset: 'project' };
  const running = await post('/v1/jobs', { kind: 'grpo', character: id, options });
  assert.equal(running.status, 201, JSON.stringify(running.body));
  const url = `${server.url}/v1/jobs/${running.body.id}/events`;
  await readEvents(url, (e) => e.event === 'progress' && (e.data as { step: number }).step >= 1, 120_000);
  // Into the next epoch's rollouts (or its update) before the cancel.
  await new Promise((r) => setTimeout(r, 300));
  const { ms, job } = await cancelAndSettle(running.body.id, url);
  // The epoch under way is dropped: the checkpoint left is the last finished epoch's.
  // The worker read the stop flag inside the epoch and ended by itself, before the deadline.
  assert.equal(job.progress.stopped_by, 'worker', job.progress.message);
  const named = assertNamesCheckpointOnDisk(job.progress.message, running.body.id, false, true);
  assert.equal(named, job.progress.step, `the checkpoint left is the last finished epoch (${named} vs ${job.progress.step})`);
  assert.equal(job.progress.message, `cancelled at step ${job.progress.step}; runs/${running.body.id} keeps the checkpoint of step ${named}`);
  assertResumable(join(dir, 'runs', running.body.id));
  console.log(`# cancel during a GRPO epoch: done ${ms.toFixed(0)} ms after the request, stopped by the ${job.progress.stopped_by}, after epoch ${job.progress.step}`);
  assert.ok(ms < 1000, `cancel took ${ms.toFixed(0)} ms`);
});

test('cancel stops a running job (status cancelled) and a queued one at once', async () => {
  const before = readFileSync(join(dir, 'models', id, 'model.safetensors'));
  const running = await post('/v1/jobs', { kind: 'customize', character: id, options: { ...QUICK, steps: 5000, vae_steps: 2, save_every: 5000 } });
  assert.equal(running.status, 201);
  const queued = await post('/v1/jobs', { kind: 'customize', character: id, options: QUICK });
  assert.equal(queued.status, 201);
  assert.equal(queued.body.status, 'queued');

  const q = await post(`/v1/jobs/${queued.body.id}/cancel`, {});
  assert.equal(q.status, 200);
  assert.equal(q.body.status, 'cancelled');

  // Wait for training steps, then cancel.
  const url = `${server.url}/v1/jobs/${running.body.id}/events`;
  await readEvents(url, (e) => e.event === 'progress' && (e.data as { step: number }).step >= 1);
  const c = await post(`/v1/jobs/${running.body.id}/cancel`, {});
  assert.equal(c.status, 200);
  const events = await readEvents(url);
  assert.equal(events.at(-1)!.event, 'done');
  const job = await getJob(running.body.id);
  assert.equal(job.status, 'cancelled');
  assert.ok(job.progress.step >= 1 && job.progress.step < 5000, `stopped early at ${job.progress.step}`);
  // No checkpoint before step 5000 but the stop's own, which the deadline may have cut: the
  // message names what the folder holds. The installed model is untouched.
  const final = await afterWorkerEnded(running.body.id);
  const named = assertNamesCheckpointOnDisk(final.progress.message, running.body.id, false, true);
  assert.equal(named, final.progress.step, 'the stop saved the step it stopped at');
  assert.ok(readFileSync(join(dir, 'models', id, 'model.safetensors')).equals(before));
  assert.equal((await getJob(queued.body.id)).status, 'cancelled');
});

test('cancel reaches an SFT step within a second, naming only a checkpoint on disk, and the run stays resumable', async () => {
  // A checkpoint every step, so the cancel finds one on disk and may land in a save.
  const running = await post('/v1/jobs', { kind: 'customize', character: id, options: { ...QUICK, steps: 5000, vae_steps: 2, save_every: 1, sample_every: 1 } });
  assert.equal(running.status, 201);
  const url = `${server.url}/v1/jobs/${running.body.id}/events`;
  await readEvents(url, (e) => e.event === 'progress' && (e.data as { step: number }).step >= 2);
  const { ms, job } = await cancelAndSettle(running.body.id, url);
  const byWorker = job.progress.stopped_by === 'worker';
  assert.ok(byWorker || job.progress.stopped_by === 'deadline', job.progress.stopped_by);
  assert.equal(/its worker is finishing its step/.test(job.progress.message), !byWorker, job.progress.message);
  // Step 2 was saved before the cancel: what the message names at the terminal status is on disk.
  const named = assertNamesCheckpointOnDisk(job.progress.message, running.body.id, false, byWorker);
  assert.ok(named !== null && named >= 2 && named <= job.progress.step, `named ${named}, stopped at ${job.progress.step}`);
  // Once the worker has ended (it finishes its step and saves it), the message names that checkpoint.
  const final = await afterWorkerEnded(running.body.id);
  assert.equal(final.status, 'cancelled');
  const last = assertNamesCheckpointOnDisk(final.progress.message, running.body.id, false, true);
  assert.equal(last, final.progress.step, 'the stop saved the step it stopped at');
  assertResumable(join(dir, 'runs', running.body.id));
  console.log(`# cancel during SFT: done ${ms.toFixed(0)} ms after the request, stopped by the ${job.progress.stopped_by}, at step ${job.progress.step} naming checkpoint ${named}; the worker ended at step ${final.progress.step}`);
  assert.ok(ms < 1000, `cancel took ${ms.toFixed(0)} ms`);
});

test('cancel reaches the VAE stage within a second, and the message names the checkpoint it left', async () => {
  const running = await post('/v1/jobs', { kind: 'customize', character: id, options: { ...QUICK, vae_steps: 5000 } });
  assert.equal(running.status, 201);
  const url = `${server.url}/v1/jobs/${running.body.id}/events`;
  const seen = await readEvents(url, (e) => e.event === 'progress' && ((e.data as { vae?: { step: number } }).vae?.step ?? 0) >= 2);
  const stepAtCancel = (seen.at(-1)!.data as { vae: { step: number } }).vae.step;
  const { ms, job } = await cancelAndSettle(running.body.id, url);
  const run = join(dir, 'runs', running.body.id);
  assert.equal(readLatestCheckpoint(run), null, 'SFT never started');
  assert.match(job.progress.message, new RegExp(`^cancelled during the VAE stage at step ${job.progress.vae.step}[ ;]`));
  assertNamesCheckpointOnDisk(job.progress.message, running.body.id, true, job.progress.stopped_by === 'worker');
  const final = await afterWorkerEnded(running.body.id);
  const named = assertNamesCheckpointOnDisk(final.progress.message, running.body.id, true, true);
  // It stopped at the next step boundaries (the request, then the step under way), not later, and saved it.
  assert.ok(named !== null && named >= stepAtCancel && named <= stepAtCancel + 3, `cancelled at VAE step ${stepAtCancel}, checkpoint ${named}`);
  assertResumable(join(run, 'vae'));
  console.log(`# cancel during the VAE stage: done ${ms.toFixed(0)} ms after the request, stopped by the ${job.progress.stopped_by}, at VAE step ${stepAtCancel}, checkpoint ${named}`);
  assert.ok(ms < 1000, `cancel took ${ms.toFixed(0)} ms`);
});

test('a restart marks a job left running as interrupted', async () => {
  const other = mkdtempSync(join(tmpdir(), 'serve-jobs-restart-'));
  try {
    const store = new Store(join(other, 'unicharacter.db'));
    const left = store.createJob('customize', { options: {} });
    store.updateJob(left.id, { status: 'running', progress: { step: 3, total: 10 } });
    store.close();
    const s = await startServer({ dataDir: other, engine: new ModelChatEngine(join(other, 'models')), port: 0 });
    try {
      const j = (await (await fetch(`${s.url}/v1/jobs/${left.id}`)).json()) as { status: string; error: string; progress: { step: number } };
      assert.equal(j.status, 'interrupted');
      assert.match(j.error, /server stopped/);
      assert.equal(j.progress.step, 3);
      const ev = await readEvents(`${s.url}/v1/jobs/${left.id}/events`);
      assert.deepEqual(ev.map((e) => e.event), ['progress', 'error']);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test('the loss history stays bounded and spans the run', () => {
  let h: { step: number; loss: number }[] = [];
  for (let s = 1; s <= 5000; s++) h = pushHistory(h, { step: s, loss: 1 / s }, 500);
  assert.ok(h.length <= 500);
  assert.ok(h[0]!.step <= 20, `starts near the beginning: ${h[0]!.step}`);
  assert.equal(h.at(-1)!.step, 5000);
  for (let i = 1; i < h.length; i++) assert.ok(h[i]!.step > h[i - 1]!.step);
});
