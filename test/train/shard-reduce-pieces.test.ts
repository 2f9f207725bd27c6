// The gradient reduce-scatter in pieces (src/train/shard/chunked-reduce.ts, docs/sharding.md 2):
// slices of a flat buffer described by parts of odd sizes, and a piecewise reduce-scatter whose
// sums are the float32 rank-order sums of the whole flat buffer, element by element.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, scope, tensor, zeros, type Tensor } from '../../src/torch/index.js';
import { reduceScatterInPieces, sliceOfParts } from '../../src/train/shard/index.js';

const values = (n: number, seed: number): number[] => Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed * 7.3 + i * 1.7) * 10 ** ((i % 5) - 2)));

test('sliceOfParts returns the elements of the concatenation across part boundaries', () => scope(() => {
  const a = values(3, 1);
  const b = values(5, 2);
  const c = values(2, 3);
  const f = { parts: [tensor(a), tensor(b), tensor(c)], offsets: [0, 3, 8] };
  const all = [...a, ...b, ...c];
  for (const [start, len] of [[0, 10], [2, 3], [3, 5], [7, 3], [9, 1], [4, 1]] as const) {
    const got = sliceOfParts(f, start, len).flatMap((t) => [...t.dataSync() as Float32Array]);
    assert.deepEqual(got, all.slice(start, start + len), `slice [${start}, ${start + len})`);
  }
}));

test('reduceScatterInPieces: every piece size gives the rank-order float32 sums of one whole call', () => noGrad(() => scope(() => {
  // one process stands in for W ranks that hold the same flat buffer: the scatter adds the W
  // received slices of its piece in rank order, as the Gloo fallback does
  const W = 3;
  const S = 7;
  const sizes = [4, 9, 1, 7];
  const parts = sizes.map((n, i) => tensor(values(n, i + 1)));
  const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((x, y) => x + y, 0));
  const flat = parts.flatMap((p) => [...p.dataSync() as Float32Array]);
  assert.equal(flat.length, W * S);
  const expected = Array.from({ length: S }, (_, j) => {
    let acc = 0.5; // accumulates onto what is there
    for (let r = 0; r < W; r++) acc = Math.fround(acc + flat[r * S + j]!);
    return acc;
  });
  for (const piece of [1, 3, 5, 6, 8, 21, 1 << 22]) {
    const acc = zeros([S]).add_(0.5);
    const seen: number[] = [];
    const scatter = (send: Tensor, out: Tensor): void => {
      const k = out.numel;
      assert.equal(send.numel, W * k);
      seen.push(send.numel);
      for (let r = 0; r < W; r++) out.add_(send.narrow(0, r * k, k));
    };
    reduceScatterInPieces({ parts, offsets }, W, acc, scatter, piece);
    assert.deepEqual([...acc.dataSync() as Float32Array], expected, `piece ${piece}`);
    const k = Math.max(1, Math.floor(piece / W));
    assert.equal(seen.length, Math.ceil(S / k), `piece ${piece}: pieces`);
    assert.ok(Math.max(...seen) <= Math.max(W, piece), `piece ${piece}: send buffer ${Math.max(...seen)}`);
  }
  assert.throws(() => reduceScatterInPieces({ parts, offsets }, W, zeros([S]), () => {}, 0), /pieceElements must be an integer >= 1/);
})));
