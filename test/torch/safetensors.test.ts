// safetensors load/save: round trips of every dtype, a hand-written fixture that checks the
// byte layout independently of save(), key selection, and the malformed-file cases.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { safetensors as st, type Tensor } from '../../src/torch/index.js';

const dir = mkdtempSync(join(tmpdir(), 'uc-safetensors-'));
const startTensors = torch.memory().tensors;
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
function tmpFile(bytes?: Uint8Array): string {
  const p = join(dir, `f${fileCount++}.safetensors`);
  if (bytes) writeFileSync(p, bytes);
  return p;
}

function expectError(fn: () => unknown, label: string, re: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, `expected an Error matching ${re}, got ${String(err)}`);
  assert.ok(err.message.startsWith(label + ': '), `message should start with '${label}: ': ${err.message}`);
  assert.match(err.message, re);
}

/** A safetensors file from a header text and data bytes; n overrides the length prefix. */
function build(header: string | Uint8Array, data: ArrayLike<number> = [], n?: bigint): Uint8Array {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(Array.from(data), 8 + h.length);
  return out;
}

/** Checks a file both through the file reader and the buffer reader. */
function expectBad(bytes: Uint8Array, re: RegExp): void {
  const p = tmpFile(bytes);
  expectError(() => st.loadHeader(p), p, re);
  expectError(() => st.load(p), p, re);
  expectError(() => st.loadFromBuffer(bytes), '<buffer>', re);
}

function bytesOf(t: Tensor): Buffer {
  const d = t.dataSync();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

function makeAllDtypes(): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  m.set('f32', torch.tensor(new Float32Array([0, -0, 1.5, -3.25, Infinity, -Infinity, NaN, 1e-45, 3.4e38]), { shape: [3, 3] }));
  m.set('f64', torch.tensor(new Float64Array([Math.PI, -0, 5e-324, -1.7976931348623157e308]), { shape: [2, 2] }));
  m.set('f16', torch.fromBits(new Uint16Array([0x0000, 0x8000, 0x3c00, 0xc000, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x7bff, 0x1234]), 'float16', [2, 5]));
  m.set('bf16', torch.fromBits(new Uint16Array([0x3f80, 0xbf80, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x4049, 0x0000]), 'bfloat16', [2, 2, 2]));
  m.set('i64', torch.tensor(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 12345678901234n])));
  m.set('i32', torch.tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, 7]), { shape: [2, 2] }));
  m.set('i16', torch.tensor(new Int16Array([-32768, 32767, 0, -1, 5, 6]), { shape: [3, 2] }));
  m.set('i8', torch.tensor(new Int8Array([-128, 127, 0, -1])));
  m.set('u8', torch.tensor(new Uint8Array([0, 255, 1, 128]), { shape: [2, 1, 2] }));
  m.set('bool', torch.tensor([[true, false, true], [false, false, true]]));
  m.set('c64', torch.fromBytes(new Uint8Array(new Float32Array([1, -2, 0.5, 3]).buffer), 'complex64', [2]));
  m.set('scalar_f32', torch.tensor(new Float32Array([42.5]), { shape: [] }));
  m.set('scalar_bf16', torch.fromBits(new Uint16Array([0xc2c8]), 'bfloat16', []));
  m.set('scalar_i64', torch.tensor(new BigInt64Array([-7n]), { shape: [] }));
  m.set('empty_f32', torch.zeros([0, 3]));
  m.set('empty_i64', torch.zeros([2, 0], { dtype: 'int64' }));
  m.set('empty_bool', torch.zeros([0], { dtype: 'bool' }));
  m.set('empty_f16', torch.zeros([4, 0, 2], { dtype: 'float16' }));
  return m;
}

function assertSameTensors(a: Map<string, Tensor>, b: Map<string, Tensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.equal(u.dtype, t.dtype, `dtype of ${k}`);
    assert.deepEqual(u.shape, t.shape, `shape of ${k}`);
    assert.ok(bytesOf(u).equals(bytesOf(t)), `bytes of ${k}`);
  }
}

