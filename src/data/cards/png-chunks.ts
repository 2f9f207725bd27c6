// Minimal PNG chunk reader/writer with CRC-32, for character cards (docs/ecosystem.md 1.1). Written
// here rather than taken from the unmaintained png-chunks-* packages SillyTavern uses.

export interface PngChunk {
  type: string;
  data: Uint8Array;
}

export const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Largest chunk accepted by default: a card's JSON is kilobytes; 32 MiB leaves room for
 * embedded images without letting a corrupt length field allocate gigabytes. */
export const DEFAULT_MAX_CHUNK_BYTES = 32 * 1024 * 1024;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 as PNG defines it (ISO 3309), over the chunk type and data. */
export function crc32(...parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export class PngError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PngError';
  }
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

const latin1 = (b: Uint8Array) => Array.from(b, (x) => String.fromCharCode(x)).join('');
function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) throw new PngError(`character U+${c.toString(16)} is not Latin-1`);
    out[i] = c;
  }
  return out;
}

export function readPngChunks(bytes: Uint8Array, maxChunkBytes = DEFAULT_MAX_CHUNK_BYTES): PngChunk[] {
  if (!isPng(bytes)) throw new PngError('not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: PngChunk[] = [];
  let pos = 8;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) throw new PngError(`truncated chunk header at byte ${pos}`);
    const len = view.getUint32(pos);
    const type = latin1(bytes.subarray(pos + 4, pos + 8));
    if (len > maxChunkBytes) throw new PngError(`chunk ${type} at byte ${pos} is ${len} bytes, over the ${maxChunkBytes}-byte limit`);
    if (pos + 12 + len > bytes.length) throw new PngError(`chunk ${type} at byte ${pos} runs past the end of the file`);
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    const crc = view.getUint32(pos + 8 + len);
    if (crc !== crc32(bytes.subarray(pos + 4, pos + 8), data)) throw new PngError(`chunk ${type} at byte ${pos} has a bad CRC`);
    chunks.push({ type, data });
    pos += 12 + len;
    if (type === 'IEND') break;
  }
  if (chunks[chunks.length - 1]?.type !== 'IEND') throw new PngError('no IEND chunk');
  return chunks;
}

export function encodePngChunks(chunks: PngChunk[]): Uint8Array {
  const size = 8 + chunks.reduce((n, c) => n + 12 + c.data.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(PNG_SIGNATURE, 0);
  let pos = 8;
  for (const c of chunks) {
    const type = latin1Bytes(c.type);
    if (type.length !== 4) throw new PngError(`chunk type must be 4 characters: ${c.type}`);
    view.setUint32(pos, c.data.length);
    out.set(type, pos + 4);
    out.set(c.data, pos + 8);
    view.setUint32(pos + 8 + c.data.length, crc32(type, c.data));
    pos += 12 + c.data.length;
  }
  return out;
}

/** tEXt: Latin-1 keyword, NUL, Latin-1 text (PNG spec 11.3.4.3). */
export function textChunk(keyword: string, text: string): PngChunk {
  const k = latin1Bytes(keyword);
  const t = latin1Bytes(text);
  const data = new Uint8Array(k.length + 1 + t.length);
  data.set(k, 0);
  data.set(t, k.length + 1);
  return { type: 'tEXt', data };
}

/** Keyword of a tEXt, zTXt or iTXt chunk (all start with keyword + NUL). */
export function chunkKeyword(c: PngChunk): string {
  const z = c.data.indexOf(0);
  return latin1(c.data.subarray(0, z < 0 ? c.data.length : z));
}

export function decodeTextChunk(c: PngChunk): { keyword: string; text: string } {
  const z = c.data.indexOf(0);
  if (z < 0) throw new PngError('tEXt chunk without a NUL separator');
  return { keyword: latin1(c.data.subarray(0, z)), text: latin1(c.data.subarray(z + 1)) };
}
