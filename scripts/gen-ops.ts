// Generates src/torch/ops.generated.ts (typed functions and Tensor methods for every
// supported ATen operator) and src/torch/ops.skipped.md (what was left out and why) from the
// operator schemas of the installed libtorch and the committed schemas of the other supported
// versions (src/torch/ops.schemas.<major.minor>.json, also written here for the installed one).
// Run with `npm run gen:ops` (`node dist/scripts/gen-ops.js [outDir]`; default outDir src/torch;
// the other versions' schemas are always read from src/torch). See docs/engine.md, "libtorch versions".
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native, libtorchVersion, schemaVersion, type NativeOpSchema, type NativeArg } from '../src/torch/native.js';

const HAND_WRITTEN_MEMBERS = new Set([
  'id', 'shape', 'ndim', 'dtype', 'device', 'numel', 'isDisposed', 'requiresGrad', 'requiresGrad_', 'isLeaf',
  'grad', 'backward', 'dataSync', 'toArray', 'item', 'to', 'dispose', 'keep', 'toString', 'constructor',
]);
const RESERVED = new Set([
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else', 'enum',
  'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'new', 'null',
  'return', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void', 'while', 'with', 'yield',
  'let', 'static', 'implements', 'interface', 'package', 'private', 'protected', 'public', 'await', 'arguments',
  'eval',
]);
// Names the generated file imports; the runtime helpers are imported with a `$` prefix so
// they never collide with operator names such as `t`.
const HELPER_NAMES = new Set(['native', 'Tensor', 'P']);

const TS_TYPE: Record<string, string> = {
  Tensor: 'Tensor', 'Tensor[]': 'Tensor[]', 'Tensor?[]': '(Tensor | null)[]', int: 'number', 'int[]': 'number | number[]',
  float: 'number', 'float[]': 'number[]', bool: 'boolean', 'bool[]': 'boolean[]', Scalar: 'Scalar', ScalarType: 'DType',
  Layout: "'strided' | 'sparse'", Device: 'string', MemoryFormat: "'contiguous' | 'preserve' | 'channels_last'",
  str: 'string', Generator: 'null',
};
const CHECK: Record<string, string> = {
  Tensor: 't', 'Tensor[]': 'tl', 'Tensor?[]': 'tl', int: 'i', 'int[]': 'il', float: 'f', 'float[]': 'fl', bool: 'b',
  'bool[]': 'bl', Scalar: 'sc', ScalarType: 'st', Layout: 's', Device: 's', MemoryFormat: 's', str: 's', Generator: 'g',
};
const RETURN_TYPE: Record<string, string> = {
  Tensor: 'Tensor', 'Tensor[]': 'Tensor[]', int: 'number', float: 'number', bool: 'boolean', Scalar: 'number',
  'int[]': 'number[]', 'float[]': 'number[]',
};

interface Overload {
  index: number; // position in OPS
  schema: NativeOpSchema;
  args: NativeArg[];
  isMethod: boolean;
}

function skipReason(op: NativeOpSchema): string | null {
  if (!op.name.startsWith('aten::')) return 'not an aten operator';
  const base = op.name.slice(6);
  if (/_backward(_|$)/.test(base) || base.endsWith('_backward')) return 'backward helper (autograd derives gradients)';
  if (op.args.some((a) => a.isWrite && a.name !== 'self')) return 'out= variant (functions return new tensors)';
  if (/\bDimname\b/.test(op.schema)) return 'named-tensor (Dimname) overload';
  const badArg = op.args.find((a) => a.kind === 'unsupported');
  if (badArg) return `argument '${badArg.name}' has unsupported type ${badArg.type}`;
  const badGen = op.args.find((a) => a.kind === 'Generator' && !a.optional);
  if (badGen) return `argument '${badGen.name}' needs a Generator`;
  for (const r of op.returns) {
    if (r.isWrite) continue;
    if (!(r.kind in RETURN_TYPE)) return `returns ${r.type}`;
  }
  return null;
}

function jsName(name: string): string {
  if (RESERVED.has(name) || HELPER_NAMES.has(name)) return name + '_';
  return name;
}

function paramType(a: NativeArg): string {
  const base = TS_TYPE[a.kind]!;
  return a.optional ? `${base} | null` : base;
}