test('round trip of every supported dtype, scalars and zero-size tensors (file and buffer)', () => {
  torch.scope(() => {
    const src = makeAllDtypes();
    const p = tmpFile();
    st.save(p, src);
    assert.ok(!existsSync(p + '.tmp'), 'no temp file left behind');
    const loaded = st.load(p);
    assertSameTensors(src, loaded.tensors);
    assert.deepEqual(loaded.metadata, {});

    const buf = st.saveToBuffer(src);
    assert.ok(Buffer.from(buf).equals(readFileSync(p)), 'saveToBuffer and save write the same bytes');
    assertSameTensors(src, st.loadFromBuffer(buf).tensors);

    // Exact values, independent of byte comparison.
    const t = loaded.tensors;
    assert.deepEqual(t.get('f16')!.dataSync(), new Uint16Array([0x0000, 0x8000, 0x3c00, 0xc000, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x7bff, 0x1234]));
    assert.deepEqual(t.get('f16')!.toArray(), [[0, -0, 1, -2, Infinity], [-Infinity, NaN, 2 ** -24, 65504, 0.0007572174072265625]]);
    assert.deepEqual(t.get('bf16')!.dataSync(), new Uint16Array([0x3f80, 0xbf80, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x4049, 0x0000]));
    assert.deepEqual(t.get('bf16')!.toArray(), [[[1, -1], [Infinity, -Infinity]], [[NaN, 2 ** -133], [3.140625, 0]]]);
    assert.deepEqual(t.get('i64')!.dataSync(), new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 12345678901234n]));
    assert.deepEqual(t.get('f64')!.toArray(), [[Math.PI, -0], [5e-324, -1.7976931348623157e308]]);
    assert.deepEqual(t.get('bool')!.toArray(), [[true, false, true], [false, false, true]]);
    assert.deepEqual(t.get('u8')!.toArray(), [[[0, 255]], [[1, 128]]]);
    assert.deepEqual(t.get('i8')!.toArray(), [-128, 127, 0, -1]);
    assert.deepEqual(t.get('i16')!.toArray(), [[-32768, 32767], [0, -1], [5, 6]]);
    assert.deepEqual(t.get('i32')!.toArray(), [[-(2 ** 31), 2 ** 31 - 1], [0, 7]]);
    assert.equal(t.get('scalar_f32')!.item(), 42.5);
    assert.deepEqual(t.get('scalar_f32')!.shape, []);
    assert.equal(t.get('scalar_bf16')!.item(), -100);
    assert.equal(t.get('scalar_i64')!.item(), -7);
    assert.deepEqual(t.get('empty_i64')!.shape, [2, 0]);
    assert.deepEqual(t.get('empty_f16')!.shape, [4, 0, 2]);

    // The header lists dtypes by their safetensors names, ordered by offset.
    const h = st.loadHeader(p);
    assert.equal(h.tensors.get('bf16')!.dtype, 'BF16');
    assert.equal(h.tensors.get('bool')!.dtype, 'BOOL');
    assert.equal(h.tensors.get('c64')!.dtype, 'C64');
    assert.equal(h.tensors.get('i64')!.torchDtype, 'int64');
    assert.equal(h.dataStart % 8, 0, 'data buffer starts 8-byte aligned');
    const begins = [...h.tensors.values()].map((i) => i.dataOffsets[0]);
    assert.deepEqual(begins, [...begins].sort((x, y) => x - y));
  });
});

test('a Record of tensors, a larger tensor, a tensor view and metadata round trip', () => {
  torch.scope(() => {
    const big = torch.randn([256, 1024]);
    const view = torch.arange(0, 24, 1, { dtype: 'float32' }).reshape([2, 3, 4]).permute([2, 0, 1]);
    const meta = { format: 'pt', note: 'ünïcødé ✓ "quoted" \\ back', empty: '', __proto__x: 'p' };
    const p = tmpFile();
    st.save(p, { big, view }, meta);
    const { tensors, metadata } = st.load(p);
    assert.deepEqual(metadata, meta);
    assert.ok(bytesOf(tensors.get('big')!).equals(bytesOf(big)));
    assert.deepEqual(tensors.get('view')!.toArray(), view.toArray());
    assert.deepEqual(tensors.get('view')!.shape, [4, 2, 3]);
    assert.deepEqual(st.loadFromBuffer(st.saveToBuffer({ big }, { a: 'b' })).metadata, { a: 'b' });
  });
});

