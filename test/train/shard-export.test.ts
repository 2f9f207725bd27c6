// `unicharacter export` (docs/sharding.md 6): the last checkpoint of a 2-process `shard: full`
// run, consolidated, is the published single-file layout with the weights of one plain process
// on the same global batch (within 1e-6 relative; measured bit-identical), and it and the
// character model folder load strictly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { Bagel, loadCheckpoint } from '../../src/model/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { exportShardedRun } from '../../src/train/index.js';
import { randomVae } from './fixtures/sft-fixtures.js';
import { runShard, worstRelative } from './fixtures/shard-run.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const base = { totalSteps: 2, saveEvery: 2 };

test('export consolidates a 2-process full run into the published layout with the weights of one process; both outputs load strictly', { timeout: 300_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'shard-export-'));
  try {
    const vae = randomVae(work);
    const ref = join(work, 'ref');
    await runShard(ref, vae, 1, { ...base, data: { packsPerRank: 4 } });
    const run = join(work, 'full');
    await runShard(run, vae, 2, { ...base, shard: 'full', data: { packsPerRank: 2 } });

    const out = join(work, 'out');
    const cli = spawnSync(process.execPath, [CLI, 'export', '--run', run, '--checkpoint', 'step-2', '--out', out], { encoding: 'utf8' });
    assert.equal(cli.status, 0, `export failed:\n${cli.stdout}\n${cli.stderr}`);
    assert.match(cli.stdout, /character model: .*character/);

    const refWeights = torch.safetensors.load(join(ref, 'model.safetensors')).tensors;
    const got = torch.safetensors.load(join(out, 'model.safetensors')).tensors;
    for (const k of ['language_model.model.layers.0.self_attn.q_proj.weight', 'language_model.model.layers.0.mlp_moe_gen.down_proj.weight', 'llm2vae.weight', 'latent_pos_embed.pos_embed']) {
      assert.ok(got.has(k), `the export lacks the published key ${k}`);
    }
    const w = worstRelative(refWeights, got); // also: the same key set as the plain run's export
    console.log(`# export of 2 x full, step 2: largest relative difference to one process ${w.rel.toExponential(2)} (${w.key})`);
    assert.ok(w.rel <= 1e-6, `${w.key} differs by ${w.rel} relative`);

    const character = await CharacterModel.load(join(out, 'character')); // strict loads of model and VAE
    const model = new Bagel(character.manifest.modelConfig);
    const r = loadCheckpoint(join(out, 'model.safetensors'), model, { strict: true });
    assert.deepEqual([r.missing, r.unexpected], [[], []]);
    const back = new Map(character.model.stateDict());
    assert.equal(torch.scope(() => back.get('llm2vae.weight')!.sub(refWeights.get('llm2vae.weight')!).abs().max().item()), 0);
    model.dispose();

    assert.throws(() => exportShardedRun({ run: ref, out: join(work, 'bad') }), /not a sharded checkpoint/);
    assert.throws(() => exportShardedRun({ run, checkpoint: 'step-9', out: join(work, 'bad') }), /no checkpoint folder 'step-9'/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
