// The structure rules of docs/architecture.md "Layers", checked on the src tree: imports of another
// folder go through its index.ts, no layer imports a layer above (or beside) it, no import
// cycles but the documented one, and every citation of a repo doc names a section that exists.
// The scanners are first checked on hand-made cases, so a check that finds nothing is not a
// scanner that cannot see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  bypassedIndex, citations, exportedNames, filesUnder, hasSection, headings, importCycles, importEdges, importSpecifiers, namespaceModules, type ImportEdge,
} from './scan.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

// docs/architecture.md "Layers": lower number = lower layer; equal numbers stand beside each other
// and import neither way.
const LAYER: Record<string, number> = {
  data: 0, torch: 0, nn: 1, model: 2, reward: 3, character: 4, train: 5, eval: 5, plan: 6, serve: 6, cli: 7,
};

// docs/architecture.md "Layers": the one cycle, type-only on one side (Linear's field holds a
// LoRA adapter, the adapter wraps a Linear).
const ALLOWED_CYCLES = [['src/nn/linear.ts', 'src/nn/lora.ts']];

const layerOf = (file: string): string => file.split('/')[1]!;
const at = (e: ImportEdge) => `${e.from}:${e.line} -> ${e.to}`;

test('the import scanner sees every form: named, type-only, re-export, side effect, dynamic, typeof import()', () => {
  const src = [
    "import { a, type B } from './a.js';",
    "import type { C } from '../c/index.js';",
    'import {',
    '  type D,',
    '  type E,',
    "} from './d.js';",
    "export { f } from './f.js';",
    "import './g.js';",
    "const h = await import('../h/index.js');",
    "type T = typeof import('./t.js');",
  ].join('\n');
  assert.deepEqual(importSpecifiers(src).map((s) => [s.spec, s.typeOnly, s.line]), [
    ['./a.js', false, 1], ['../c/index.js', true, 2], ['./d.js', true, 3], ['./f.js', false, 7],
    ['./g.js', false, 8], ['../h/index.js', false, 9], ['./t.js', true, 10],
  ]);
});

test('bypassedIndex: the outermost folder holding the target but not the importer, if it has an index.ts', () => {
  const indexed = new Set(['src/reward', 'src/reward/nets', 'src/data']);
  const has = (f: string) => indexed.has(f);
  assert.equal(bypassedIndex({ from: 'src/eval/a.ts', to: 'src/reward/suite.ts' }, has), 'src/reward/index.ts');
  assert.equal(bypassedIndex({ from: 'src/eval/a.ts', to: 'src/reward/nets/index.ts' }, has), 'src/reward/index.ts');
  assert.equal(bypassedIndex({ from: 'src/eval/a.ts', to: 'src/reward/index.ts' }, has), null);
  assert.equal(bypassedIndex({ from: 'src/reward/suite.ts', to: 'src/reward/nets/clip.ts' }, has), 'src/reward/nets/index.ts');
  assert.equal(bypassedIndex({ from: 'src/reward/suite.ts', to: 'src/reward/vqa.ts' }, has), null);
  assert.equal(bypassedIndex({ from: 'src/reward/nets/clip.ts', to: 'src/reward/nets/images.ts' }, has), null);
  // a folder without index.ts is open to its parent's files
  assert.equal(bypassedIndex({ from: 'src/data/index.ts', to: 'src/data/sample/load.ts' }, has), null);
});

test('importCycles finds a cycle through three files and none in a chain', () => {
  const cyc = importCycles([{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'c', to: 'a' }, { from: 'c', to: 'd' }]);
  assert.deepEqual(cyc, [['a', 'b', 'c']]);
  assert.deepEqual(importCycles([{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }]), []);
});

test('the citation scanner reads numbers, ranges, § marks, "section(s)" and quoted titles', () => {
  const names = new Set(['method', 'dataset', 'architecture']);
  const text = [
    '// (method.md 4.2) and docs/method.md 1.5-1.7, 2.1.',
    '// dataset.md §3.3, §3.4; architecture.md "Layers"; docs/architecture.md` ("Performance targets")',
    '// docs/sharding.md sections 2-3, and bench/README.md, report.md; method.md 2.3: 0.25 CE',
    '// dataset.md §1, "Folder names vs name forms"). method.md section 3.1 and 6.2',
  ].join('\n');
  assert.deepEqual(citations(text, names).map((c) => [c.doc, c.sections, c.line]), [
    ['docs/method.md', [{ number: '4.2' }], 1],
    ['docs/method.md', [{ number: '1.5' }, { number: '1.7' }, { number: '2.1' }], 1],
    ['docs/dataset.md', [{ number: '3.3' }, { number: '3.4' }], 2],
    ['docs/architecture.md', [{ title: 'Layers' }], 2],
    ['docs/architecture.md', [{ title: 'Performance targets' }], 2],
    ['docs/sharding.md', [{ number: '2' }, { number: '3' }], 3],
    ['docs/method.md', [{ number: '2.3' }], 3],
    ['docs/dataset.md', [{ number: '1' }, { title: 'Folder names vs name forms' }], 4],
    ['docs/method.md', [{ number: '3.1' }, { number: '6.2' }], 4],
  ]);
  const h = headings('# Title\n\n## 1. Model\n\n### 1.2 MoT decoder\n\n## Performance targets (benchmarks)\n');
  assert.ok(hasSection(h, { number: '1' }) && hasSection(h, { number: '1.2' }) && !hasSection(h, { number: '1.3' }));
  assert.ok(hasSection(h, { title: 'MoT decoder' }) && hasSection(h, { title: 'performance targets' }) && !hasSection(h, { title: 'Perf' }));
});