test('metadata keys named __proto__ and tensor names that look like integers survive', () => {
  torch.scope(() => {
    const meta: Record<string, string> = {};
    Object.defineProperty(meta, '__proto__', { value: 'x', enumerable: true });
    const buf = st.saveToBuffer(new Map([['10', torch.ones([1])], ['2', torch.ones([1])], ['a', torch.ones([1])]]), meta);
    const text = Buffer.from(buf.subarray(8)).toString('utf8');
    assert.ok(text.indexOf('"10"') < text.indexOf('"2"') && text.indexOf('"2"') < text.indexOf('"a"'), 'keys sorted as strings');
    const loaded = st.loadFromBuffer(buf);
    assert.deepEqual(Object.keys(loaded.metadata), ['__proto__']);
    assert.equal(Object.getOwnPropertyDescriptor(loaded.metadata, '__proto__')!.value, 'x');
    assert.deepEqual([...loaded.tensors.keys()], ['10', '2', 'a']);
  });
});

// The layout written by hand, byte by byte: this checks the format without trusting save().
const FIXTURE_HEADER =
  '{"__metadata__":{"format":"pt"},' +
  '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
  '"b":{"dtype":"I16","shape":[1,2],"data_offsets":[8,12]},' +
  '"c":{"dtype":"BF16","shape":[],"data_offsets":[12,14]},' +
  '"d":{"dtype":"BOOL","shape":[2],"data_offsets":[14,16]},' +
  '"e":{"dtype":"I64","shape":[0],"data_offsets":[16,16]}}';
const FIXTURE_DATA = [
  0x00, 0x00, 0x80, 0x3f, // a[0] = 1.0f
  0x00, 0x00, 0x00, 0xc0, // a[1] = -2.0f
  0x01, 0x00, // b[0][0] = 1
  0xff, 0xff, // b[0][1] = -1
  0x80, 0x3f, // c = bf16 1.0
  0x01, 0x00, // d = [true, false]
];

function fixtureBytes(): Uint8Array {
  const h = Buffer.from(FIXTURE_HEADER, 'ascii');
  const n = h.length;
  assert.ok(n < 65536);
  const prefix = [n & 0xff, n >> 8, 0, 0, 0, 0, 0, 0];
  return Uint8Array.from([...prefix, ...h, ...FIXTURE_DATA]);
}

test('loads a fixture file written byte by byte, and save() writes the expected bytes', () => {
  torch.scope(() => {
    const bytes = fixtureBytes();
    const p = tmpFile(bytes);
    const { tensors, metadata } = st.load(p);
    assert.deepEqual(metadata, { format: 'pt' });
    assert.deepEqual([...tensors.keys()], ['a', 'b', 'c', 'd', 'e']);
    const a = tensors.get('a')!;
    assert.equal(a.dtype, 'float32');
    assert.deepEqual(a.toArray(), [1, -2]);
    const b = tensors.get('b')!;
    assert.equal(b.dtype, 'int16');
    assert.deepEqual(b.toArray(), [[1, -1]]);
    const c = tensors.get('c')!;
    assert.equal(c.dtype, 'bfloat16');
    assert.deepEqual(c.shape, []);
    assert.deepEqual(c.dataSync(), new Uint16Array([0x3f80]));
    assert.equal(c.item(), 1);
    assert.deepEqual(tensors.get('d')!.toArray(), [true, false]);
    assert.equal(tensors.get('e')!.dtype, 'int64');
    assert.deepEqual(tensors.get('e')!.shape, [0]);

    const h = st.loadHeader(p);
    assert.equal(h.headerSize, FIXTURE_HEADER.length);
    assert.equal(h.dataStart, 8 + FIXTURE_HEADER.length);
    assert.equal(h.dataSize, 16);
    assert.deepEqual(h.tensors.get('b'), { dtype: 'I16', torchDtype: 'int16', shape: [1, 2], dataOffsets: [8, 12] });

    // save() of the same tensors: the same header (keys sorted, metadata first), padded with
    // spaces to a multiple of 8, then the same data bytes.
    const out = st.saveToBuffer(new Map([['e', tensors.get('e')!], ['d', tensors.get('d')!], ['c', c], ['b', b], ['a', a]]), { format: 'pt' });
    const padded = Math.ceil(FIXTURE_HEADER.length / 8) * 8;
    const expected = Uint8Array.from([
      padded & 0xff, padded >> 8, 0, 0, 0, 0, 0, 0,
      ...Buffer.from(FIXTURE_HEADER.padEnd(padded, ' '), 'ascii'),
      ...FIXTURE_DATA,
    ]);
    assert.deepEqual(out, expected);
  });
});

