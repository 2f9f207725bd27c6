// `unicharacter launch --nnodes 2` (src/torch/launch.ts): two launchers on 127.0.0.1 as nodes 0
// and 1 of 2 nodes x 2 processes set torchrun's variables (node R runs global ranks 2R, 2R+1),
// the four ranks form one group (all-reduce of RANK+1 is 1+2+3+4 = 10), and hybrid sharding's
// sub-groups form over the nodes through the run's store (docs/sharding.md 5): the shard groups
// {0, 1} (node 0) and {2, 3} (node 1) sum RANK+1 to 3 and 7, the replica groups {0, 2} and {1, 3},
// each spanning both nodes, to 4 and 6.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { freePort } from '../../src/torch/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', '..', 'src', 'cli', 'main.js');
const WORKER = join(here, 'fixtures', 'node-worker.js');

function node(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, 'launch', ...args, WORKER], { env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => resolve({ code, out }));
  });
}

test('two launchers as 2 nodes x 2 processes: torchrun variables, one group of 4, hybrid sub-groups across the nodes', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const common = ['--nproc', '2', '--nnodes', '2', '--master-addr', '127.0.0.1', `--master-port=${port}`];
  const [n0, n1] = await Promise.all([node([...common, '--node-rank', '0']), node([...common, '--node-rank', '1'])]);
  for (const [r, n] of [[0, n0], [1, n1]] as const) assert.equal(n.code, 0, `node ${r}:\n${n.out}`);
  const out = n0.out + n1.out;
  for (let g = 0; g < 4; g++) {
    const node = Math.floor(g / 2);
    const env = `[rank ${g}] ENV RANK=${g} WORLD_SIZE=4 LOCAL_RANK=${g % 2} LOCAL_WORLD_SIZE=2 GROUP_RANK=${node} MASTER_ADDR=127.0.0.1 MASTER_PORT=${port}`;
    assert.ok((node === 0 ? n0 : n1).out.includes(env), `missing '${env}' in:\n${out}`);
    assert.ok(out.includes(`[rank ${g}] SUM ${g} 4 10`), `rank ${g}: all-reduce sum, in:\n${out}`);
    const shardSum = node === 0 ? 3 : 7;
    const replicaSum = g % 2 === 0 ? 4 : 6;
    assert.ok(out.includes(`[rank ${g}] HYBRID ${g} shards ${g % 2}/2:${shardSum} replicas ${node}/2:${replicaSum}`), `rank ${g}: hybrid sub-group sums, in:\n${out}`);
  }
  const bad = await node(['--nproc', '2', '--nnodes', '2', '--node-rank', '2', '--master-addr', '127.0.0.1']);
  assert.equal(bad.code, 2);
  assert.match(bad.out, /--node-rank 2 must be below --nnodes 2/);
  const noAddr = await node(['--nproc', '1', '--nnodes', '2', '--node-rank', '1']);
  assert.equal(noAddr.code, 2);
  assert.match(noAddr.out, /--nnodes 2 needs --master-addr/);
});
