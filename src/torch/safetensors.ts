// safetensors: the weight file format of the Hugging Face ecosystem.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON (starting with '{',
// right-padded with spaces), then the data buffer. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data buffer,
// end exclusive) and may hold "__metadata__", a string -> string map. Data is little-endian
// and row-major; the tensors' byte ranges must tile the buffer exactly (no overlaps, no holes).
//
// Reading is streamed through a file handle: the header first, then only the byte ranges
// of the tensors asked for, so listing or partially loading a large file never reads it
// whole. Every malformed input gives an Error that starts with the file path and says what
// is wrong; nothing is read outside the file or the buffer.
import {
  closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync,
} from 'node:fs';
import { endianness } from 'node:os';
import { constants as bufferConstants } from 'node:buffer';
import { fromBytes } from './creation.js';
import { type DType, ITEM_SIZE } from './dtype.js';
import { Tensor, type Device } from './tensor.js';

/** The largest header accepted (as in the reference implementation). */
export const MAX_HEADER_SIZE = 100_000_000;

/** safetensors dtype names this engine loads and saves, with the engine's names. */
export const SAFETENSORS_TO_DTYPE = {
  BOOL: 'bool', U8: 'uint8', I8: 'int8', I16: 'int16', I32: 'int32', I64: 'int64',
  F16: 'float16', BF16: 'bfloat16', F32: 'float32', F64: 'float64', C64: 'complex64',
} as const satisfies Record<string, DType>;
export type SupportedSafetensorsDType = keyof typeof SAFETENSORS_TO_DTYPE;

/** Valid safetensors dtype names that libtorch 1.13 has no type for, with their size in bits. */
const UNSUPPORTED_BITS: Record<string, number> = {
  U16: 16, U32: 32, U64: 64, F8_E4M3: 8, F8_E5M2: 8, F8_E8M0: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
};

const DTYPE_TO_SAFETENSORS: Partial<Record<DType, SupportedSafetensorsDType>> = Object.fromEntries(
  Object.entries(SAFETENSORS_TO_DTYPE).map(([k, v]) => [v, k]),
);

/** One tensor's entry in the header. */
export interface TensorInfo {
  /** The safetensors dtype name as written in the file (e.g. 'BF16'). */
  dtype: string;
  /** The engine's dtype, or null when libtorch cannot hold this dtype (U16, U32, U64, F8...). */
  torchDtype: DType | null;
  shape: number[];
  /** [begin, end) relative to the start of the data buffer. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Tensor entries, ordered by their position in the data buffer. */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** N, the header length in bytes. */
  headerSize: number;
  /** Where the data buffer starts in the file (8 + N). */
  dataStart: number;
  /** Length of the data buffer in bytes. */
  dataSize: number;
}

export interface SafetensorsLoadOptions {
  /** Only these tensors (names, or a predicate on the name); a listed name that is absent is an error. */
  keys?: readonly string[] | ((name: string) => boolean);
  /** Device to put the tensors on (default 'cpu'). */
  device?: Device;
}