test('a header with extra whitespace, unordered offsets and non-ASCII names loads', () => {
  torch.scope(() => {
    const header = ' \n{ "β" : {"data_offsets":[4,8],"shape":[1],"dtype":"I32"},\n "α":{"dtype":"U8","shape":[4],"data_offsets":[0,4]} }   ';
    const bytes = build(header.trimStart() + '\t', [9, 8, 7, 6, 5, 0, 0, 0]);
    const { tensors } = st.loadFromBuffer(bytes);
    assert.deepEqual([...tensors.keys()], ['α', 'β']);
    assert.deepEqual(tensors.get('α')!.toArray(), [9, 8, 7, 6]);
    assert.deepEqual(tensors.get('β')!.toArray(), [5]);
  });
});

test('key selection: names, a predicate, and a missing name', () => {
  torch.scope(() => {
    const p = tmpFile(fixtureBytes());
    const one = st.load(p, { keys: ['c'] });
    assert.deepEqual([...one.tensors.keys()], ['c']);
    assert.deepEqual(one.metadata, { format: 'pt' });
    const some = st.load(p, { keys: (k) => k === 'a' || k === 'd' });
    assert.deepEqual([...some.tensors.keys()], ['a', 'd']);
    assert.deepEqual(some.tensors.get('a')!.toArray(), [1, -2]);
    assert.equal(st.load(p, { keys: [] }).tensors.size, 0);
    expectError(() => st.load(p, { keys: ['a', 'zzz'] }), p, /no tensor named 'zzz'/);
    expectError(() => st.loadFromBuffer(fixtureBytes(), { keys: ['zzz'], label: 'mem' }), 'mem', /no tensor named 'zzz'/);
  });
});

test('dtypes libtorch lacks: the header lists them, loading them names key and dtype', () => {
  torch.scope(() => {
    const header = JSON.stringify({
      ok: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      u32: { dtype: 'U32', shape: [1], data_offsets: [4, 8] },
      u16: { dtype: 'U16', shape: [2], data_offsets: [8, 12] },
      u64: { dtype: 'U64', shape: [1], data_offsets: [12, 20] },
      f8: { dtype: 'F8_E4M3', shape: [4], data_offsets: [20, 24] },
    });
    const bytes = build(header, new Uint8Array(24));
    const p = tmpFile(bytes);
    const h = st.loadHeader(p);
    assert.equal(h.tensors.get('u32')!.dtype, 'U32');
    assert.equal(h.tensors.get('u32')!.torchDtype, null);
    expectError(() => st.load(p), p, /tensor 'u32' has dtype U32, which libtorch 1\.13 does not support/);
    expectError(() => st.load(p, { keys: ['u16'] }), p, /'u16' has dtype U16/);
    expectError(() => st.load(p, { keys: ['u64'] }), p, /'u64' has dtype U64/);
    expectError(() => st.load(p, { keys: ['f8'] }), p, /'f8' has dtype F8_E4M3/);
    assert.deepEqual(st.load(p, { keys: ['ok'] }).tensors.get('ok')!.toArray(), [0]);
  });
});

test('files shorter than 8 bytes', () => {
  for (const n of [0, 1, 7]) expectBad(new Uint8Array(n), /shorter than the 8-byte header length/);
});

test('a valid file truncated at every point fails with a clear error', () => {
  const full = fixtureBytes();
  const headerEnd = 8 + FIXTURE_HEADER.length;
  for (let cut = 0; cut < full.length; cut++) {
    const re = cut < 8 ? /shorter than the 8-byte/ : cut < headerEnd ? /header length \d+ runs past the end of the file/ : /out of range of the \d+-byte data buffer \(file truncated\?\)/;
    expectBad(full.subarray(0, cut), re);
  }
  // Extra bytes at the end are a hole.
  expectBad(Uint8Array.from([...full, 0]), /hole in the data buffer: bytes \[16, 17\)/);
});

