// Reply images for clients that read only `content` (docs/serving.md 4): with `imageLinks` the
// reply's image is a markdown link to this server, openable without the Authorization header
// through its signature (and only that image); such links in incoming history never reach the
// model as text.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCard, imageSize, loadSampleCharacter } from '../../src/data/index.js';
import { MICRO } from '../../src/model/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { ModelChatEngine, startServer, type RunningServer } from '../../src/serve/index.js';

const KEY = 'image-links-key';
let dir: string;
let server: RunningServer;
let id: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'serve-links-'));
  server = await startServer({ dataDir: dir, engine: new ModelChatEngine(join(dir, 'models')), port: 0, apiKey: KEY, chats: { imageLinks: true } });
  const { character } = loadSampleCharacter();
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png', authorization: `Bearer ${KEY}` }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
  id = ((await res.json()) as { id: string }).id;
  const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts: [character.description] });
  m.save(join(dir, 'models', id));
  m.dispose();
});

after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function chat(messages: unknown[], extra: Record<string, unknown> = {}) {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: id, messages, max_tokens: 3, temperature: 0, ...extra }),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
}

test('the reply image is a signed markdown link in content; the link opens that image only', async () => {
  const r = await chat([{ role: 'user', content: 'Show me the market.' }], { modalities: ['text', 'image'] });
  const content = r.choices[0]!.message.content;
  const m = /!\[image\]\((http:\/\/[^)]+\/v1\/images\/([0-9a-f]{64})\?sig=([0-9a-f]+))\)$/.exec(content);
  assert.ok(m, `no image link in ${JSON.stringify(content)}`);
  const img = await fetch(m[1]!); // no Authorization header, as an <img> fetches it
  assert.equal(img.status, 200);
  assert.equal((await imageSize(new Uint8Array(await img.arrayBuffer()))).width, 32);
  assert.equal((await fetch(`${server.url}/v1/images/${m[2]}`)).status, 401, 'without the signature the key is needed');
  const forged = m[3]!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  assert.equal((await fetch(`${server.url}/v1/images/${m[2]}?sig=${forged}`)).status, 401);
  assert.equal((await fetch(`${server.url}/v1/characters?sig=${m[3]}`)).status, 401, 'a signature opens nothing else');

  // The link coming back in the history is not fed to the model as text.
  const text = content.slice(0, content.indexOf('![image]')).replace(/\n+$/, '');
  const withLink = await chat([{ role: 'user', content: 'Show me the market.' }, { role: 'assistant', content }, { role: 'user', content: 'Nice!' }]);
  const without = await chat([{ role: 'user', content: 'Show me the market.' }, { role: 'assistant', content: text }, { role: 'user', content: 'Nice!' }]);
  assert.equal(withLink.usage.prompt_tokens, without.usage.prompt_tokens);
  // Text-only replies carry no link.
  assert.doesNotMatch((await chat([{ role: 'user', content: 'hi' }])).choices[0]!.message.content, /!\[image\]/);
});
