// Two LoRA characters over one base in the server (docs/serving.md 10): the model worker loads the
// base once, /health reports each character's own bytes and the shared base once, and replies on
// alternating requests equal those of each character loaded alone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCard, loadSampleCharacter } from '../../src/data/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { ModelChatEngine, startServer, type RunningServer } from '../../src/serve/index.js';
import { expectedAdapterBytes, writeLoraCharacters } from '../character/fixtures/lora-characters.js';

let dir: string;
let server: RunningServer;
const ids: string[] = [];
const USER = 'Where are you going with that parcel?';
const SAMPLING = { temperature: 0.9, seed: 7, maxTokens: 10 };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'serve-shared-base-'));
  server = await startServer({ dataDir: dir, engine: new ModelChatEngine(join(dir, 'models')), port: 0 });
  const { character } = loadSampleCharacter();
  for (const name of ['tessel', 'pip']) {
    const card = new TextDecoder().decode(await exportCard({ ...character, id: name }, 'json', { heldOut: 'include' }));
    const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: card });
    ids.push(((await res.json()) as { id: string }).id);
  }
  await writeLoraCharacters(join(dir, 'base'), ids.map((id) => join(dir, 'models', id)));
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function served(id: string): Promise<string> {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: USER }], temperature: SAMPLING.temperature, seed: SAMPLING.seed, max_tokens: SAMPLING.maxTokens }),
  });
  const body = (await res.json()) as { choices: { message: { content: string } }[] };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.choices[0]!.message.content;
}

test('the server loads a shared base once, reports memory per character, and alternates between characters exactly', async () => {
  const alone: string[] = [];
  let adapterBytes = 0;
  for (const id of ids) {
    const m = await CharacterModel.load(join(dir, 'models', id));
    alone.push((await m.chat([{ role: 'user', content: [{ text: USER }] }], SAMPLING)).text);
    adapterBytes = expectedAdapterBytes(m);
    m.dispose();
  }
  assert.notEqual(alone[0], alone[1], 'the two characters reply differently');
  for (const k of [0, 1, 0, 1, 1, 0]) assert.equal(await served(ids[k]!), alone[k], `request for ${ids[k]}`);

  const health = (await (await fetch(`${server.url}/health`)).json()) as {
    engine: { memory: { characters: { id: string; own_bytes: number; base: string | null }[]; bases: { key: string; bytes: number; characters: string[] }[]; total_bytes: number } };
  };
  const mem = health.engine.memory;
  assert.equal(mem.bases.length, 1, 'one base in memory');
  assert.deepEqual(mem.bases[0]!.characters, [...ids].sort());
  assert.deepEqual(mem.characters.map((c) => [c.id, c.own_bytes, c.base]), [...ids].sort().map((id) => [id, adapterBytes, mem.bases[0]!.key]));
  assert.equal(mem.total_bytes, mem.bases[0]!.bytes + 2 * adapterBytes);
  assert.ok(mem.bases[0]!.bytes > 50 * adapterBytes, `base ${mem.bases[0]!.bytes} bytes`);
});
