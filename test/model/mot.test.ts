// The MoT decoder (docs/method.md 1.2): RoPE, GQA attention with an additive mask and QK-norm checked
// against plain-JS loops; hard routing checked by perturbing one expert's weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { noGrad, ops, tensor } from '../../src/torch/index.js';
import { native } from '../../src/torch/native.js';
import {
  applyRope, attention, additiveMask, ropeTables, routingFromFlags, Qwen2MoTForCausalLM, KVCache,
} from '../../src/model/index.js';
import { MICRO } from '../../src/model/config.js';

function rand(shape: number[], seed: number): { t: torch.Tensor; a: Float32Array } {
  let s = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    a[i] = (s / 2147483648) * 2 - 1;
  }
  return { t: tensor(a, { shape }), a };
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    assert.ok(d <= tol * (1 + Math.abs(want[i]!)), `index ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

test('RoPE rotates pairs (i, i + d/2) by pos * theta^(-2i/d), as Qwen2 does', () => {
  torch.scope(() => {
    const H = 2, N = 3, d = 8, theta = 100;
    const positions = [0, 5, 2];
    const { t: x, a } = rand([H, N, d], 7);
    const { cos, sin } = ropeTables(tensor(positions), d, theta);
    const got = applyRope(x, cos, sin).dataSync() as Float32Array;
    const want = new Float32Array(H * N * d);
    for (let h = 0; h < H; h++) for (let n = 0; n < N; n++) {
      for (let i = 0; i < d / 2; i++) {
        const ang = positions[n]! * theta ** (-(2 * i) / d);
        const base = (h * N + n) * d;
        const x1 = a[base + i]!, x2 = a[base + i + d / 2]!;
        want[base + i] = x1 * Math.cos(ang) - x2 * Math.sin(ang);
        want[base + i + d / 2] = x2 * Math.cos(ang) + x1 * Math.sin(ang);
      }
    }
    close(got, want);
  });
});

for (const masked of [true, false]) {
  test(`GQA attention ${masked ? 'with an additive mask' : 'without a mask (grouped queries, no K/V copies)'} equals a plain softmax loop`, () => {
    torch.scope(() => {
      const H = 4, Hkv = 2, Nq = 3, Nk = 5, d = 4;
      const { t: q, a: qa } = rand([H, Nq, d], 1);
      const { t: k, a: ka } = rand([Hkv, Nk, d], 2);
      const { t: v, a: va } = rand([Hkv, Nk, d], 3);
      const allowed = masked ? [[1, 1, 0, 1, 0], [1, 0, 1, 1, 1], [0, 0, 0, 0, 1]] : [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]];
      const mask = masked ? additiveMask(tensor(allowed.map((r) => r.map((x) => x === 1)))) : null;
      const got = attention(q, k, v, mask).dataSync() as Float32Array; // [Nq, H*d]
      const want = new Float32Array(Nq * H * d);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / Hkv)); // kv head serving query head h
        for (let i = 0; i < Nq; i++) {
          const s: number[] = [];
          for (let j = 0; j < Nk; j++) {
            let dot = 0;
            for (let c = 0; c < d; c++) dot += qa[(h * Nq + i) * d + c]! * ka[(g * Nk + j) * d + c]!;
            s.push(allowed[i]![j] ? dot / Math.sqrt(d) : -Infinity);
          }
          const m = Math.max(...s);
          const e = s.map((x) => Math.exp(x - m));
          const z = e.reduce((p, c) => p + c, 0);
          for (let c = 0; c < d; c++) {
            let acc = 0;
            for (let j = 0; j < Nk; j++) acc += (e[j]! / z) * va[(g * Nk + j) * d + c]!;
            want[i * H * d + h * d + c] = acc;
          }
        }
      }
      close(got, want);
    });
  });
}

test('parameter names follow the published BAGEL checkpoint', () => {
  torch.scope(() => {
    const lm = new Qwen2MoTForCausalLM(MICRO.llm);
    const keys = new Set(lm.stateDictInfo().keys());
    for (const k of [
      'model.embed_tokens.weight', 'lm_head.weight', 'model.norm.weight', 'model.norm_moe_gen.weight',
      'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.q_proj.bias',
      'model.layers.1.self_attn.k_proj_moe_gen.bias', 'model.layers.1.self_attn.o_proj_moe_gen.weight',
      'model.layers.0.self_attn.q_norm.weight', 'model.layers.0.self_attn.k_norm_moe_gen.weight',
      'model.layers.0.mlp.gate_proj.weight', 'model.layers.0.mlp_moe_gen.down_proj.weight',
      'model.layers.0.input_layernorm_moe_gen.weight', 'model.layers.0.post_attention_layernorm.weight',
    ]) assert.ok(keys.has(k), k);
    assert.ok(!keys.has('model.layers.0.self_attn.o_proj.bias'));
    // 2 layers x (2 experts x (q,k,v: w+b = 6, o: 1, q/k norm: 2, 3 mlp, 2 norms) = 28) + embed + head + 2 norms
    assert.equal(keys.size, 2 * 28 + 4);
    lm.dispose();
  });
});

test('hard routing: perturbing gen weights moves only gen tokens and what attends to them', () => {
  torch.manualSeed(0);
  const lm = new Qwen2MoTForCausalLM(MICRO.llm);
  torch.scope(() => noGrad(() => {
    // tokens 0-2 und (text), 3-4 gen (latents), 5 und; causal mask where token 5 cannot see 3-4
    const isGen = [false, false, false, true, true, false];
    const routing = routingFromFlags(isGen);
    const allowed = isGen.map((_, i) => isGen.map((__, j) => j <= i && !(i === 5 && (j === 3 || j === 4))));
    const mask = additiveMask(tensor(allowed));
    const ids = tensor([1, 2, 3, 4, 5, 6]);
    const run = (): number[][] => lm.model.forward(lm.embed(ids), tensor([0, 1, 2, 3, 3, 4]), routing,
      { kind: 'packed', sampleLens: [6], masks: [mask] }).toArray() as number[][];
    const before = run();
    for (const [name, p] of lm.namedParameters()) if (name.includes('_moe_gen')) p.add_(0.1);
    const after = run();
    for (const i of [0, 1, 2, 5]) assert.deepEqual(after[i], before[i], `und token ${i} moved`);
    for (const i of [3, 4]) assert.notDeepEqual(after[i], before[i]);
    // the und weights change the und tokens
    lm.model.norm.weight.mul_(2);
    assert.notDeepEqual((run())[0], before[0]);
  }));
  lm.dispose();
});

test('initMoeFromUnd makes both experts compute the same function', () => {
  torch.manualSeed(1);
  const lm = new Qwen2MoTForCausalLM(MICRO.llm);
  lm.initMoeFromUnd();
  torch.scope(() => noGrad(() => {
    const ids = tensor([5, 6, 7, 8]);
    const pos = tensor([0, 1, 2, 3]);
    const layout = { kind: 'cached', causal: true } as const;
    const und = lm.model.forward(lm.embed(ids), pos, routingFromFlags([false, false, false, false]), layout);
    const mix = lm.model.forward(lm.embed(ids), pos, routingFromFlags([false, true, false, true]), layout);
    close(mix.dataSync() as Float32Array, und.dataSync() as Float32Array, 1e-6);
  }));
  lm.dispose();
});

test('KV-cache decoding equals full recomputation', () => {
  torch.manualSeed(2);
  const lm = new Qwen2MoTForCausalLM(MICRO.llm);
  torch.scope(() => noGrad(() => {
    const ids = [3, 14, 15, 92, 65, 35];
    const full = lm.model.forward(lm.embed(tensor(ids)), ops.arange(0, 6, 1, 'int64'), routingFromFlags(ids.map(() => false)),
      { kind: 'cached', causal: true });
    const cache = new KVCache(MICRO.llm.numLayers);
    const outs: torch.Tensor[] = [];
    // prefill 3 tokens, then one at a time
    outs.push(lm.model.forward(lm.embed(tensor(ids.slice(0, 3))), tensor([0, 1, 2]), routingFromFlags([false, false, false]),
      { kind: 'cached', causal: true }, { cache, update: true }));
    for (let i = 3; i < 6; i++) {
      outs.push(lm.model.forward(lm.embed(tensor([ids[i]!])), tensor([i]), routingFromFlags([false]),
        { kind: 'cached', causal: true }, { cache, update: true }));
    }
    assert.equal(cache.length, 6);
    close(ops.cat(outs, 0).dataSync() as Float32Array, full.dataSync() as Float32Array, 1e-5);
    cache.dispose();
  }));
  lm.dispose();
});

test('KV cache: forks are independent, and the cache grows past its first buffer', () => {
  torch.manualSeed(3);
  const lm = new Qwen2MoTForCausalLM(MICRO.llm);
  torch.scope(() => noGrad(() => {
    const prefix = Array.from({ length: 70 }, (_, i) => (i * 7 + 3) % 500); // more than the 64 rows of a first buffer
    const und = (n: number) => routingFromFlags(new Array(n).fill(false));
    const fullLast = (ids: number[]): Float32Array => {
      const h = lm.model.forward(lm.embed(tensor(ids)), ops.arange(0, ids.length, 1, 'int64'), und(ids.length), { kind: 'cached', causal: true });
      return h.narrow(0, ids.length - 1, 1).dataSync() as Float32Array;
    };
    const step = (cache: KVCache, id: number, pos: number): Float32Array =>
      lm.model.forward(lm.embed(tensor([id])), tensor([pos]), und(1), { kind: 'cached', causal: true }, { cache, update: true }).dataSync() as Float32Array;
    const cache = new KVCache(MICRO.llm.numLayers);
    // prefill in two parts so the second part appends to a live buffer
    lm.model.forward(lm.embed(tensor(prefix.slice(0, 40))), ops.arange(0, 40, 1, 'int64'), und(40), { kind: 'cached', causal: true }, { cache, update: true });
    lm.model.forward(lm.embed(tensor(prefix.slice(40))), ops.arange(40, 70, 1, 'int64'), und(30), { kind: 'cached', causal: true }, { cache, update: true });
    const fork = cache.fork();
    const a = step(fork, 11, 70);
    const b = step(cache, 22, 70);
    const a2 = step(fork, 33, 71);
    const b2 = step(cache, 44, 71);
    close(a, fullLast([...prefix, 11]));
    close(b, fullLast([...prefix, 22]));
    close(a2, fullLast([...prefix, 11, 33]));
    close(b2, fullLast([...prefix, 22, 44]));
    assert.equal(fork.length, 72);
    assert.equal(cache.length, 72);
    fork.dispose();
    cache.dispose();
  }));
  lm.dispose();
});

// Odd sizes (hidden 40, head 10, MLP 72) leave remainders in every 16-lane loop of the kernels;
// float64 takes the native step's ATen path instead of its float32 loops.
const ODD_LLM = { ...MICRO.llm, hiddenSize: 40, numHeads: 4, numKvHeads: 2, headDim: 10, intermediateSize: 72 };
const decodeCases = [
  ['GQA (4 query / 2 KV heads)', MICRO.llm, 'float32'],
  ['4 query / 4 KV heads', { ...MICRO.llm, numKvHeads: 4 }, 'float32'],
  ['odd sizes', ODD_LLM, 'float32'],
  ['float64 (ATen path)', MICRO.llm, 'float64'],
] as const;
for (const [what, llm, dtype] of decodeCases) {
  test(`the native one-token decode step and LM head equal the layer-by-layer path, ${what}`, () => {
    // the same weights twice (same seed): with the decode kernels (the default) and without
    const build = (decodeKernels: boolean) => {
      torch.manualSeed(4);
      const m = new Qwen2MoTForCausalLM(llm, { decodeKernels });
      if (dtype !== 'float32') m.toDtype(dtype);
      return m;
    };
    const lm = build(true);
    const opByOp = build(false);
    torch.scope(() => noGrad(() => {
      const und = (n: number) => routingFromFlags(new Array(n).fill(false));
      // 20 cached tokens: the attention runs over more keys than one 16-lane block
      const prompt = [3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50, 28, 84, 19];
      const base = new KVCache(llm.numLayers);
      lm.model.forward(lm.embed(tensor(prompt)), ops.arange(0, prompt.length, 1, 'int64'), und(prompt.length), { kind: 'cached', causal: true }, { cache: base, update: true });
      const run = (native: boolean): Float64Array[] => {
        const m = native ? lm : opByOp;
        const c = base.fork();
        const outs: Float64Array[] = [];
        for (const [k, id] of [7, 300, 42, 11].entries()) {
          const h = m.model.forward(m.embed(tensor([id])), tensor([prompt.length + k]), und(1), { kind: 'cached', causal: true }, { cache: c, update: true });
          outs.push(Float64Array.from(h.to('float64').dataSync() as Float64Array));
          outs.push(Float64Array.from(m.logits(h).to('float64').dataSync() as Float64Array));
        }
        assert.equal(c.length, prompt.length + 4);
        c.dispose();
        return outs;
      };
      const step0 = native.motDecodeStep;
      const head0 = native.linearVector;
      let nativeSteps = 0;
      let nativeHeads = 0;
      native.motDecodeStep = (...a: Parameters<typeof step0>) => {
        nativeSteps++;
        return step0(...a);
      };
      native.linearVector = (...a: Parameters<typeof head0>) => {
        nativeHeads++;
        return head0(...a);
      };
      try {
        const fast = run(true);
        assert.equal(nativeSteps, 4, 'the fast path ran natively');
        assert.equal(nativeHeads, dtype === 'float32' ? 4 : 0, 'the batch-1 LM head runs for float32 only');
        const slow = run(false);
        assert.equal(nativeSteps, 4, 'the slow path did not');
        for (let i = 0; i < fast.length; i++) close(fast[i]!, slow[i]!, dtype === 'float64' ? 1e-12 : 1e-5);
      } finally {
        native.motDecodeStep = step0;
        native.linearVector = head0;
      }
      base.dispose();
    }));
    lm.dispose();
    opByOp.dispose();
  });
}

test('linearVector equals x W^T + b, on one thread and split across threads', () => {
  torch.scope(() => {
    // 37 columns: two 16-lane blocks and a remainder; 8000 x 37 floats is over the 1 MiB chunk
    // the kernel hands to each thread, so with 2 threads it really splits the rows
    for (const [rows, cols] of [[5, 37], [8000, 37], [3, 8]] as const) {
      const { t: x, a: xa } = rand([1, cols], 11);
      const { t: w, a: wa } = rand([rows, cols], 12);
      const { t: b, a: ba } = rand([rows], 13);
      const threads = torch.getNumThreads();
      try {
        for (const n of [1, 2]) {
          torch.setNumThreads(n);
          for (const bias of [null, b]) {
            const got = new torch.Tensor(native.linearVector(x.id, w.id, bias?.id ?? null)).dataSync() as Float32Array;
            const want = new Float64Array(rows);
            for (let r = 0; r < rows; r++) {
              let sum = bias ? ba[r]! : 0;
              for (let i = 0; i < cols; i++) sum += wa[r * cols + i]! * xa[i]!;
              want[r] = sum;
            }
            close(got, want, 1e-5);
          }
        }
      } finally {
        torch.setNumThreads(threads);
      }
    }
  });
});

test('linearVector of N rows equals each row alone bit for bit, and x W^T + b (the batched LM head and gemm)', () => {
  torch.scope(() => {
    // N = 1..9 covers whole tiles of 4 rows and every remainder; 7 weight rows an odd pair;
    // 8000 x 37 is split across threads when there are two
    for (const [rows, cols] of [[7, 37], [8000, 37], [6, 40]] as const) {
      const { t: w, a: wa } = rand([rows, cols], 31);
      const { t: b, a: ba } = rand([rows], 32);
      const threads = torch.getNumThreads();
      try {
        for (const n of [1, 2]) {
          torch.setNumThreads(n);
          for (const N of [1, 2, 3, 4, 5, 8, 9]) {
            const { t: x, a: xa } = rand([N, cols], 33 + N);
            const got = new torch.Tensor(native.linearVector(x.id, w.id, b.id)).dataSync() as Float32Array;
            assert.equal(got.length, N * rows);
            for (let k = 0; k < N; k++) {
              const alone = new torch.Tensor(native.linearVector(x.narrow(0, k, 1).contiguous().id, w.id, b.id)).dataSync() as Float32Array;
              assert.deepEqual(Array.from(got.subarray(k * rows, (k + 1) * rows)), Array.from(alone), `N ${N}, row ${k}: the same bits as alone`);
              const want = new Float64Array(rows);
              for (let r = 0; r < rows; r++) {
                let sum = ba[r]!;
                for (let i = 0; i < cols; i++) sum += wa[r * cols + i]! * xa[k * cols + i]!;
                want[r] = sum;
              }
              close(got.subarray(k * rows, (k + 1) * rows), want, 1e-5);
            }
          }
        }
      } finally {
        torch.setNumThreads(threads);
      }
    }
  });
});

test('linearVector and motDecodeStep name what is wrong with their inputs', () => {
  torch.scope(() => {
    const x = ops.zeros([1, 8]);
    assert.throws(() => native.linearVector(x.id, ops.zeros([4, 9]).id, null), /linearVector: x must be \[N, 9\] with N >= 1/);
    assert.throws(() => native.linearVector(x.id, ops.zeros([4, 8]).id, ops.zeros([5]).id), /linearVector: bias must be \[4\]/);
    assert.throws(() => native.linearVector(x.to('float64').id, ops.zeros([4, 8], 'float64').id, null), /CPU tensors of one dtype, float32 or bfloat16/);
    // one layer of D 8, 2 heads of 4 (1 KV head), MLP 6, with one weight of the wrong shape
    const id = (shape: number[]) => ops.zeros(shape).id;
    const layer = (q: number[]) => [id([8]), id(q), null, id([4, 8]), null, id([4, 8]), null, id([8, 8]), id([4]), id([4]), id([8]), id([6, 8]), id([6, 8]), id([8, 6])];
    const cache = (): [number[], number[]] => [[id([1, 16, 4])], [id([1, 16, 4])]];
    const step = (q: number[], length = 0, norm: number[] | null = null) =>
      native.motDecodeStep(x.id, [layer(q)], cache()[0], cache()[1], length, 0, 1e4, 2, 1, 4, 1e-6, norm ? id(norm) : null);
    assert.doesNotThrow(() => step([8, 8]));
    assert.doesNotThrow(() => step([8, 8], 0, [8]));
    assert.throws(() => step([8, 8], 0, [7]), /motDecodeStep: final norm weight must be \[8\], got \[7\]/);
    assert.throws(() => step([8, 7]), /motDecodeStep: q_proj weight must be \[8, 8\], got \[8, 7\]/);
    assert.throws(() => step([8, 8], 16), /motDecodeStep: cache buffers must be \[1, capacity > 16, 4\]/);
  });
});

test('linearVector on bfloat16 weights sums in float32 over the exact bfloat16 values', () => {
  torch.scope(() => {
    const rows = 9, cols = 37;
    const x = rand([1, cols], 21).t.to('bfloat16');
    const w = rand([rows, cols], 22).t.to('bfloat16');
    const b = rand([rows], 23).t.to('bfloat16');
    // the bfloat16 values widened to float32 are exact: the expectation uses them in float64
    const xa = x.to('float32').dataSync() as Float32Array;
    const wa = w.to('float32').dataSync() as Float32Array;
    const ba = b.to('float32').dataSync() as Float32Array;
    const y = new torch.Tensor(native.linearVector(x.id, w.id, b.id));
    assert.equal(y.dtype, 'bfloat16');
    const got = y.to('float32').dataSync() as Float32Array;
    for (let r = 0; r < rows; r++) {
      let sum = ba[r]!;
      for (let i = 0; i < cols; i++) sum += wa[r * cols + i]! * xa[i]!;
      // one rounding to bfloat16 at the end: within half a bfloat16 ulp (2^-8 relative)
      assert.ok(Math.abs(got[r]! - sum) <= Math.abs(sum) * 2 ** -8 + 1e-6, `row ${r}: got ${got[r]}, want ${sum}`);
    }
  });
});

test('bfloat16 models decode natively in float32 on the bfloat16 weights, closer to float32 than op by op', () => {
  // ref: the same weights rounded to bfloat16, held as float32 (exact), decoded in float32
  torch.manualSeed(5);
  const bf = new Qwen2MoTForCausalLM(MICRO.llm).toDtype('bfloat16');
  torch.manualSeed(5);
  const bfOpByOp = new Qwen2MoTForCausalLM(MICRO.llm, { decodeKernels: false }).toDtype('bfloat16');
  torch.manualSeed(5);
  const ref = new Qwen2MoTForCausalLM(MICRO.llm).toDtype('bfloat16').toDtype('float32');
  torch.scope(() => noGrad(() => {
    const tokens = [3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50, 28];
    const decode = (lm: Qwen2MoTForCausalLM): Float32Array[] => {
      const c = new KVCache(MICRO.llm.numLayers);
      const outs: Float32Array[] = [];
      for (const [k, id] of tokens.entries()) {
        const h = lm.model.forward(lm.embed(tensor([id])), tensor([k]), routingFromFlags([false]), { kind: 'cached', causal: true }, { cache: c, update: true });
        outs.push(lm.logits(h).to('float32').dataSync() as Float32Array);
      }
      c.dispose();
      return outs;
    };
    const relErr = (got: Float32Array[], want: Float32Array[]): number => {
      let num = 0, den = 0;
      for (let t = 0; t < want.length; t++) for (let i = 0; i < want[t]!.length; i++) {
        num += (got[t]![i]! - want[t]![i]!) ** 2;
        den += want[t]![i]! ** 2;
      }
      return Math.sqrt(num / den);
    };
    const want = decode(ref);
    const loops = relErr(decode(bf), want);
    const opByOp = relErr(decode(bfOpByOp), want);
    // the native path rounds only the cache rows and its outputs to bfloat16
    assert.ok(loops < 1e-2, `native bfloat16 decode: relative error ${loops}`);
    assert.ok(loops < opByOp, `native ${loops} vs op by op ${opByOp}`);
  }));
  bf.dispose();
  bfOpByOp.dispose();
  ref.dispose();
});
