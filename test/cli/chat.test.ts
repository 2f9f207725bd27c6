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