export interface Loaded {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

export type TensorDict = Map<string, Tensor> | Record<string, Tensor>;

class SafetensorsError extends Error {
  constructor(label: string, message: string) {
    super(`${label}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

// ---------------------------------------------------------------------------------------
// Header parsing and validation

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Finds a duplicate key in any object of a JSON text that JSON.parse accepted (JSON.parse
 * silently keeps the last of duplicates). Returns the key and where it is, or null.
 */
export function findDuplicateJsonKey(text: string): { key: string; path: string } | null {
  type Frame = { obj: boolean; keys: Set<string>; expectKey: boolean; name: string };
  const stack: Frame[] = [];
  let lastKey = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < text.length && text.charCodeAt(i) !== 0x22) {
        if (text.charCodeAt(i) === 0x5c /* \ */) i++;
        i++;
      }
      const top = stack[stack.length - 1];
      if (top && top.obj && top.expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.keys.has(key)) {
          return { key, path: [...stack.slice(1).map((f) => f.name), key].join('.') };
        }
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      const name = parent ? (parent.obj ? lastKey : '[]') : '';
      stack.push({ obj: c === 0x7b, keys: new Set(), expectKey: c === 0x7b, name });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top && top.obj) top.expectKey = true;
    }
  }
  return null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/** Validates the 8-byte length prefix against the total size; returns N. */
function checkPrefix(label: string, prefix: Uint8Array, totalSize: number): number {
  if (totalSize < 8) {
    throw new SafetensorsError(label, `not a safetensors file: ${totalSize} bytes, shorter than the 8-byte header length`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new SafetensorsError(label, `header length ${n} is larger than the ${MAX_HEADER_SIZE}-byte limit (corrupt length or not a safetensors file)`);
  }
  const size = Number(n);
  if (8 + size > totalSize) {
    throw new SafetensorsError(label, `header length ${size} runs past the end of the file (${totalSize} bytes; file truncated?)`);
  }
  if (size < 2) throw new SafetensorsError(label, `header length ${size} is too small to hold a JSON object`);
  return size;
}

function parseHeader(label: string, headerBytes: Uint8Array, totalSize: number): SafetensorsHeader {
  const headerSize = headerBytes.length;
  const dataStart = 8 + headerSize;
  const dataSize = totalSize - dataStart;
  if (headerBytes[0] !== 0x7b) {
    throw new SafetensorsError(label, `header does not start with '{' (first byte 0x${(headerBytes[0] ?? 0).toString(16).padStart(2, '0')})`);
  }
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    throw new SafetensorsError(label, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(label, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SafetensorsError(label, `header JSON is ${describe(json)}, not an object`);
  }
  const dup = findDuplicateJsonKey(text);
  if (dup) throw new SafetensorsError(label, `header has the duplicate key '${dup.path}'`);

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(label, entry);
      continue;
    }
    tensors.set(name, checkEntry(label, name, entry, dataSize));
  }
  return { tensors: checkCoverage(label, tensors, dataSize), metadata, headerSize, dataStart, dataSize };
}

function checkMetadata(label: string, entry: unknown): Record<string, string> {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new SafetensorsError(label, `__metadata__ is ${describe(entry)}, not a string -> string map`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(label, `__metadata__ value of '${k}' is ${describe(v)}, not a string`);
    }
    // defineProperty: a key named '__proto__' stays an ordinary entry.
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function checkEntry(label: string, name: string, entry: unknown, dataSize: number): TensorInfo {
  const where = `tensor '${name}'`;
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new SafetensorsError(label, `${where}: entry is ${describe(entry)}, not an object`);
  }
  const e = entry as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') {
      throw new SafetensorsError(label, `${where}: unknown field '${k}' (expected dtype, shape, data_offsets)`);
    }
  }
  for (const k of ['dtype', 'shape', 'data_offsets']) {
    if (!(k in e)) throw new SafetensorsError(label, `${where}: missing field '${k}'`);
  }
  const dtype = e.dtype;
  if (typeof dtype !== 'string') throw new SafetensorsError(label, `${where}: dtype is ${describe(dtype)}, not a string`);
  let bits: number;
  let torchDtype: DType | null = null;
  if (Object.hasOwn(SAFETENSORS_TO_DTYPE, dtype)) {
    torchDtype = SAFETENSORS_TO_DTYPE[dtype as SupportedSafetensorsDType];
    bits = ITEM_SIZE[torchDtype] * 8;
  } else if (Object.hasOwn(UNSUPPORTED_BITS, dtype)) {
    bits = UNSUPPORTED_BITS[dtype]!;
  } else {
    throw new SafetensorsError(label, `${where}: unknown dtype ${describe(dtype)} (expected one of ${[...Object.keys(SAFETENSORS_TO_DTYPE), ...Object.keys(UNSUPPORTED_BITS)].join(', ')})`);
  }

  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((s) => typeof s === 'number' && Number.isSafeInteger(s) && s >= 0)) {
    throw new SafetensorsError(label, `${where}: shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
  }
  const offs = e.data_offsets;
  if (
    !Array.isArray(offs) || offs.length !== 2 ||
    !offs.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new SafetensorsError(label, `${where}: data_offsets ${JSON.stringify(offs)} is not [begin, end] with non-negative integers below 2^53`);
  }
  const [begin, end] = offs as [number, number];
  if (end < begin) throw new SafetensorsError(label, `${where}: data_offsets [${begin}, ${end}] end before begin`);
  if (end > dataSize) {
    throw new SafetensorsError(label, `${where}: data_offsets [${begin}, ${end}] out of range of the ${dataSize}-byte data buffer (file truncated?)`);
  }
  let numel = 1n;
  for (const s of shape as number[]) numel *= BigInt(s);
  const nbits = numel * BigInt(bits);
  if (nbits % 8n !== 0n) {
    throw new SafetensorsError(label, `${where}: ${numel} elements of ${dtype} do not fill whole bytes`);
  }
  const need = nbits / 8n;
  if (BigInt(end - begin) !== need) {
    throw new SafetensorsError(label, `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${need}`);
  }
  // Only a shape holding a zero gets here with a huge product: libtorch computes strides as
  // products of the later dimensions, zeros or not, in int64, so [2^40, 2^40, 0] holds no data
  // but overflows there.
  let span = BigInt(Math.ceil(bits / 8));
  for (const s of shape as number[]) span *= BigInt(Math.max(s, 1));
  if (span >= 1n << 63n) {
    throw new SafetensorsError(label, `${where}: shape [${(shape as number[]).join(', ')}] overflows libtorch's 64-bit sizes`);
  }
  return { dtype, torchDtype, shape: [...(shape as number[])], dataOffsets: [begin, end] };
}

/** The byte ranges must tile [0, dataSize) exactly: no overlaps and no holes. */
/** Returns the entries ordered by data offset. */
function checkCoverage(label: string, tensors: Map<string, TensorInfo>, dataSize: number): Map<string, TensorInfo> {
  const sorted = [...tensors].sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  let at = 0;
  let prev = '';
  for (const [name, info] of sorted) {
    const [begin, end] = info.dataOffsets;
    if (begin < at) {
      throw new SafetensorsError(label, `tensor '${name}' [${begin}, ${end}] overlaps tensor '${prev}' (which ends at ${at})`);
    }
    if (begin > at) {
      throw new SafetensorsError(label, `hole in the data buffer: bytes [${at}, ${begin}) belong to no tensor (before tensor '${name}')`);
    }
    at = end;
    prev = name;
  }
  if (at !== dataSize) {
    throw new SafetensorsError(label, `hole in the data buffer: bytes [${at}, ${dataSize}) at the end belong to no tensor`);
  }
  return new Map(sorted);
}

// ---------------------------------------------------------------------------------------
// Loading

/** Reads `length` bytes at `position` of an open file, failing on a short file. */
function readExact(label: string, fd: number, position: number, length: number): Buffer {
  if (length > bufferConstants.MAX_LENGTH) {
    throw new SafetensorsError(label, `cannot read ${length} bytes at ${position} into one buffer (Node's limit is ${bufferConstants.MAX_LENGTH})`);
  }
  const out = Buffer.allocUnsafe(length);
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(CHUNK, length - done), position + done);
    if (n === 0) {
      throw new SafetensorsError(label, `unexpected end of file at byte ${position + done} (file truncated or changed while reading)`);
    }
    done += n;
  }
  return out;
}

