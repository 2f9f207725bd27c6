// The batched decode step (docs/serving.md 9): B sequences with their own caches of different
// lengths advanced one token together equal each sequence decoded alone at batch 1 (the same
// logits bit for bit on the native float32 and bfloat16 loops, whose gemm sums each row as gemv does; within
// 1e-12 on the float64 ATen path; the same greedy tokens), with sequences joining and leaving
// between steps; and the
// per-sequence random source makes a sampled sequence independent of what runs beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { noGrad, tensor } from '../../src/torch/index.js';
import { native } from '../../src/torch/native.js';
import { Bagel, DecodeSequence, decodeBatchStep, decodeSteps, newContext, prefillText, seededRandom, MICRO, type KVCache } from '../../src/model/index.js';

const ODD = { ...MICRO, llm: { ...MICRO.llm, hiddenSize: 40, numHeads: 4, numKvHeads: 2, headDim: 10, intermediateSize: 72 } };

function model(config = MICRO, dtype: 'float32' | 'float64' | 'bfloat16' = 'float32'): Bagel {
  torch.manualSeed(11);
  const m = new Bagel(config, { visualUnd: false, visualGen: false }).eval();
  if (dtype !== 'float32') m.toDtype(dtype);
  return m;
}

/** Prompts of different lengths (ids within MICRO's vocabulary, away from the special tokens). */
const PROMPTS = [[5, 9, 13], [21, 8, 30, 44, 7, 19, 50, 61, 12, 33, 40, 27, 18, 6, 9, 55, 70, 3, 23], [14], [60, 61, 62, 63, 64, 65, 66]];

function prompted(m: Bagel, ids: number[]): KVCache {
  const ctx = newContext(m);
  prefillText(m, ctx, ids);
  return ctx;
}

/** Each step's logits [V] of one sequence decoded alone (greedy), through the batch-1 path. */
function alone(m: Bagel, ctx: KVCache, steps: number): { ids: number[]; logits: Float64Array[] } {
  const seq = new DecodeSequence(m, ctx, { maxTokens: steps });
  const logits: Float64Array[] = [];
  const head = m.logits.bind(m);
  m.logits = (h) => {
    const l = head(h);
    logits.push(Float64Array.from(l.to('float64').dataSync() as Float64Array));
    return l;
  };
  try {
    while (!seq.done) if (decodeBatchStep(m, [seq])[0] === null) break;
    return { ids: [...seq.generated], logits };
  } finally {
    m.logits = head;
    seq.dispose();
  }
}

function close(got: Float64Array, want: Float64Array, tol: number, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= tol * (1 + Math.abs(want[i]!)), `${what}, index ${i}: got ${got[i]}, want ${want[i]}`);
}