function isOptionalParam(a: NativeArg): boolean {
  return a.optional || a.hasDefault;
}

function signature(args: NativeArg[], from: number): string {
  // A parameter may be marked `?` only when every later one is optional too.
  const parts: string[] = [];
  let allOptionalAfter = true;
  for (let k = args.length - 1; k >= from; k--) {
    const a = args[k]!;
    const opt = isOptionalParam(a) && allOptionalAfter;
    if (!isOptionalParam(a)) allOptionalAfter = false;
    const type = paramType(a) + (isOptionalParam(a) && !opt ? ' | undefined' : '');
    parts.unshift(`${safeParam(a.name)}${opt ? '?' : ''}: ${type}`);
  }
  return parts.join(', ');
}

function safeParam(name: string): string {
  return RESERVED.has(name) || HELPER_NAMES.has(name) ? name + '_' : name;
}

function returnType(op: NativeOpSchema, args: NativeArg[]): string {
  const rets = op.returns.map((r) => (r.isWrite ? 'Tensor' : RETURN_TYPE[r.kind]!));
  if (rets.length === 0) return 'void';
  if (rets.length === 1) return rets[0]!;
  return `[${rets.join(', ')}]`;
}

function condition(args: NativeArg[], n: number): string {
  const conds: string[] = [];
  for (let k = 0; k < n; k++) {
    const v = `a${k}`;
    if (k >= args.length) {
      conds.push(`${v} === undefined`);
      continue;
    }
    const a = args[k]!;
    const check = `$${CHECK[a.kind]}(${v})`;
    if (a.optional) conds.push(a.kind === 'Tensor' ? `$ot(${v})` : `(${v} == null || ${check})`);
    else if (a.hasDefault) conds.push(`(${v} === undefined || ${check})`);
    else conds.push(check);
  }
  return conds.length ? conds.join(' && ') : 'true';
}

function argExpr(a: NativeArg, k: number, fn: string): string {
  const v = `a${k}`;
  switch (a.kind) {
    case 'Tensor':
      return a.optional ? `${v}?.id` : `${v}.id`;
    case 'Tensor[]':
      return a.optional ? `${v} == null ? ${v} : $ids(${v}, '${fn}', '${a.name}')` : `$ids(${v}, '${fn}', '${a.name}')`;
    case 'Tensor?[]':
      return `$oids(${v}, '${fn}', '${a.name}')`;
    default:
      return v;
  }
}

function resultExpr(op: NativeOpSchema, args: NativeArg[]): (call: string) => string {
  const writeArg = args.findIndex((a) => a.isWrite);
  const rets = op.returns;
  const one = (kind: string, isWrite: boolean, r: string): string => {
    if (isWrite) return `a${writeArg}`;
    if (kind === 'Tensor') return `$T(${r})`;
    if (kind === 'Tensor[]') return `$Ts(${r})`;
    return r;
  };
  if (rets.length === 0) return (c) => `{ ${c}; return; }`;
  if (rets.length === 1) {
    const r0 = rets[0]!;
    if (r0.isWrite) return (c) => `{ ${c}; return a${writeArg}; }`;
    return (c) => `return ${one(r0.kind, false, c)};`;
  }
  return (c) => `{ const r = ${c}; return [${rets.map((r, k) => one(r.kind, r.isWrite, `r[${k}]`)).join(', ')}]; }`;
}

function jsdoc(ovs: Overload[], docs: Map<NativeOpSchema, string[]>): string {
  const lines = ovs.flatMap((o) => docs.get(o.schema) ?? [o.schema.schema]);
  return ['/**', ...lines.map((l) => ` * ${l.replace(/\*\//g, '* /')}`), ' */'].join('\n');
}

// ---- per-version schema dumps (docs/engine.md, "libtorch versions") ----
// Each supported libtorch has a committed dump, src/torch/ops.schemas.<major.minor>.json: the
// overloads it would generate and the ones it skips, with reasons. The binding is generated from
// every dump together, so one checkout serves each version; `npm run gen:ops` on a libtorch
// rewrites (or adds) that version's dump and regenerates the binding.
interface Dump {
  libtorch: string;
  ops: NativeOpSchema[];
  skipped: [string, string][];
}

