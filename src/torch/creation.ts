// Creating tensors: from JS arrays and typed arrays, and the usual factories with an
// options object ({ dtype, device, requiresGrad }) in place of positional TensorOptions.
import { native } from './native.js';
import { Tensor, type Device, type NestedArray } from './tensor.js';
import { type DType, dtypeOfTypedArray, isDType } from './dtype.js';
import * as ops from './ops.generated.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

let defaultDevice: Device | undefined;

/**
 * Runs fn with the factories below (zeros, ones, empty, full, arange, linspace, eye, rand, randn,
 * randint) creating on `device` when no device is given. With 'meta' this builds a module's
 * parameters as shapes only, without memory (e.g. the 7B key list, docs/bagel-7b-mot-keys.md).
 */
export function withDefaultDevice<T>(device: Device, fn: () => T): T {
  const saved = defaultDevice;
  defaultDevice = device;
  try {
    return fn();
  } finally {
    defaultDevice = saved;
  }
}

function finish(t: Tensor, o: TensorOptions): Tensor {
  if (o.requiresGrad) native.setRequiresGrad(t.id, true);
  return t;
}

function inferShape(data: NestedArray<number | boolean>, shape: number[]): void {
  if (Array.isArray(data)) {
    shape.push(data.length);
    if (data.length > 0) inferShape(data[0]!, shape);
  }
}

function flatten(data: NestedArray<number | boolean>, shape: number[], dim: number, out: (number | boolean)[]): void {
  if (dim === shape.length) {
    if (Array.isArray(data)) throw new TypeError('tensor(): ragged nested array (too deep at some position)');
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    throw new TypeError(`tensor(): ragged nested array: expected length ${shape[dim]} at depth ${dim}`);
  }
  for (const d of data) flatten(d, shape, dim + 1, out);
}

/** Encodes flat JS values into the bytes of a dtype. */
function encode(values: ArrayLike<number | boolean>, dtype: DType): ArrayBufferView {
  const n = values.length;
  const num = (k: number): number => {
    const v = values[k]!;
    return typeof v === 'boolean' ? (v ? 1 : 0) : v;
  };
  switch (dtype) {
    case 'float32': return Float32Array.from({ length: n }, (_, k) => num(k));
    case 'float64': return Float64Array.from({ length: n }, (_, k) => num(k));
    case 'int32': return Int32Array.from({ length: n }, (_, k) => num(k));
    case 'int16': return Int16Array.from({ length: n }, (_, k) => num(k));
    case 'int8': return Int8Array.from({ length: n }, (_, k) => num(k));
    case 'uint8':
    case 'bool': return Uint8Array.from({ length: n }, (_, k) => (dtype === 'bool' ? (num(k) ? 1 : 0) : num(k)));
    case 'int64': {
      const out = new BigInt64Array(n);
      for (let k = 0; k < n; k++) {
        const v = num(k);
        if (!Number.isInteger(v)) throw new TypeError(`tensor(): ${v} is not an integer (dtype int64)`);
        out[k] = BigInt(v);
      }
      return out;
    }
    default:
      return Float32Array.from({ length: n }, (_, k) => num(k)); // converted below
  }
}

/**
 * A tensor from nested JS arrays, a scalar, or a typed array (1-D unless `shape` is given).
 * dtype is inferred as PyTorch does (all booleans: bool; all integers: int64; else float32),
 * or from the typed array. For float16/bfloat16 raw bits use fromBits().
 */
export function tensor(
  data: NestedArray<number | boolean> | ArrayBufferView,
  options: TensorOptions & { shape?: number[] } = {},
): Tensor {
  let t: Tensor;
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfTypedArray(data);
    if (!own) throw new TypeError('tensor(): unsupported typed array (use fromBits for float16/bfloat16 bits)');
    const n = (data as unknown as ArrayLike<unknown>).length;
    const shape = options.shape ?? [n];
    t = new Tensor(native.fromBuffer(data, own, shape));
  } else {
    const shape: number[] = [];
    inferShape(data, shape);
    const flat: (number | boolean)[] = [];
    flatten(data, shape, 0, flat);
    for (const v of flat) {
      if (typeof v !== 'number' && typeof v !== 'boolean') throw new TypeError(`tensor(): values must be numbers or booleans, got ${typeof v}`);
    }
    const inferred: DType = flat.every((v) => typeof v === 'boolean')
      ? flat.length ? 'bool' : 'float32'
      : flat.every((v) => typeof v === 'boolean' || Number.isInteger(v)) ? 'int64' : 'float32';
    const direct = options.dtype ?? inferred;
    const stored: DType = direct === 'float16' || direct === 'bfloat16' || direct.startsWith('complex') ? 'float32' : direct;
    t = new Tensor(native.fromBuffer(encode(flat, stored), stored, options.shape ?? shape));
  }
  if ((options.dtype && options.dtype !== t.dtype) || (options.device && options.device !== 'cpu')) {
    const moved = t.to({ dtype: options.dtype, device: options.device });
    t.dispose();
    t = moved;
  }
  return finish(t, options);
}