test('corrupt header length', () => {
  const h = FIXTURE_HEADER;
  expectBad(build(h, FIXTURE_DATA, 2n ** 64n - 1n), /header length 18446744073709551615 is larger than the 100000000-byte limit/);
  expectBad(build(h, FIXTURE_DATA, 2n ** 40n), /larger than the 100000000-byte limit/);
  expectBad(build(h, FIXTURE_DATA, 100_000_001n), /larger than the 100000000-byte limit/);
  expectBad(build(h, FIXTURE_DATA, BigInt(h.length + 17)), /runs past the end of the file/);
  expectBad(build(h, FIXTURE_DATA, BigInt(h.length - 1)), /header is not valid JSON/);
  expectBad(build(h, FIXTURE_DATA, BigInt(h.length + 1)), /header is not valid JSON/);
  expectBad(build(h, FIXTURE_DATA, 0n), /header length 0 is too small/);
  expectBad(build(h, FIXTURE_DATA, 1n), /header length 1 is too small/);
});

test('header that is not UTF-8 JSON object', () => {
  expectBad(build('[1, 2]'), /header does not start with '\{' \(first byte 0x5b\)/);
  expectBad(build(' {}'), /does not start with '\{'/);
  expectBad(build('"{}"'), /does not start with '\{'/);
  expectBad(build('\u0000\u0000'), /does not start with '\{' \(first byte 0x00\)/);
  expectBad(build('{"a": '), /header is not valid JSON/);
  expectBad(build('{}}'), /header is not valid JSON/);
  expectBad(build('{} x'), /header is not valid JSON/);
  expectBad(build("{'a': 1}"), /header is not valid JSON/);
  expectBad(build(Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), /header is not valid UTF-8/);
  expectBad(build(Uint8Array.from([0x7b, 0x7d, 0xc3])), /header is not valid UTF-8/);
});

const entry = (dtype: unknown, shape: unknown, offs: unknown): Record<string, unknown> => ({ dtype, shape, data_offsets: offs });
const one = (e: unknown, data: ArrayLike<number> = new Uint8Array(8)): Uint8Array => build(JSON.stringify({ x: e }), data);

test('entries: unknown dtype, bad shape, bad data_offsets, size mismatch', () => {
  expectBad(one(entry('F33', [2], [0, 8])), /tensor 'x': unknown dtype "F33"/);
  expectBad(one(entry('f32', [2], [0, 8])), /unknown dtype "f32"/);
  expectBad(one(entry(4, [2], [0, 8])), /tensor 'x': dtype is number 4, not a string/);
  expectBad(one(entry('F32', [-2], [0, 8])), /shape \[-2\] is not an array of non-negative integers/);
  expectBad(one(entry('F32', [1.5], [0, 8])), /shape \[1\.5\] is not an array/);
  expectBad(one(entry('F32', '2', [0, 8])), /shape "2" is not an array/);
  expectBad(one(entry('F32', [null], [0, 8])), /shape \[null\] is not an array/);
  expectBad(one(entry('F32', [1e300, 1e300], [0, 8])), /shape .* is not an array of non-negative integers/);
  expectBad(one(entry('F32', [2 ** 40, 2 ** 40], [0, 8])), /span 8 bytes but shape \[1099511627776, 1099511627776\] of F32 needs 4835703278458516698824704/);
  expectBad(one(entry('F32', [2], [0])), /data_offsets \[0\] is not \[begin, end\]/);
  expectBad(one(entry('F32', [2], [0, 8, 8])), /data_offsets \[0,8,8\] is not \[begin, end\]/);
  expectBad(one(entry('F32', [2], [0, '8'])), /data_offsets \[0,"8"\] is not \[begin, end\]/);
  expectBad(one(entry('F32', [2], [0, 7.5])), /data_offsets .* is not \[begin, end\]/);
  expectBad(one(entry('F32', [2], [-8, 0])), /data_offsets .* is not \[begin, end\]/);
  expectBad(one(entry('F32', [2], { begin: 0, end: 8 })), /data_offsets .* is not \[begin, end\]/);
  expectBad(one(entry('F32', [2], [8, 0])), /data_offsets \[8, 0\] end before begin/);
  expectBad(one(entry('F32', [3], [0, 8])), /tensor 'x': data_offsets \[0, 8\] span 8 bytes but shape \[3\] of F32 needs 12/);
  expectBad(one(entry('F64', [], [0, 4]), new Uint8Array(4)), /span 4 bytes but shape \[\] of F64 needs 8/);
  expectBad(one(entry('F32', [2], [0, 9])), /data_offsets \[0, 9\] out of range of the 8-byte data buffer/);
  expectBad(one(entry('F32', [2], [2 ** 53, 2 ** 53 + 8])), /is not \[begin, end\]|out of range/);
  expectBad(one(entry('F32', [4], [0, 16])), /out of range of the 8-byte data buffer/);
  expectBad(one('F32'), /tensor 'x': entry is "F32", not an object/);
  expectBad(one([1, 2]), /tensor 'x': entry is an array, not an object/);
  expectBad(one(null), /tensor 'x': entry is null, not an object/);
  expectBad(one({ dtype: 'F32', shape: [2] }), /tensor 'x': missing field 'data_offsets'/);
  expectBad(one({ ...entry('F32', [2], [0, 8]), extra: 1 }), /tensor 'x': unknown field 'extra'/);
});