const edges = importEdges(ROOT, 'src');

test('src has imports to check', () => {
  assert.ok(edges.length > 300, `${edges.length} relative imports under src`);
  assert.ok(edges.some((e) => e.from === 'src/train/sft.ts' && e.to === 'src/model/index.ts'), 'train/sft.ts imports model/index.ts');
});

test('no import in src bypasses another folder\'s index.ts', () => {
  const has = (folder: string) => existsSync(`${ROOT}/${folder}/index.ts`);
  const bad = edges.flatMap((e) => {
    const index = bypassedIndex(e, has);
    return index ? [`${at(e)} (import ${index})`] : [];
  });
  assert.deepEqual(bad, []);
});

test('every src folder is a known layer and no layer imports a layer above or beside it (type-only imports included)', () => {
  const unknown = [...new Set(edges.map((e) => layerOf(e.from)))].filter((l) => !(l in LAYER));
  assert.deepEqual(unknown, [], 'src folders missing from the layer order of docs/architecture.md "Layers"');
  const bad = edges
    .filter((e) => layerOf(e.from) !== layerOf(e.to) && !(LAYER[layerOf(e.to)]! < LAYER[layerOf(e.from)]!))
    .map((e) => `${at(e)}${e.typeOnly ? ' (type-only)' : ''}`);
  assert.deepEqual(bad, []);
});

test('no import cycles in src but the documented nn/linear <-> nn/lora one', () => {
  const cycles = importCycles(edges);
  const allowed = (c: string[]) => ALLOWED_CYCLES.some((a) => a.join() === c.join());
  assert.deepEqual(cycles.filter((c) => !allowed(c)), []);
  // the allowed one stays type-only from linear to lora
  const back = edges.filter((e) => e.from === 'src/nn/linear.ts' && e.to === 'src/nn/lora.ts');
  assert.ok(back.every((e) => e.typeOnly), back.map(at).join('; '));
});

test('every citation of a repo doc names a file and a section that exist', () => {
  const docs = filesUnder(ROOT, 'docs', ['.md']).filter((d) => d.split('/').length === 2);
  const names = new Set(['method', 'dataset', 'ecosystem', 'architecture', ...docs.map((d) => d.slice(5, -3))]);
  const sources = [
    ...['src', 'test', 'bench', 'scripts', 'web', 'native/src'].flatMap((d) => filesUnder(ROOT, d, ['.ts', '.tsx', '.mjs', '.cc', '.h', '.py', '.html', '.css'])),
    ...docs, 'README.md', 'bench/README.md',
  ].filter((f) => !f.startsWith('test/structure/'));
  const heads = new Map(docs.map((d) => [d, headings(readFileSync(`${ROOT}/${d}`, 'utf8'))]));
  const bad: string[] = [];
  let checked = 0;
  for (const file of sources) {
    for (const c of citations(readFileSync(`${ROOT}/${file}`, 'utf8'), names)) {
      const h = heads.get(c.doc);
      checked += c.sections.length;
      if (!h) {
        bad.push(`${file}:${c.line}: ${c.doc} does not exist`);
        continue;
      }
      for (const s of c.sections) {
        if (!hasSection(h, s)) bad.push(`${file}:${c.line}: ${c.doc} has no section ${'number' in s ? s.number : `"${s.title}"`}`);
      }
    }
  }
  assert.ok(checked > 200, `${checked} cited sections`);
  assert.deepEqual(bad, []);
});

test('exportedNames reads declarations, not re-exports; namespaceModules reads `export * as`', () => {
  const src = [
    'export interface A { x: number }',
    'export type B = string;',
    'export async function c() {}',
    'export function* d() {}',
    'export const E = 1;',
    'export abstract class F {}',
    'export const G = z.object({}); export type G = z.infer<typeof G>;',
    "export { h } from './h.js';",
    'const i = 2; export { i };',
    '  export const notAtLineStart = 3;',
  ].join('\n');
  assert.deepEqual(exportedNames(src), ['A', 'B', 'c', 'd', 'E', 'F', 'G']);
  assert.deepEqual(namespaceModules("export * as ops from './ops.generated.js';\nexport * from './creation.js';\nexport * as kernels from './kernels.js';"), ['ops.generated.ts', 'kernels.ts']);
});

test('no exported name is declared in two src files (one name per concept; namespaced modules apart)', () => {
  const files = filesUnder(ROOT, 'src', ['.ts']);
  const namespaced = new Set(files.filter((f) => f.endsWith('/index.ts')).flatMap((f) => namespaceModules(readFileSync(`${ROOT}/${f}`, 'utf8')).map((m) => `${f.slice(0, -'index.ts'.length)}${m}`)));
  assert.ok(namespaced.has('src/torch/ops.generated.ts'), 'the generated operators are exported as the ops namespace');
  const where = new Map<string, string[]>();
  for (const f of files.filter((x) => !namespaced.has(x))) {
    for (const n of exportedNames(readFileSync(`${ROOT}/${f}`, 'utf8'))) where.set(n, [...(where.get(n) ?? []), f]);
  }
  assert.ok(where.size > 500, `${where.size} exported names`);
  const doubled = [...where].filter(([, fs]) => fs.length > 1).map(([n, fs]) => `${n}: ${fs.join(', ')}`);
  assert.deepEqual(doubled, []);
});