/** A float16 or bfloat16 tensor from its raw 16-bit patterns. */
export function fromBits(bits: Uint16Array, dtype: 'float16' | 'bfloat16', shape: number[], device?: Device): Tensor {
  return new Tensor(native.fromBuffer(bits, dtype, shape, device));
}

/** A tensor of a given dtype from raw little-endian bytes (safetensors uses this). */
export function fromBytes(bytes: Uint8Array, dtype: DType, shape: number[], device?: Device): Tensor {
  return new Tensor(native.fromBuffer(bytes, dtype, shape, device));
}

function checkDtype(o: TensorOptions, fn: string): void {
  if (o.dtype !== undefined && !isDType(o.dtype)) throw new TypeError(`${fn}(): unknown dtype '${String(o.dtype)}'`);
}

export function zeros(shape: number[], o: TensorOptions = {}): Tensor {
  checkDtype(o, 'zeros');
  return finish(ops.zeros(shape, o.dtype ?? 'float32', undefined, o.device ?? defaultDevice), o);
}
export function ones(shape: number[], o: TensorOptions = {}): Tensor {
  checkDtype(o, 'ones');
  return finish(ops.ones(shape, o.dtype ?? 'float32', undefined, o.device ?? defaultDevice), o);
}
export function empty(shape: number[], o: TensorOptions = {}): Tensor {
  checkDtype(o, 'empty');
  return finish(ops.empty(shape, o.dtype ?? 'float32', undefined, o.device ?? defaultDevice), o);
}
export function full(shape: number[], value: number | boolean, o: TensorOptions = {}): Tensor {
  checkDtype(o, 'full');
  return finish(ops.full(shape, value, o.dtype ?? (typeof value === 'boolean' ? 'bool' : 'float32'), undefined, o.device ?? defaultDevice), o);
}
/** Values from start to end (exclusive) by step; int64 when all three are integers, as in PyTorch. */
export function arange(start: number, end?: number, step = 1, o: TensorOptions = {}): Tensor {
  checkDtype(o, 'arange');
  if (end === undefined) [start, end] = [0, start];
  const ints = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  return finish(ops.arange(start, end, step, o.dtype ?? (ints ? 'int64' : 'float32'), undefined, o.device ?? defaultDevice), o);
}
export function linspace(start: number, end: number, steps: number, o: TensorOptions = {}): Tensor {
  checkDtype(o, 'linspace');
  return finish(ops.linspace(start, end, steps, o.dtype ?? 'float32', undefined, o.device ?? defaultDevice), o);
}
export function eye(n: number, o: TensorOptions = {}): Tensor {
  return finish(ops.eye(n, o.dtype ?? 'float32', undefined, o.device ?? defaultDevice), o);
}
/** Uniform on [0, 1), from the global generator (see manualSeed). */
export function rand(shape: number[], o: TensorOptions = {}): Tensor {
  checkDtype(o, 'rand');
  return finish(ops.rand(shape, o.dtype ?? 'float32', undefined, o.device ?? defaultDevice), o);
}
/** Standard normal, from the global generator (see manualSeed). */
export function randn(shape: number[], o: TensorOptions = {}): Tensor {
  checkDtype(o, 'randn');
  return finish(ops.randn(shape, o.dtype ?? 'float32', undefined, o.device ?? defaultDevice), o);
}
/** Integers uniform on [low, high). */
export function randint(low: number, high: number, shape: number[], o: TensorOptions = {}): Tensor {
  return finish(ops.randint(low, high, shape, o.dtype ?? 'int64', undefined, o.device ?? defaultDevice), o);
}
