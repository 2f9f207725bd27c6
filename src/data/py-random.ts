// CPython's `random` module, reproduced where the reference implementation depends on it
// (docs/method.md 3.3: `random.seed(process_index)` then `random.randint(lo, hi - window)` before every
// rollout fixes one SDE window start per GPU). The generator is MT19937; an integer seed goes
// through init_by_array on its 32-bit words (least significant first), as CPython's
// random_seed does; random(), getrandbits(k), randrange/randint (via _randbelow with
// getrandbits) and shuffle draw from it exactly as Lib/random.py 3.x does, so the same seed gives
// the same values as /usr/bin/python3 (test/data/py-random.test.ts checks printed values).

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;

/** The 32-bit words of |seed|, least significant first ([0] for 0), as CPython's random_seed. */
export function seedWords(seed: number | bigint): number[] {
  if (typeof seed === 'number' && !Number.isSafeInteger(seed)) throw new Error(`PyRandom: the seed must be a safe integer or a bigint, got ${seed}`);
  let n = BigInt(seed);
  if (n < 0n) n = -n;
  const words: number[] = [];
  while (n > 0n) {
    words.push(Number(n & 0xffffffffn));
    n >>= 32n;
  }
  return words.length ? words : [0];
}

export class PyRandom {
  private readonly mt = new Uint32Array(N);
  private index = N + 1;

  constructor(seed: number | bigint = 0) {
    this.seed(seed);
  }

  /** random.seed(an int): init_by_array over the seed's 32-bit words. */
  seed(seed: number | bigint): void {
    this.initByArray(seedWords(seed));
  }

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.index = N;
  }

  private initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= N) { mt[0] = mt[N - 1]!; i = 1; }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) { mt[0] = mt[N - 1]!; i = 1; }
    }
    mt[0] = 0x80000000;
    this.index = N;
  }

  private twist(): void {
    const mt = this.mt;
    for (let k = 0; k < N; k++) {
      const y = (mt[k]! & UPPER) | (mt[(k + 1) % N]! & LOWER);
      mt[k] = mt[(k + M) % N]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }

  /** One tempered 32-bit output (genrand_uint32). */
  nextUint32(): number {
    if (this.index >= N) this.twist();
    let y = this.mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** random.random(): 53 bits from two outputs, in [0, 1). */
  random(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** random.getrandbits(k) for 0 <= k <= 53: 32-bit words least significant first, the last one shifted. */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > 53) throw new Error(`PyRandom.getrandbits: k must be an integer in [0, 53], got ${k}`);
    if (k === 0) return 0;
    if (k <= 32) return this.nextUint32() >>> (32 - k);
    const low = this.nextUint32();
    const high = this.nextUint32() >>> (64 - k);
    return high * 4294967296 + low;
  }

  /** Random._randbelow_with_getrandbits: k = n.bit_length() bits, redrawn until below n. */
  randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`PyRandom.randbelow: n must be a positive safe integer, got ${n}`);
    const k = n.toString(2).length;
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /** random.randrange(start, stop) with step 1 (randrange(stop) when stop is omitted). */
  randrange(start: number, stop?: number): number {
    if (stop === undefined) {
      if (!(start > 0)) throw new Error(`PyRandom.randrange: empty range for randrange(${start})`);
      return this.randbelow(start);
    }
    const width = stop - start;
    if (!(width > 0)) throw new Error(`PyRandom.randrange: empty range [${start}, ${stop})`);
    return start + this.randbelow(width);
  }

  /** random.randint(a, b): a <= n <= b. */
  randint(a: number, b: number): number {
    return this.randrange(a, b + 1);
  }

  /** random.shuffle(x): in place, swapping x[i] with x[randbelow(i + 1)] from the end. */
  shuffle<T>(x: T[]): T[] {
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      [x[i], x[j]] = [x[j]!, x[i]!];
    }
    return x;
  }
}