const SCHEMA_DIR = 'src/torch';
const DUMP_FILE = /^ops\.schemas\.(\d+\.\d+)\.json$/;

function dumpLive(): Dump {
  const ops: NativeOpSchema[] = [];
  const skipped: [string, string][] = [];
  for (const op of native.listOps()) {
    const reason = skipReason(op);
    const full = op.overload ? `${op.name}.${op.overload}` : op.name;
    if (reason) skipped.push([full, reason]);
    // only what generation reads: names, kinds, defaults and aliasing
    else ops.push({
      name: op.name, overload: op.overload, schema: op.schema,
      args: op.args.map((a) => ({ name: a.name, type: a.type, kind: a.kind, optional: a.optional, hasDefault: a.hasDefault, kwargOnly: a.kwargOnly, isWrite: a.isWrite })),
      returns: op.returns.map((r) => ({ name: r.name, type: r.type, kind: r.kind, isWrite: r.isWrite })),
    });
  }
  ops.sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0));
  skipped.sort((x, y) => (x[0] < y[0] ? -1 : 1));
  return { libtorch: libtorchVersion, ops, skipped };
}

const key = (op: NativeOpSchema): string => `${op.name}.${op.overload}`;

function dumpText(d: Dump): string {
  // one operator per line keeps diffs between regenerations readable
  return `{"libtorch": ${JSON.stringify(d.libtorch)},\n"ops": [\n${d.ops.map((o) => JSON.stringify(o)).join(',\n')}\n],\n` +
    `"skipped": [\n${d.skipped.map((s) => JSON.stringify(s)).join(',\n')}\n]}\n`;
}

/** The committed dumps of the other versions, and the live one. */
function loadDumps(live: Dump): Dump[] {
  const mine = schemaVersion(live.libtorch);
  const dumps = [live];
  for (const f of readdirSync(SCHEMA_DIR).sort()) {
    const m = DUMP_FILE.exec(f);
    if (!m || m[1] === mine) continue;
    dumps.push(JSON.parse(readFileSync(join(SCHEMA_DIR, f), 'utf8')) as Dump);
  }
  return dumps.sort((x, y) => compareVersions(x.libtorch, y.libtorch));
}

function compareVersions(x: string, y: string): number {
  const a = x.split('.').map((p) => parseInt(p, 10));
  const b = y.split('.').map((p) => parseInt(p, 10));
  for (let k = 0; k < Math.max(a.length, b.length); k++) if ((a[k] ?? 0) !== (b[k] ?? 0)) return (a[k] ?? 0) - (b[k] ?? 0);
  return 0;
}

const sameArg = (a: NativeArg, b: NativeArg): boolean => a.name === b.name && a.kind === b.kind && a.optional === b.optional;
const defaulted = (a: NativeArg): boolean => a.optional || a.hasDefault;

/**
 * One overload as every version can take it: the arguments all versions share in order (a
 * version's further arguments must have defaults, which apply when the binding leaves them out)
 * and results of the same kinds. null and a reason when the versions disagree.
 */
function mergeOverload(versions: string[], per: NativeOpSchema[]): { op: NativeOpSchema; schemas: string[] } | string {
  const first = per[0]!;
  let n = 0;
  while (per.every((o) => n < o.args.length && sameArg(o.args[n]!, first.args[n]!))) n++;
  for (let v = 0; v < per.length; v++) {
    const extra = per[v]!.args.slice(n).find((a) => !defaulted(a));
    if (extra) return `argument '${extra.name}' of libtorch ${versions[v]} has no counterpart in the other versions`;
  }
  const rets = (o: NativeOpSchema): string => o.returns.map((r) => `${r.kind}${r.isWrite ? '!' : ''}`).join(',');
  const other = per.find((o) => rets(o) !== rets(first));
  if (other) return `results differ between libtorch versions (${rets(first)} vs ${rets(other)})`;
  // an argument some version requires is required in the binding
  const args = first.args.slice(0, n).map((a, k) => ({ ...a, hasDefault: per.every((o) => o.args[k]!.hasDefault) }));
  const schemas = per.map((o, v) => o.schema + (per.some((p) => p.schema !== o.schema) ? ` (libtorch ${versions[v]})` : ''));
  return { op: { ...per[per.length - 1]!, args }, schemas: [...new Set(schemas)] };
}

