// safetensors under hostile input: shapes that overflow libtorch's sizes are refused naming the
// file, and seeded byte flips of a valid file load or fail with an error naming the file, never
// a crash, a JavaScript error or a leaked tensor (test/fuzz/fuzz.ts for the iteration knobs).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { safetensors as st } from '../../src/torch/index.js';
import { JS_INTERNALS, fuzz, mutateBytes } from '../fuzz/fuzz.js';

const dir = mkdtempSync(join(tmpdir(), 'uc-st-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function build(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('a zero-size shape whose strides overflow int64 is refused naming the file and the tensor', () => {
  for (const shape of [[2 ** 40, 2 ** 40, 0], [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 0], [0, 2 ** 32, 2 ** 31]]) {
    const bytes = build({ w: { dtype: 'F32', shape, data_offsets: [0, 0] } });
    assert.throws(() => st.loadFromBuffer(bytes, { label: 'hostile.safetensors' }), (e: unknown) => /^hostile\.safetensors: tensor 'w': shape \[.*\] overflows libtorch's 64-bit sizes$/.test((e as Error).message), JSON.stringify(shape));
    const path = join(dir, 'overflow.safetensors');
    writeFileSync(path, bytes);
    assert.throws(() => st.loadHeader(path), (e: unknown) => (e as Error).message.startsWith(`${path}: tensor 'w': shape`));
  }
  // Zero-size shapes that fit are fine: [0, 2^31] has strides 2^31 and 1.
  const ok = st.loadFromBuffer(build({ w: { dtype: 'F32', shape: [0, 2 ** 31], data_offsets: [0, 0] } }));
  assert.deepEqual(ok.tensors.get('w')!.shape, [0, 2 ** 31]);
  ok.tensors.get('w')!.dispose();
});

test('fuzz: byte flips of a valid file load consistently or fail naming the file', async () => {
  const start = torch.memory().tensors;
  const valid = torch.scope(() =>
    st.saveToBuffer(
      {
        'a.weight': torch.arange(0, 12, 1, { dtype: 'float32' }).reshape([3, 4]),
        'a.bias': torch.tensor([1.5, -2], { dtype: 'bfloat16' }),
        steps: torch.tensor([7], { dtype: 'int64' }),
        mask: torch.tensor([true, false, true]),
      },
      { format: 'pt' },
    ),
  );
  const path = join(dir, 'fuzz.safetensors');
  let refused = 0;
  const n = await fuzz(400, ({ rng, label }) => {
    const bytes = mutateBytes(rng, valid);
    writeFileSync(path, bytes);
    for (const [where, load] of [['buffer', () => st.loadFromBuffer(bytes, { label: 'fuzz.safetensors' })], ['file', () => st.load(path)]] as const) {
      const name = where === 'buffer' ? 'fuzz.safetensors' : path;
      torch.scope(() => {
        try {
          const { tensors } = load();
          // What loaded matches what the header says.
          const header = st.loadHeaderFromBuffer(bytes);
          for (const [k, t] of tensors) assert.deepEqual(t.shape, header.tensors.get(k)!.shape, `${label}: ${k}`);
        } catch (e) {
          refused++;
          assert.ok(e instanceof Error, `${label}: threw ${String(e)}`);
          assert.ok(e.message.startsWith(`${name}: `), `${label} (${where}): message does not name the file: ${e.message}`);
          assert.doesNotMatch(e.message, JS_INTERNALS, `${label} (${where})`);
        }
      });
    }
  });
  assert.ok(refused > 0 && refused < 2 * n, `some mutations load and some are refused (${refused} of ${2 * n} refused)`);
  assert.equal(torch.memory().tensors, start, 'no tensor leaked');
});
