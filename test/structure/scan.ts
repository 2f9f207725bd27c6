// Reads the source tree for the structure checks (docs/architecture.md "Layers"): the relative
// imports of every file and the citations of the repo's docs/ in any text.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';

/** One relative import: from file -> to file (repo-relative .ts paths), and whether it is type-only. */
export interface ImportEdge {
  from: string;
  to: string;
  typeOnly: boolean;
  line: number;
}

/** Every file under dir whose name ends with one of exts, repo-relative with '/' separators. */
export function filesUnder(root: string, dir: string, exts: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (exts.some((e) => name.endsWith(e))) out.push(relative(root, p).split(sep).join('/'));
    }
  };
  if (existsSync(join(root, dir))) walk(join(root, dir));
  return out;
}

const STATIC_IMPORT = /^[ \t]*(import|export)\s+(type\s+)?([^;'"`]*?)\bfrom\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT_IMPORT = /^[ \t]*import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC_IMPORT = /(typeof\s+)?\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The module specifiers a TS source imports, with type-only marked (`import type`, all-`type` names, `typeof import()`). */
export function importSpecifiers(text: string): { spec: string; typeOnly: boolean; line: number }[] {
  const lineOf = (i: number) => text.slice(0, i).split('\n').length;
  const out: { spec: string; typeOnly: boolean; line: number }[] = [];
  for (const m of text.matchAll(STATIC_IMPORT)) {
    const names = m[3]!.trim();
    const allTypeNames = /^\{[\s\S]*\}$/.test(names) && names.slice(1, -1).split(',').map((n) => n.trim()).filter(Boolean).every((n) => n.startsWith('type '));
    out.push({ spec: m[4]!, typeOnly: Boolean(m[2]) || allTypeNames, line: lineOf(m.index!) });
  }
  for (const m of text.matchAll(SIDE_EFFECT_IMPORT)) out.push({ spec: m[1]!, typeOnly: false, line: lineOf(m.index!) });
  for (const m of text.matchAll(DYNAMIC_IMPORT)) out.push({ spec: m[2]!, typeOnly: Boolean(m[1]), line: lineOf(m.index!) });
  return out;
}

/** The relative imports of every .ts file under dir, resolved to repo-relative .ts paths. */
export function importEdges(root: string, dir: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const from of filesUnder(root, dir, ['.ts'])) {
    for (const { spec, typeOnly, line } of importSpecifiers(readFileSync(join(root, from), 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const to = normalize(join(dirname(from), spec)).split(sep).join('/').replace(/\.js$/, '.ts');
      edges.push({ from, to, typeOnly, line });
    }
  }
  return edges;
}

/**
 * The index.ts an import must go through, if it bypasses one: the outermost folder that holds the
 * target but not the importer and has an index.ts (then the target must be that index.ts).
 */
export function bypassedIndex(edge: { from: string; to: string }, hasIndex: (folder: string) => boolean): string | null {
  const fromDir = dirname(edge.from).split('/');
  const toDir = dirname(edge.to).split('/');
  for (let i = 1; i <= toDir.length; i++) {
    const folder = toDir.slice(0, i).join('/');
    if (fromDir.slice(0, i).join('/') === folder) continue;
    if (!hasIndex(folder)) continue;
    const index = `${folder}/index.ts`;
    return edge.to === index ? null : index;
  }
  return null;
}

/** The import cycles (strongly connected groups of more than one file) of a graph. */
export function importCycles(edges: readonly { from: string; to: string }[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let counter = 0;
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
        if (w === v) break;
      }
      if (group.length > 1) cycles.push(group.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** One cited section: a number ("4.2", the endpoints of "1.5-1.7" each) or a quoted title. */
export type SectionRef = { number: string } | { title: string };

/** One citation of a repo doc: the file (e.g. "docs/method.md") and the sections named after it. */
export interface Citation {
  doc: string;
  sections: SectionRef[];
  line: number;
  text: string;
}

const DOC_NAME = /(?<![\w/.-])(docs\/)?([a-z0-9][\w-]*)\.md\b/g;
const REF_START = /^`?\s*[,(]?\s*/;
const REF_ITEM = /^(?:sections?\s+|§\s*)?(?:(\d+(?:\.\d+)*)|"([^"\n]+)")/;
const REF_SEPARATOR = /^\s*(?:,|-|–|\/|and|&)\s*/;

/**
 * The citations in a text: `docs/NAME.md`, or a bare `NAME.md` for a name in `docNames`, each
 * with the section numbers and quoted titles that follow it ("method.md 4.2",
 * `architecture.md "Layers"`, "dataset.md §3.3, §3.4", "method.md sections 2.1-2.3").
 */
export function citations(text: string, docNames: ReadonlySet<string>): Citation[] {
  const out: Citation[] = [];
  for (const m of text.matchAll(DOC_NAME)) {
    if (!m[1] && !docNames.has(m[2]!)) continue;
    let rest = text.slice(m.index! + m[0].length, m.index! + m[0].length + 200);
    const sections: SectionRef[] = [];
    rest = rest.replace(REF_START, '');
    for (;;) {
      const item = REF_ITEM.exec(rest);
      if (!item) break;
      sections.push(item[1] ? { number: item[1] } : { title: item[2]! });
      rest = rest.slice(item[0].length);
      const sepMatch = REF_SEPARATOR.exec(rest);
      if (!sepMatch || !REF_ITEM.test(rest.slice(sepMatch[0].length))) break;
      rest = rest.slice(sepMatch[0].length);
    }
    const line = text.slice(0, m.index!).split('\n').length;
    out.push({ doc: `docs/${m[2]}.md`, sections, line, text: text.split('\n')[line - 1]!.trim() });
  }
  return out;
}

/** The section numbers and titles of a markdown document's headings ("## 1.2 Title" -> 1.2, "Title"). */
export function headings(markdown: string): { numbers: Set<string>; titles: Set<string> } {
  const numbers = new Set<string>();
  const titles = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*$/gm)) {
    const h = /^§?(\d+(?:\.\d+)*)\.?\s+(.*)$/.exec(m[1]!);
    if (h) numbers.add(h[1]!);
    titles.add((h ? h[2]! : m[1]!).trim().toLowerCase());
  }
  return { numbers, titles };
}

/** Whether a heading set holds a cited section (a title matches its heading, or its heading's text before " ("). */
export function hasSection(h: { numbers: Set<string>; titles: Set<string> }, ref: SectionRef): boolean {
  if ('number' in ref) return h.numbers.has(ref.number);
  const want = ref.title.trim().toLowerCase();
  return [...h.titles].some((t) => t === want || t.startsWith(`${want} (`));
}

const EXPORTED_DECLARATION = /^export\s+(?:declare\s+)?(?:default\s+)?(?:async\s+)?(?:abstract\s+)?(?:function\s*\*?|const|let|var|class|type|interface|enum)\s+([A-Za-z_$][\w$]*)/gm;

/** The names a TS source declares with `export` (functions, classes, constants, types, interfaces, enums; not re-exports), each once. */
export function exportedNames(text: string): string[] {
  return [...new Set([...text.matchAll(EXPORTED_DECLARATION)].map((m) => m[1]!))];
}

/** The files a folder's index.ts exports only as a namespace (`export * as ops from './ops.generated.js'`). */
export function namespaceModules(indexText: string): string[] {
  return [...indexText.matchAll(/^export\s+\*\s+as\s+\w+\s+from\s+['"]\.\/([^'"]+)\.js['"]/gm)].map((m) => `${m[1]}.ts`);
}