interface Merged {
  versions: string[];
  ops: { op: NativeOpSchema; schemas: string[] }[];
  skipped: [string, string][];
}

function mergeDumps(dumps: Dump[]): Merged {
  const versions = dumps.map((d) => schemaVersion(d.libtorch));
  const byKey = dumps.map((d) => new Map(d.ops.map((o) => [key(o), o])));
  const skippedBy = dumps.map((d) => new Map(d.skipped));
  const keys = [...new Set(dumps.flatMap((d) => d.ops.map(key)))].sort();
  const ops: Merged['ops'] = [];
  const skipped = new Map<string, string>();
  for (const k of keys) {
    const per = byKey.map((m) => m.get(k));
    const full = per.find((o) => o)!.overload ? k : k.slice(0, -1);
    const missing = per.findIndex((o) => !o);
    if (missing >= 0) {
      const why = skippedBy[missing]!.get(full);
      skipped.set(full, why ? `libtorch ${versions[missing]}: ${why}` : `not in libtorch ${versions[missing]}`);
      continue;
    }
    const merged = mergeOverload(versions, per as NativeOpSchema[]);
    if (typeof merged === 'string') skipped.set(full, merged);
    else ops.push(merged);
  }
  // skipped in every version that has it: the reason of the newest
  const generated = new Set(keys.map((k) => (k.endsWith('.') ? k.slice(0, -1) : k)));
  for (const d of dumps) for (const [full, why] of d.skipped) if (!generated.has(full)) skipped.set(full, why);
  return { versions, ops, skipped: [...skipped].sort((x, y) => (x[0] < y[0] ? -1 : 1)) };
}

