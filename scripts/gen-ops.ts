// Generates src/torch/ops.generated.ts (typed functions and Tensor methods for every
// supported ATen operator) and src/torch/ops.skipped.md (what was left out and why) from the
// operator schemas of the installed libtorch. Run with `npm run gen:ops`
// (`node dist/scripts/gen-ops.js [outDir]`; default outDir src/torch).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native, type NativeOpSchema, type NativeArg } from '../src/torch/native.js';

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

function jsdoc(ovs: Overload[]): string {
  return ['/**', ...ovs.map((o) => ` * ${o.schema.schema.replace(/\*\//g, '* /')}`), ' */'].join('\n');
}

function main(outDir: string): void {
  const all = native.listOps();
  const version = native.version();
  const skipped: [string, string][] = [];
  const groups = new Map<string, NativeOpSchema[]>();
  for (const op of all) {
    const reason = skipReason(op);
    const full = op.overload ? `${op.name}.${op.overload}` : op.name;
    if (reason) {
      skipped.push([full, reason]);
      continue;
    }
    const name = op.name.slice(6);
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name)!.push(op);
  }

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
    const lines: string[] = [jsdoc(ovs)];
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
        ['    ' + jsdoc(methods).split('\n').join('\n    '),
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
// libtorch ${version} (run \`npm run gen:ops\` to regenerate). ${index} overloads in ${names.length} functions;
// skipped operators and the reasons are listed in ops.skipped.md.
//
// Arguments follow the schema order (keyword-only arguments last), as in libtorch's C++ API.
// Overloads resolve in a fixed order: fewer arguments first, the default overload before named
// ones, then by overload name; the first whose argument types all match is called.
/* eslint-disable */
import { native } from './native.js';
import { Tensor, type Scalar } from './tensor.js';
import type { DType } from './dtype.js';
import {
  O as $O, OPS as $OPS, op as $op, T as $T, Ts as $Ts, ids as $ids, oids as $oids, noOverload as $noOverload,
  t as $t, ot as $ot, tl as $tl, i as $i, il as $il, f as $f, fl as $fl, b as $b, bl as $bl, sc as $sc, st as $st, s as $s, g as $g,
} from './dispatch.js';
`;
  const out = [
    header,
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
    `# Operators not generated (libtorch ${version})`,
    '',
    'GENERATED by scripts/gen-ops.ts; do not edit. Each line: the operator overload and why it was left out.',
    '',
    ...skipped.map(([n, r]) => `- \`${n}\`: ${r}`),
    '',
  ].join('\n');
  writeFileSync(join(outDir, 'ops.skipped.md'), md);
  console.log(`gen-ops: ${index} overloads in ${names.length} functions, ${skipped.length} skipped`);
}

main(process.argv[2] ?? 'src/torch');