test('overlapping ranges and holes in the data buffer', () => {
  const two = (a: unknown, b: unknown, n: number): Uint8Array => build(JSON.stringify({ a, b }), new Uint8Array(n));
  expectBad(two(entry('F32', [2], [0, 8]), entry('F32', [2], [4, 12]), 12), /tensor 'b' \[4, 12\] overlaps tensor 'a' \(which ends at 8\)/);
  expectBad(two(entry('F32', [2], [0, 8]), entry('F32', [2], [0, 8]), 8), /overlaps tensor/);
  expectBad(two(entry('F32', [2], [0, 8]), entry('F32', [0], [4, 4]), 8), /tensor 'b' \[4, 4\] overlaps tensor 'a'/);
  expectBad(two(entry('F32', [1], [0, 4]), entry('F32', [1], [8, 12]), 12), /hole in the data buffer: bytes \[4, 8\) belong to no tensor \(before tensor 'b'\)/);
  expectBad(two(entry('F32', [1], [4, 8]), entry('F32', [0], [8, 8]), 8), /hole in the data buffer: bytes \[0, 4\)/);
  expectBad(two(entry('F32', [1], [0, 4]), entry('F32', [0], [4, 4]), 8), /hole in the data buffer: bytes \[4, 8\) at the end/);
  expectBad(build('{}', [1, 2, 3]), /hole in the data buffer: bytes \[0, 3\) at the end/);
  expectBad(build('{"__metadata__":{}}', [1]), /hole in the data buffer/);
  // A zero-size tensor at a boundary is fine.
  torch.scope(() => {
    const ok = two(entry('F32', [2], [0, 8]), entry('F32', [0, 5], [8, 8]), 8);
    const { tensors } = st.loadFromBuffer(ok);
    assert.deepEqual(tensors.get('b')!.shape, [0, 5]);
    assert.equal(st.loadFromBuffer(build('{}')).tensors.size, 0);
  });
});

test('duplicate keys anywhere in the header', () => {
  const e = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
  const data = new Uint8Array(4);
  expectBad(build(`{"a":${e},"a":${e}}`, data), /duplicate key 'a'/);
  expectBad(build(`{"a":${e}, "\\u0061" :${e}}`, data), /duplicate key 'a'/);
  expectBad(build('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', data), /duplicate key 'a\.dtype'/);
  expectBad(build(`{"__metadata__":{"k":"1","k":"2"},"a":${e}}`, data), /duplicate key '__metadata__\.k'/);
  expectBad(build(`{"__metadata__":{},"a":${e},"__metadata__":{}}`, data), /duplicate key '__metadata__'/);
  // The same key in different objects, and key-like strings inside values, are not duplicates.
  torch.scope(() => {
    const ok = build(`{"__metadata__":{"a":"a","x":"{\\"a\\": 1, \\"a\\": 2}"},"a":${e}}`, data);
    assert.equal(st.loadFromBuffer(ok).metadata.x, '{"a": 1, "a": 2}');
  });
  assert.equal(st.findDuplicateJsonKey('{"a":[{"b":1},{"b":2}],"c":{"a":{"a":1}}}'), null);
  assert.deepEqual(st.findDuplicateJsonKey('{"a":[{"b":1,"b":2}]}'), { key: 'b', path: 'a.[].b' });
});