function selectKeys(label: string, header: SafetensorsHeader, keys: SafetensorsLoadOptions['keys']): string[] {
  if (keys === undefined) return [...header.tensors.keys()];
  if (typeof keys === 'function') return [...header.tensors.keys()].filter((k) => keys(k));
  for (const k of keys) {
    if (!header.tensors.has(k)) throw new SafetensorsError(label, `no tensor named '${k}' in the file`);
  }
  return [...new Set(keys)];
}

function makeTensors(
  label: string,
  header: SafetensorsHeader,
  names: string[],
  read: (begin: number, end: number) => Uint8Array,
  device: Device | undefined,
): Map<string, Tensor> {
  // Check every dtype before reading anything.
  for (const name of names) {
    const info = header.tensors.get(name)!;
    if (info.torchDtype === null) {
      throw new SafetensorsError(label, `tensor '${name}' has dtype ${info.dtype}, which libtorch 1.13 does not support`);
    }
  }
  const out = new Map<string, Tensor>();
  try {
    for (const name of names) {
      const info = header.tensors.get(name)!;
      const bytes = read(info.dataOffsets[0], info.dataOffsets[1]);
      if (info.torchDtype === 'bool') {
        for (let i = 0; i < bytes.length; i++) {
          if (bytes[i]! > 1) {
            throw new SafetensorsError(label, `tensor '${name}' (BOOL) holds the byte value ${bytes[i]} at element ${i}; only 0 and 1 are valid`);
          }
        }
      }
      out.set(name, tensorFrom(label, name, bytes, info, device));
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  }
  return out;
}

/** A libtorch refusal (e.g. a device without room) still names the file and the tensor; its
 * first line says what went wrong, the rest is the C++ trace. */
function tensorFrom(label: string, name: string, bytes: Uint8Array, info: TensorInfo, device: Device | undefined): Tensor {
  try {
    return fromBytes(bytes, info.torchDtype!, info.shape, device);
  } catch (e) {
    throw new SafetensorsError(label, `tensor '${name}': libtorch could not make it (${(e as Error).message.split('\n')[0]})`);
  }
}

function withFile<T>(path: string, fn: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new SafetensorsError(path, `cannot open: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new SafetensorsError(path, 'not a regular file');
    return fn(fd, st.size);
  } finally {
    closeSync(fd);
  }
}

function readHeaderFd(path: string, fd: number, size: number): SafetensorsHeader {
  const prefix = size >= 8 ? readExact(path, fd, 0, 8) : new Uint8Array(8);
  const n = checkPrefix(path, prefix, size);
  return parseHeader(path, readExact(path, fd, 8, n), size);
}

/** Reads and validates only the header: names, dtypes, shapes and offsets, no tensor data. */
export function loadHeader(path: string): SafetensorsHeader {
  return withFile(path, (fd, size) => readHeaderFd(path, fd, size));
}

/**
 * Loads the tensors (all, or those named in options.keys) and the metadata of a file.
 * The tensors are owned by the current scope (or the caller, outside any scope).
 */
export function load(path: string, options: SafetensorsLoadOptions = {}): Loaded {
  return withFile(path, (fd, size) => {
    const header = readHeaderFd(path, fd, size);
    const names = selectKeys(path, header, options.keys);
    const tensors = makeTensors(path, header, names, (b, e) => readExact(path, fd, header.dataStart + b, e - b), options.device);
    return { tensors, metadata: header.metadata };
  });
}

/** Reads and validates the header of an in-memory safetensors file. */
export function loadHeaderFromBuffer(bytes: Uint8Array, label = '<buffer>'): SafetensorsHeader {
  const n = checkPrefix(label, bytes.length >= 8 ? bytes : new Uint8Array(8), bytes.length);
  return parseHeader(label, bytes.subarray(8, 8 + n), bytes.length);
}

/** Loads an in-memory safetensors file (e.g. from saveToBuffer or a download). */
export function loadFromBuffer(bytes: Uint8Array, options: SafetensorsLoadOptions & { label?: string } = {}): Loaded {
  const label = options.label ?? '<buffer>';
  const header = loadHeaderFromBuffer(bytes, label);
  const names = selectKeys(label, header, options.keys);
  const tensors = makeTensors(label, header, names, (b, e) => bytes.subarray(header.dataStart + b, header.dataStart + e), options.device);
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------
// Saving

interface Planned {
  name: string;
  tensor: Tensor;
  dtype: SupportedSafetensorsDType;
  shape: number[];
  nbytes: number;
}

/** Validates the inputs and lays out the header; reads no tensor data. */
function plan(label: string, tensors: TensorDict, metadata: Record<string, string> | undefined): { header: Uint8Array; items: Planned[]; dataSize: number } {
  if (endianness() !== 'LE') throw new SafetensorsError(label, 'saving on a big-endian machine is not supported');
  const entries: [string, unknown][] = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const items: Planned[] = [];
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    if (typeof name !== 'string') throw new SafetensorsError(label, `tensor names must be strings, got ${describe(name)}`);
    if (name === '__metadata__') throw new SafetensorsError(label, "'__metadata__' cannot be a tensor name");
    if (seen.has(name)) throw new SafetensorsError(label, `duplicate tensor name '${name}'`);
    seen.add(name);
    if (!(t instanceof Tensor)) throw new SafetensorsError(label, `'${name}' is ${describe(t)}, not a Tensor`);
    if (t.isDisposed) throw new SafetensorsError(label, `tensor '${name}' is disposed`);
    const dt = t.dtype;
    const st = DTYPE_TO_SAFETENSORS[dt];
    if (!st) throw new SafetensorsError(label, `tensor '${name}' has dtype ${dt}, which safetensors cannot store`);
    const shape = t.shape;
    const nbytes = shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[dt];
    items.push({ name, tensor: t, dtype: st, shape, nbytes });
  }
  items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Written by hand rather than by JSON.stringify of an object: JS objects put integer-like
  // keys first and treat '__proto__' specially; here the order is exactly the sorted one.
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new SafetensorsError(label, `metadata is ${describe(metadata)}, not a string -> string map`);
    }
    const meta: string[] = [];
    for (const k of Object.keys(metadata).sort()) {
      const v = (metadata as Record<string, unknown>)[k];
      if (typeof v !== 'string') throw new SafetensorsError(label, `metadata value of '${k}' is ${describe(v)}, not a string`);
      meta.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":{${meta.join(',')}}`);
  }
  let offset = 0;
  for (const it of items) {
    const entry = { dtype: it.dtype, shape: it.shape, data_offsets: [offset, offset + it.nbytes] };
    parts.push(`${JSON.stringify(it.name)}:${JSON.stringify(entry)}`);
    offset += it.nbytes;
  }
  const raw = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(raw.length / 8) * 8; // 8 + N is then a multiple of 8
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  raw.copy(header, 8);
  return { header, items, dataSize: offset };
}