function main(outDir: string): void {
  const live = dumpLive();
  writeFileSync(join(outDir, `ops.schemas.${schemaVersion(live.libtorch)}.json`), dumpText(live));
  const dumps = loadDumps(live);
  const merged = mergeDumps(dumps);
  const skipped = merged.skipped;
  const docs = new Map<NativeOpSchema, string[]>();
  const groups = new Map<string, NativeOpSchema[]>();
  for (const { op, schemas } of merged.ops) {
    docs.set(op, schemas);
    const name = op.name.slice(6);
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name)!.push(op);
  }
  const versionList = dumps.map((d) => d.libtorch).join(' and ');

  const opsTable: string[] = [];
  const fns: string[] = [];
  const methodDecls: string[] = [];
  const methodImpls: string[] = [];
  const names = [...groups.keys()].sort();
  let index = 0;
  for (const name of names) {
    // Resolution order: fewer arguments first, then the default overload, then by name.
    const ops = groups.get(name)!.sort(
      (x, y) => x.args.length - y.args.length || (x.overload === '' ? -1 : y.overload === '' ? 1 : x.overload < y.overload ? -1 : 1),
    );
    const ovs: Overload[] = ops.map((schema) => {
      const params = schema.args.map((a) => [a.kind + (a.optional ? '?' : ''), a.name, isOptionalParam(a)]);
      opsTable.push(`[${JSON.stringify(schema.name)}, ${JSON.stringify(schema.overload)}, ${JSON.stringify(schema.schema)}, ${JSON.stringify(params)}]`);
      return {
        index: index++,
        schema,
        args: schema.args,
        isMethod: schema.args.length > 0 && schema.args[0]!.name === 'self' && schema.args[0]!.kind === 'Tensor',
      };
    });
    const fn = jsName(name);
    const n = Math.max(...ovs.map((o) => o.args.length));
    const params = Array.from({ length: n }, (_, k) => `a${k}?: any`).join(', ');
    const lines: string[] = [jsdoc(ovs, docs)];
    for (const o of ovs) lines.push(`export function ${fn}(${signature(o.args, 0)}): ${returnType(o.schema, o.args)};`);
    lines.push(`export function ${fn}(${params}): any {`);
    for (const o of ovs) {
      const call = `native.call($O[${o.index}] ?? $op(${o.index})${o.args.map((a, k) => ', ' + argExpr(a, k, name)).join('')})`;
      const body = resultExpr(o.schema, o.args)(call);
      lines.push(`  if (${condition(o.args, n)}) ${body}`);
    }
    lines.push(`  throw $noOverload('${name}', [${ovs.map((o) => o.index).join(', ')}], [${Array.from({ length: n }, (_, k) => `a${k}`).join(', ')}]);`);
    lines.push('}');
    fns.push(lines.join('\n'));

    const methods = ovs.filter((o) => o.isMethod);
    if (methods.length && !HAND_WRITTEN_MEMBERS.has(name)) {
      methodDecls.push(
        ['    ' + jsdoc(methods, docs).split('\n').join('\n    '),
          ...methods.map((o) => `    ${name}(${signature(o.args, 1)}): ${returnType(o.schema, o.args)};`)].join('\n'),
      );
      const mp = Array.from({ length: n - 1 }, (_, k) => `a${k + 1}?: any`).join(', ');
      const ma = Array.from({ length: n - 1 }, (_, k) => `, a${k + 1}`).join('');
      methodImpls.push(`P.${name} = function (this: Tensor${mp ? ', ' + mp : ''}) { return ${fn}(this${ma}); };`);
    } else if (methods.length) {
      skipped.push([`Tensor.${name}`, 'method name is hand-written in tensor.ts (the function is generated)']);
    }
  }

  const header = `// GENERATED FILE: do not edit. Produced by scripts/gen-ops.ts from the operator schemas of
// libtorch ${versionList}: the overloads every one of them provides, with the arguments they
// share (run \`npm run gen:ops\` to regenerate; docs/engine.md, "libtorch versions").
// ${index} overloads in ${names.length} functions; skipped operators and the reasons are listed in ops.skipped.md.
//
// Arguments follow the schema order (keyword-only arguments last), as in libtorch's C++ API.
// Overloads resolve in a fixed order: fewer arguments first, the default overload before named
// ones, then by overload name; the first whose argument types all match is called.
/* eslint-disable */
import { native, checkBinding as $checkBinding } from './native.js';
import { Tensor, type Scalar } from './tensor.js';
import type { DType } from './dtype.js';
import {
  O as $O, OPS as $OPS, op as $op, T as $T, Ts as $Ts, ids as $ids, oids as $oids, noOverload as $noOverload,
  t as $t, ot as $ot, tl as $tl, i as $i, il as $il, f as $f, fl as $fl, b as $b, bl as $bl, sc as $sc, st as $st, s as $s, g as $g,
} from './dispatch.js';
`;
  const out = [
    header,
    `$checkBinding('src/torch/ops.generated.ts', ${JSON.stringify(merged.versions)});`,
    `$OPS.push(\n${opsTable.join(',\n')}\n);`,
    ...fns,
    `declare module './tensor.js' {\n  interface Tensor {\n${methodDecls.join('\n')}\n  }\n}`,
    'const P = Tensor.prototype as any;',
    ...methodImpls,
    '',
  ].join('\n\n');
  writeFileSync(join(outDir, 'ops.generated.ts'), out);
  skipped.sort((x, y) => (x[0] < y[0] ? -1 : 1));
  const md = [
    `# Operators not generated (libtorch ${versionList})`,
    '',
    'GENERATED by scripts/gen-ops.ts; do not edit. Each line: the operator overload and why it was left out.',
    '',
    ...skipped.map(([n, r]) => `- \`${n}\`: ${r}`),
    '',
  ].join('\n');
  writeFileSync(join(outDir, 'ops.skipped.md'), md);
  console.log(`gen-ops: ${index} overloads in ${names.length} functions, ${skipped.length} skipped`);
}

const arg = process.argv[2];
if (arg === '--help' || arg === '-h') {
  console.log(`usage: node dist/scripts/gen-ops.js [outDir]

Writes ops.schemas.<major.minor>.json for the libtorch the addon was built against, then
ops.generated.ts and ops.skipped.md from it and the committed schemas of the other supported
versions (src/torch/ops.schemas.*.json) into outDir (default src/torch). docs/engine.md,
"libtorch versions".`);
} else {
  main(arg ?? 'src/torch');
}