test('__metadata__ must be a string -> string map', () => {
  expectBad(build('{"__metadata__":"x"}'), /__metadata__ is "x", not a string -> string map/);
  expectBad(build('{"__metadata__":null}'), /__metadata__ is null, not a string -> string map/);
  expectBad(build('{"__metadata__":["a"]}'), /__metadata__ is an array/);
  expectBad(build('{"__metadata__":{"k":1}}'), /__metadata__ value of 'k' is number 1, not a string/);
  expectBad(build('{"__metadata__":{"k":{"n":"v"}}}'), /__metadata__ value of 'k' is an object, not a string/);
});

test('BOOL data other than 0/1 is rejected and tensors made before the error are freed', () => {
  const before = torch.memory().tensors;
  const bytes = build(JSON.stringify({ a: entry('F32', [1], [0, 4]), b: entry('BOOL', [2], [4, 6]) }), [0, 0, 0, 0, 1, 2]);
  const p = tmpFile(bytes);
  assert.equal(st.loadHeader(p).tensors.size, 2); // the header itself is fine
  expectError(() => st.load(p), p, /tensor 'b' \(BOOL\) holds the byte value 2 at element 1/);
  expectError(() => st.loadFromBuffer(bytes), '<buffer>', /tensor 'b' \(BOOL\) holds the byte value 2 at element 1/);
  assert.equal(torch.memory().tensors, before);
});

test('missing files and directories give errors naming the path', () => {
  const p = join(dir, 'does-not-exist.safetensors');
  expectError(() => st.load(p), p, /cannot open/);
  expectError(() => st.loadHeader(dir), dir, /not a regular file|cannot open/);
});

test('save rejects bad input and a failed save leaves an existing file untouched', () => {
  torch.scope(() => {
    const p = tmpFile();
    const good = torch.tensor(new Float32Array([1, 2, 3]));
    st.save(p, { good }, { v: '1' });
    const original = readFileSync(p);

    const gone = torch.ones([2]);
    gone.dispose();
    expectError(() => st.save(p, { good, gone }), p, /tensor 'gone' is disposed/);
    expectError(() => st.save(p, { good }, { v: 1 } as unknown as Record<string, string>), p, /metadata value of 'v' is number 1, not a string/);
    expectError(() => st.save(p, { good }, 'meta' as unknown as Record<string, string>), p, /metadata is "meta", not a string -> string map/);
    expectError(() => st.save(p, { good, c: torch.zeros([2], { dtype: 'complex128' }) }), p, /tensor 'c' has dtype complex128, which safetensors cannot store/);
    expectError(() => st.save(p, { __metadata__: good }), p, /'__metadata__' cannot be a tensor name/);
    expectError(() => st.save(p, { x: [1, 2] as unknown as Tensor }), p, /'x' is an array, not a Tensor/);
    expectError(() => st.saveToBuffer({ gone }), '<buffer>', /tensor 'gone' is disposed/);
    assert.ok(readFileSync(p).equals(original));
    assert.ok(!existsSync(p + '.tmp'));

    // A failure while writing (the temp path cannot be opened) also leaves the file alone.
    mkdirSync(p + '.tmp');
    expectError(() => st.save(p, { other: torch.zeros([5]) }), p, /cannot write/);
    assert.ok(readFileSync(p).equals(original));
    rmSync(p + '.tmp', { recursive: true });

    // A failure in the rename (the target is a directory) removes the temp file.
    const d = join(dir, 'a-directory');
    mkdirSync(d);
    mkdirSync(join(d, 'keep'));
    expectError(() => st.save(d, { good }), d, /save failed/);
    assert.ok(!existsSync(d + '.tmp'));
    assert.ok(existsSync(join(d, 'keep')));

    // A successful save replaces the file.
    st.save(p, { other: torch.zeros([5]) });
    assert.deepEqual([...st.load(p).tensors.keys()], ['other']);
  });
});

test('no tensors leak', () => {
  assert.equal(torch.memory().tensors, startTensors);
});
