// Ending a worker thread in the middle of native calls ends that thread only (docs/engine.md,
// "Worker threads"): before the addon was built with NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS this
// aborted the process within a few tries ("terminate called after throwing an instance of
// 'Napi::Error'"), which took the server down with a cancelled job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('./fixtures/terminate-worker.js', import.meta.url));

test('worker threads ended inside failing and succeeding native calls leave the process alive', () => {
  const r = spawnSync(process.execPath, [fixture, '60'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.signal, null, `the process was killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /SURVIVED 60/);
});
