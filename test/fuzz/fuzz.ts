// Bounded, seeded fuzzing for the suite: each fuzz test runs a fixed number of cases drawn from a
// seeded generator, so a failure names its seed and case and replays exactly. CI runs the small
// default; UNICHAR_FUZZ_ITERATIONS=N runs N cases per test (longer local runs), and
// UNICHAR_FUZZ_SEED=S starts from another seed.
import { Rng } from '../../src/data/index.js';


export interface FuzzCase {
  rng: Rng;
  /** Case index, for messages. */
  i: number;
  /** "seed S case I": enough to replay this case. */
  label: string;
}

export function fuzzIterations(ciDefault: number): number {
  const env = process.env.UNICHAR_FUZZ_ITERATIONS;
  if (env === undefined || env === '') return ciDefault;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Error(`UNICHAR_FUZZ_ITERATIONS must be a positive integer, got '${env}'`);
  return n;
}

export function fuzzSeed(): number {
  const env = process.env.UNICHAR_FUZZ_SEED;
  if (env === undefined || env === '') return 2026;
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`UNICHAR_FUZZ_SEED must be an integer, got '${env}'`);
  return n;
}

/** Runs `body` for each case; each case has its own generator seeded from (seed, i). */
export async function fuzz(ciDefault: number, body: (c: FuzzCase) => void | Promise<void>): Promise<number> {
  const seed = fuzzSeed();
  const n = fuzzIterations(ciDefault);
  for (let i = 0; i < n; i++) {
    const rng = new Rng((seed * 1_000_003 + i) >>> 0);
    await body({ rng, i, label: `seed ${seed} case ${i}` });
  }
  return n;
}

/** Copies `bytes` with 1 to `maxFlips` bytes replaced by random values, plus sometimes a
 * truncation or an extension: the mutations a damaged file or a hostile one shows. */
export function mutateBytes(rng: Rng, bytes: Uint8Array, maxFlips = 4): Uint8Array {
  let out = new Uint8Array(bytes);
  const flips = 1 + rng.int(maxFlips);
  for (let k = 0; k < flips && out.length; k++) {
    const at = rng.int(out.length);
    // Half the flips are single-bit (close to valid), half whole bytes (anything).
    out[at] = rng.next() < 0.5 ? out[at]! ^ (1 << rng.int(8)) : rng.int(256);
  }
  const r = rng.next();
  if (r < 0.1) out = out.subarray(0, rng.int(out.length + 1));
  else if (r < 0.15) out = new Uint8Array([...out, ...Array.from({ length: 1 + rng.int(16) }, () => rng.int(256))]);
  return out;
}

/** Values of every JSON kind, including ones that look meaningful here. */
const ODD_VALUES = (rng: Rng): unknown => [null, 0, -1, 1e308, '', 'x', true, [], {}, [1, 'a'], { a: { b: [] } }, '<START>', 'data:image/png;base64,AAAA'][rng.int(13)];

/** Replaces one value somewhere in the parsed JSON by a value of another kind. */
export function swapValue(rng: Rng, v: unknown, depth = 0): unknown {
  if (v === null || typeof v !== 'object' || depth > 6 || rng.next() < 0.15) return ODD_VALUES(rng);
  const keys = Object.keys(v);
  if (keys.length === 0) return ODD_VALUES(rng);
  const k = keys[rng.int(keys.length)]!;
  const copy = (Array.isArray(v) ? [...v] : { ...v }) as Record<string, unknown>;
  copy[k] = swapValue(rng, copy[k], depth + 1);
  return copy;
}

/** Messages a user should never read: JavaScript internals instead of what is wrong. */
export const JS_INTERNALS = /is not a function|Cannot read propert|Cannot destructure|is not iterable|undefined \(reading|Maximum call stack|\bat [\w.<>]+ \(|\[object Object\]/;
