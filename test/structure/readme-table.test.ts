// The README's "Where things are" table lists every HTTP route the server declares, each with the
// file that declares it (docs/architecture.md "Serving": routes one file per resource). The
// parsers are first checked on hand-made text, so an empty match is not a parser that cannot see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { filesUnder } from './scan.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** `METHOD /path` of each route declared with app.<method>(...) or scope.<method>(...), generics allowed. */
function declaredRoutes(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\b(?:app|scope)\.(get|post|put|patch|delete)\b[^(;]*?\(\s*'(\/[^']*)'/g)) out.push(`${m[1]!.toUpperCase()} ${m[2]}`);
  return out;
}

/** `METHOD /path` -> the files named in the same table row, for every route cell like `GET, POST /v1/x`. */
function tableRoutes(readme: string): Map<string, string[]> {
  const section = readme.slice(readme.indexOf('## Where things are'));
  const rows = section.slice(0, section.indexOf('\n## ', 3) === -1 ? undefined : section.indexOf('\n## ', 3)).split('\n').filter((l) => l.startsWith('|'));
  const out = new Map<string, string[]>();
  for (const row of rows) {
    const cells = row.split('|').slice(1, -1);
    if (cells.length < 3) continue;
    const files = [...cells[cells.length - 1]!.matchAll(/`([^`]+\.ts)`/g)].map((m) => m[1]!);
    for (const m of cells[0]!.matchAll(/`((?:GET|POST|PUT|PATCH|DELETE)(?:, ?(?:GET|POST|PUT|PATCH|DELETE))*) (\/[^`\s]*)`/g)) {
      for (const method of m[1]!.split(/, ?/)) out.set(`${method} ${m[2]}`, [...(out.get(`${method} ${m[2]}`) ?? []), ...files]);
    }
  }
  return out;
}

test('the route parsers read generics, scopes and combined method cells', () => {
  const src = [
    "app.get('/health', async () => ({}));",
    "app.get<IdParams & { Querystring: Record<string, unknown> }>('/v1/x/:id/export', async (req) => {});",
    "  scope.post('/v1/x/import', { bodyLimit: 1 }, async () => {});",
    "app.addHook('onRequest', async () => {});",
    "const s = `app.get('/not-code')`;",
  ].join('\n');
  assert.deepEqual(declaredRoutes(src), ['GET /health', 'GET /v1/x/:id/export', 'POST /v1/x/import', 'GET /not-code']);
  const md = '## Where things are\n\n| a | b | c |\n|---|---|---|\n| `GET, POST /v1/x`, `DELETE /v1/x/:id` | s | `src/serve/routes/x.ts` |\n| formula | s | `src/model/y.ts` |\n\n## Next\n| `GET /v1/z` | | `z.ts` |\n';
  assert.deepEqual([...tableRoutes(md)], [
    ['GET /v1/x', ['src/serve/routes/x.ts']], ['POST /v1/x', ['src/serve/routes/x.ts']], ['DELETE /v1/x/:id', ['src/serve/routes/x.ts']],
  ]);
});

test('the README table lists every declared HTTP route with the file that declares it, and no route that is not declared', () => {
  const declared = new Map<string, string>();
  for (const f of filesUnder(ROOT, 'src/serve', ['.ts'])) for (const r of declaredRoutes(readFileSync(`${ROOT}/${f}`, 'utf8'))) declared.set(r, f);
  assert.ok(declared.size >= 20, `${declared.size} routes declared`);
  const listed = tableRoutes(readFileSync(`${ROOT}/README.md`, 'utf8'));
  const missing = [...declared].filter(([r, f]) => !(listed.get(r) ?? []).includes(f)).map(([r, f]) => `${r} (${f})`);
  assert.deepEqual(missing, [], 'add these to the README "Where things are" table with their file');
  const extra = [...listed.keys()].filter((r) => !declared.has(r));
  assert.deepEqual(extra, [], 'the README lists routes the server does not declare');
});
