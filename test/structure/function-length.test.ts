// Functions stay short enough to read in one screen (docs/architecture.md "Layers"): no
// function, method or callback in src/ or web/src is longer than MAX_LINES, measured with the
// TypeScript parser, except the ones listed in ALLOWED with the reason they are still long. An
// entry that no longer matches a long function fails too, so the list only shrinks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { functionSpans } from './functions.js';
import { filesUnder } from './scan.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MAX_LINES = 80;

/** `file:name` (names as functionSpans gives them) -> why it is still longer than MAX_LINES. */
const ALLOWED: Record<string, string> = {
  'src/model/packed.ts:buildPackedBatch': 'to split (issue 14)',
  'src/serve/routes/chat.ts:chatRoutes': 'to split (issue 14)',
  'src/serve/routes/chat.ts:chatRoutes/app.post callback': 'to split (issue 14)',
};

const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');

test('functionSpans measures every kind of function with the names a reader looks for', () => {
  const src = [
    `export function f() {\n${body(78)}\n}`, // 80 lines
    `class C {\n  m() {\n${body(79)}\n  }\n  constructor() {}\n  get g() { return 1; }\n}`,
    `const arrow = (x: number) => x + 1;`,
    `const o = { key: function () { return 2; } };`,
    `app.post('/x', async () => {\n  function inner() {}\n});`,
    `declare function noBody(): void;`,
  ].join('\n');
  const spans = functionSpans(src).map((s) => [s.name, s.lines]);
  assert.deepEqual(spans, [
    ['f', 80], ['C.m', 81], ['C.constructor', 1], ['C.g', 1], ['arrow', 1], ['key', 1],
    ['app.post callback', 3], ['app.post callback/inner', 1],
  ]);
});

test(`no function in src/ or web/src is longer than ${MAX_LINES} lines but the allowed ones, each with its reason`, () => {
  const long = new Map<string, number>();
  for (const f of [...filesUnder(ROOT, 'src', ['.ts']), ...filesUnder(ROOT, 'web/src', ['.ts'])]) {
    for (const s of functionSpans(readFileSync(`${ROOT}/${f}`, 'utf8'), f)) {
      if (s.lines > MAX_LINES) long.set(`${f}:${s.name}`, s.lines);
    }
  }
  const tooLong = [...long].filter(([k]) => !(k in ALLOWED)).map(([k, n]) => `${k} (${n} lines)`);
  assert.deepEqual(tooLong, [], `split these into named steps, or add them to ALLOWED in this file with a reason`);
  const stale = Object.keys(ALLOWED).filter((k) => !long.has(k));
  assert.deepEqual(stale, [], `these ALLOWED entries are no longer longer than ${MAX_LINES} lines (or are gone): remove them`);
  for (const [k, why] of Object.entries(ALLOWED)) assert.ok(why.trim() && !why.includes('\n'), `${k}: the reason must be one line`);
});
