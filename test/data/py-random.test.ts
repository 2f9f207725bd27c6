// CPython's `random` (src/data/py-random.ts) against values printed by /usr/bin/python3
// (test/data/fixtures/make_py_random_fixture.py): seeding an int, random(), getrandbits(k),
// randint/randrange via _randbelow, shuffle, and the reference's window start per rank.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PyRandom, seedWords } from '../../src/data/index.js';

interface Case {
  seed: string;
  random: number[];
  getrandbits: [number, number][];
  randint_0_4: number[];
  randrange_1_1000: number[];
  randrange_1: number[];
  shuffle_10: number[];
  after_random: number;
}
const fixture = JSON.parse(readFileSync(new URL('../../../test/data/fixtures/py_random_fixture.json', import.meta.url), 'utf8')) as {
  cases: Case[];
  window_start_per_rank: number[];
};

test('PyRandom draws what CPython draws after random.seed(n), call for call', () => {
  assert.ok(fixture.cases.length >= 10);
  for (const c of fixture.cases) {
    const r = new PyRandom(BigInt(c.seed));
    assert.deepEqual(Array.from({ length: 5 }, () => r.random()), c.random, `random() after seed ${c.seed}`);
    for (const [k, v] of c.getrandbits) assert.equal(r.getrandbits(k), v, `getrandbits(${k}) after seed ${c.seed}`);
    assert.deepEqual(Array.from({ length: 10 }, () => r.randint(0, 4)), c.randint_0_4, `randint(0, 4) after seed ${c.seed}`);
    assert.deepEqual(Array.from({ length: 5 }, () => r.randrange(1, 1000)), c.randrange_1_1000);
    assert.deepEqual(Array.from({ length: 3 }, () => r.randrange(1)), c.randrange_1);
    const xs = Array.from({ length: 10 }, (_, i) => i);
    assert.equal(r.shuffle(xs), xs, 'shuffle is in place');
    assert.deepEqual(xs, c.shuffle_10, `shuffle after seed ${c.seed}`);
    assert.equal(r.random(), c.after_random);
  }
});

test('the reference SDE window start per rank: seed(r), randint(0, 4) gives 3, 1, 0, 1, 1, 4, 4, 2 for ranks 0-7', () => {
  assert.deepEqual(fixture.window_start_per_rank.slice(0, 8), [3, 1, 0, 1, 1, 4, 4, 2]);
  const starts = fixture.window_start_per_rank.map((_, rank) => new PyRandom(rank).randint(0, 4));
  assert.deepEqual(starts, fixture.window_start_per_rank);
  // Reseeding restarts the stream (the reference reseeds before every rollout).
  const r = new PyRandom(5);
  r.random();
  r.seed(5);
  assert.equal(r.randint(0, 4), fixture.window_start_per_rank[5]);
});

test('seed words and argument errors', () => {
  assert.deepEqual(seedWords(0), [0]);
  assert.deepEqual(seedWords(2 ** 32 + 3), [3, 1]);
  assert.deepEqual(seedWords(-7), [7]);
  assert.throws(() => new PyRandom(1.5), /safe integer/);
  const r = new PyRandom(1);
  assert.throws(() => r.getrandbits(54), /\[0, 53\]/);
  assert.throws(() => r.randrange(3, 3), /empty range/);
  assert.throws(() => r.randint(2, 1), /empty range/);
  assert.equal(r.getrandbits(0), 0);
});
