// The generated operator layer: it is reproducible from the installed libtorch, overloads
// resolve in the documented order, in-place variants return their receiver, and skipped
// operators are listed with reasons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { ops } from '../../src/torch/index.js';
import { native, checkBinding, schemaVersion } from '../../src/torch/native.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('regenerating from the installed libtorch reproduces the committed files', () => {
  const out = mkdtempSync(join(tmpdir(), 'gen-ops-'));
  try {
    execFileSync(process.execPath, [join(root, 'dist/scripts/gen-ops.js'), out], { cwd: root });
    const dump = `ops.schemas.${schemaVersion(torch.version())}.json`;
    for (const f of ['ops.generated.ts', 'ops.skipped.md', dump]) {
      assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(root, 'src/torch', f), 'utf8'), `${f} is out of date: run npm run gen:ops`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('every generated overload exists in the running libtorch (docs/engine.md, "libtorch versions")', () => {
  const text = readFileSync(join(root, 'src/torch/ops.generated.ts'), 'utf8');
  const entries = [...text.matchAll(/^\["(aten::[^"]+)", "([^"]*)", /gm)];
  assert.ok(entries.length > 1000, `only ${entries.length} overloads found`);
  const missing = entries.filter(([, name, overload]) => {
    try {
      native.opId(name!, overload!);
      return false;
    } catch {
      return true;
    }
  });
  assert.deepEqual(missing.map(([, n, o]) => `${n}.${o}`), []);
});

test('the binding names the libtorch versions it serves and refuses another', () => {
  const text = readFileSync(join(root, 'src/torch/ops.generated.ts'), 'utf8');
  const served = JSON.parse(/\$checkBinding\('src\/torch\/ops\.generated\.ts', (\[[^\]]*\])\)/.exec(text)![1]!) as string[];
  assert.ok(served.includes(schemaVersion(torch.version())), `${served} lacks ${torch.version()}`);
  for (const v of served) assert.ok(existsSync(join(root, `src/torch/ops.schemas.${v}.json`)), `no committed schemas for ${v}`);
  assert.doesNotThrow(() => checkBinding('ops.generated.ts', served));
  assert.throws(
    () => checkBinding('ops.generated.ts', ['0.4']),
    (e: Error) => e.message.includes('generated for libtorch 0.4') && e.message.includes(`built against libtorch ${torch.version()}`) && e.message.includes('npm run gen:ops'),
  );
  assert.equal(schemaVersion('2.6.0+cpu'), '2.6');
  assert.throws(() => schemaVersion('nightly'), /unrecognised libtorch version 'nightly'/);
});

test('the generated file is marked as generated, with schemas in its doc comments', () => {
  const text = readFileSync(join(root, 'src/torch/ops.generated.ts'), 'utf8');
  assert.match(text.split('\n')[0]!, /^\/\/ GENERATED FILE: do not edit\. Produced by scripts\/gen-ops\.ts/);
  assert.match(text, /\* aten::add\.Tensor\(Tensor self, Tensor other, \*, Scalar alpha=1\) -> Tensor/);
  const skipped = readFileSync(join(root, 'src/torch/ops.skipped.md'), 'utf8');
  assert.match(skipped, /- `aten::add\.out`: out= variant/);
  assert.match(skipped, /- `aten::softmax\.Dimname`: named-tensor \(Dimname\) overload/);
});

test('overloads resolve by argument types in a fixed order', () => {
  torch.scope(() => {
    const x = torch.tensor([[1, 5], [7, 3]], { dtype: 'float32' });
    // max(self) -> Tensor; max(self, dim) -> (values, indices); max(self, other) -> Tensor
    assert.equal(ops.max(x).item(), 7);
    const [v, i] = ops.max(x, 0);
    assert.deepEqual([v.toArray(), i.toArray()], [[7, 5], [1, 0]]);
    assert.deepEqual(ops.max(x, torch.full([2, 2], 4)).toArray(), [[4, 5], [7, 4]]);
    // sum(self) and sum(self, dim[]) and a dtype-only call
    assert.equal(ops.sum(x).item(), 16);
    assert.deepEqual(ops.sum(x, [1]).toArray(), [6, 10]);
    assert.equal(ops.sum(x, 'float64').dtype, 'float64');
    // view(size) vs view(dtype)
    assert.deepEqual(x.view([4]).shape, [4]);
    assert.equal(x.view('int32').dtype, 'int32');
  });
});

test('in-place variants exist and return the receiver', () => {
  torch.scope(() => {
    const x = torch.ones([3]);
    const before = torch.memory().tensors;
    assert.equal(x.mul_(2), x);
    assert.equal(x.add_(torch.ones([3]), 3), x);
    assert.equal(ops.relu_(x.neg_()), x);
    assert.deepEqual(x.toArray(), [0, 0, 0]);
    // only the one new tensor (the ones([3]) operand) was created
    assert.equal(torch.memory().tensors, before + 1);
  });
});
