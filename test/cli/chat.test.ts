// The terminal chat's input line: "/image <file> [text]" becomes a user turn with the image first
// (it reaches the model's ViT path like a chat request's image part, docs/serving.md 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { userTurnOf } from '../../src/cli/chat.js';

test('a typed line is a text turn; /image attaches the file before the question', () => {
  assert.deepEqual(userTurnOf('hello there'), { role: 'user', content: [{ text: 'hello there' }] });
  const png = new Uint8Array([1, 2, 3]);
  const read: string[] = [];
  const turn = userTurnOf('/image pics/fox.png what is she holding?', (p) => (read.push(p), png));
  assert.deepEqual(read, ['pics/fox.png']);
  assert.deepEqual(turn, { role: 'user', content: [{ image: png }, { text: 'what is she holding?' }] });
  assert.deepEqual(userTurnOf('/image a.png', () => png).content, [{ image: png }]);
  assert.throws(() => userTurnOf('/image /no/such/file.png'), /ENOENT/);
});

test('chat --help prints its usage; bad numbers are refused naming the option', async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const help = spawnSync(process.execPath, [main, 'chat', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^unicharacter chat <character>/);
  assert.match(help.stdout, /\/image <file> \[text\]/);
  const bad = spawnSync(process.execPath, [main, 'chat', 'x', '--max-tokens', '0'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--max-tokens must be a positive integer, got '0'/);
});

test('chat --thinking prints the plan the runtime makes after the reply; not with --no-images', async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { MICRO } = await import('../../src/model/index.js');
  const { loadSampleCharacter } = await import('../../src/data/index.js');
  const { CharacterModel } = await import('../../src/character/index.js');
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const help = spawnSync(process.execPath, [main, 'chat', '--help'], { encoding: 'utf8' });
  assert.match(help.stdout, /--thinking plans each image first/);
  const both = spawnSync(process.execPath, [main, 'chat', 'x', '--thinking', '--no-images'], { encoding: 'utf8' });
  assert.notEqual(both.status, 0);
  assert.match(both.stderr, /--thinking .* cannot be used with --no-images/);
  const dir = mkdtempSync(join(tmpdir(), 'chat-thinking-'));
  try {
    const { character } = loadSampleCharacter();
    const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
    const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
    m.save(join(dir, 'models', 'tessel'));
    const local = await m.chat([{ role: 'user', content: [{ text: 'Hi' }] }], { temperature: 0, maxTokens: 3, image: { numTimesteps: 2 }, thinking: true });
    m.dispose();
    const run = spawnSync(process.execPath, [main, 'chat', 'tessel', '--data-dir', dir, '--thinking', '--temperature', '0', '--max-tokens', '3'], { input: 'Hi\n', encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.stdout.includes(`Tessel: ${local.text}\n  plan: ${local.plan!.text}\n`), run.stdout);
    assert.match(run.stdout, /\[image: .*turn-001\.png\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