for (const [what, config, dtype, tol] of [
  ['float32 (native loops: the same bits)', MICRO, 'float32', 0],
  ['odd sizes (loop remainders: the same bits)', ODD, 'float32', 0],
  ['bfloat16 (native loops on bfloat16 weights and caches: the same bits)', MICRO, 'bfloat16', 0],
  ['float64 (ATen path)', MICRO, 'float64', 1e-12],
] as const) {
  test(`a batched step equals each sequence alone at batch 1, joining and leaving between steps: ${what}`, () => {
    const m = model(config, dtype);
    noGrad(() => torch.scope(() => {
      const ctxs = PROMPTS.map((p) => prompted(m, p));
      const steps = [7, 6, 8, 5]; // sequence i decodes steps[i] tokens (fewer if it ends)
      const joins = [0, 1, 1, 2]; // and joins at this step of the batch
      const want = ctxs.map((c, i) => alone(m, c, steps[i]!));
      const seqs = ctxs.map((c, i) => new DecodeSequence(m, c, { maxTokens: steps[i]! }));
      const got: Float64Array[][] = seqs.map(() => []);
      const head = m.logits.bind(m);
      let rows: DecodeSequence[] = [];
      const batchSizes: number[] = [];
      const batch0 = native.motDecodeBatch;
      let batchedCalls = 0;
      native.motDecodeBatch = (...a: Parameters<typeof batch0>) => {
        batchedCalls++;
        return batch0(...a);
      };
      m.logits = (h) => {
        const l = head(h);
        const all = l.to('float64');
        rows.forEach((q, b) => got[seqs.indexOf(q)]!.push(Float64Array.from(all.select(0, b).dataSync() as Float64Array)));
        return l;
      };
      try {
        for (let step = 0; seqs.some((q) => !q.done); step++) {
          rows = seqs.filter((q, i) => joins[i]! <= step && !q.done);
          batchSizes.push(rows.length);
          if (rows.length) decodeBatchStep(m, rows);
        }
      } finally {
        m.logits = head;
        native.motDecodeBatch = batch0;
      }
      assert.ok(batchSizes[0] === 1 && Math.max(...batchSizes) >= 3 && new Set(batchSizes).size >= 3, `batches of several sizes ran: ${batchSizes.join(' ')}`);
      if (dtype !== 'float64') assert.ok(batchedCalls > 0, 'the batched native step ran');
      seqs.forEach((q, i) => {
        assert.deepEqual(q.generated, want[i]!.ids, `sequence ${i}: the same greedy tokens`);
        assert.equal(got[i]!.length, want[i]!.logits.length);
        got[i]!.forEach((l, k) => close(l, want[i]!.logits[k]!, tol, `sequence ${i}, step ${k}`));
        // the sequence's own cache grew by its tokens only; the prompt's context is unchanged
        assert.equal(q.work.length, PROMPTS[i]!.length + 2 + want[i]!.logits.length);
        assert.equal(ctxs[i]!.length, PROMPTS[i]!.length + 2);
        q.dispose();
      });
      for (const c of ctxs) c.dispose();
    }));
    m.dispose();
  });
}

test('a sampled sequence with its own random source draws the same tokens alone or beside others', () => {
  const m = model();
  noGrad(() => torch.scope(() => {
    const ctx = prompted(m, PROMPTS[0]!);
    const others = PROMPTS.slice(1).map((p) => prompted(m, p));
    const sampling = { maxTokens: 10, temperature: 1.3, topK: 20 };
    const solo = [...decodeSteps(m, ctx, { ...sampling, random: seededRandom(42) })];
    // beside three others (their own seeds), the global generator disturbed in between
    const mine = new DecodeSequence(m, ctx, { ...sampling, random: seededRandom(42) });
    const rest = others.map((c, i) => new DecodeSequence(m, c, { ...sampling, random: seededRandom(100 + i) }));
    while (!mine.done) {
      torch.randn([7]);
      decodeBatchStep(m, [rest[1]!, mine, ...[rest[0]!, rest[2]!]].filter((q) => !q.done));
    }
    assert.deepEqual(mine.generated, solo);
    const other = [...decodeSteps(m, ctx, { ...sampling, random: seededRandom(43) })];
    assert.notDeepEqual(other, solo, 'another seed draws other tokens');
    for (const q of [mine, ...rest]) q.dispose();
    for (const c of [ctx, ...others]) c.dispose();
  }));
  m.dispose();
});

test('seededRandom: uniform on [0, 1), reproducible, seeds apart', () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const xs = Array.from({ length: 2000 }, () => a());
  assert.deepEqual(Array.from({ length: 2000 }, () => b()), xs);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`); // sd of the mean 0.0065
  assert.notEqual(seededRandom(8)(), seededRandom(7)());
});

test('decodeBatch names what is wrong with its inputs', () => {
  const m = model();
  noGrad(() => torch.scope(() => {
    const c = prompted(m, [5]);
    const x = m.language_model.embed(tensor([5, 6], { dtype: 'int64' }));
    assert.throws(() => m.language_model.model.decodeBatch(x, [{ cache: c, position: 3 }]), /decodeBatch: inputs must be \[1, D\]/);
    assert.throws(() => m.language_model.model.decodeBatch(x, [{ cache: c, position: 3 }, { cache: c, position: 3 }]), /each row needs its own cache/);
    c.dispose();
  }));
  m.dispose();
});