function tensorBytes(label: string, it: Planned): Uint8Array {
  const data = it.tensor.dataSync();
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length !== it.nbytes) {
    throw new SafetensorsError(label, `tensor '${it.name}' gave ${bytes.length} bytes, expected ${it.nbytes}`);
  }
  return bytes;
}

/** Serializes tensors (and an optional string -> string metadata map) into memory. */
export function saveToBuffer(tensors: TensorDict, metadata?: Record<string, string>): Uint8Array {
  const label = '<buffer>';
  const { header, items, dataSize } = plan(label, tensors, metadata);
  const out = new Uint8Array(header.length + dataSize);
  out.set(header, 0);
  let at = header.length;
  for (const it of items) {
    out.set(tensorBytes(label, it), at);
    at += it.nbytes;
  }
  return out;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Writes tensors (and an optional string -> string metadata map) to `path`. The file is
 * written to `path + '.tmp'`, synced and then renamed over `path`, so a failure or crash
 * never leaves a broken file at `path` (an existing file stays untouched).
 */
export function save(path: string, tensors: TensorDict, metadata?: Record<string, string>): void {
  const { header, items } = plan(path, tensors, metadata);
  const tmp = path + '.tmp';
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new SafetensorsError(path, `cannot write: ${(e as Error).message}`);
  }
  let ok = false;
  try {
    writeAll(fd, header);
    for (const it of items) writeAll(fd, tensorBytes(path, it));
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
    ok = true;
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(path, `save failed: ${(e as Error).message}`);
  } finally {
    if (fd >= 0) {
      try { closeSync(fd); } catch { /* already failing */ }
    }
    if (!ok) {
      try { unlinkSync(tmp); } catch { /* nothing to remove */ }
    }
  }
}
