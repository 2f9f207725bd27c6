import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { Conv2d } from '../../src/nn/index.js';
import { assertClose, flat, seq } from './helpers.js';

/** Direct 2-D convolution (cross-correlation, as PyTorch) in plain loops over NCHW arrays. */
function conv2dRef(
  x: number[], [N, C, H, W]: number[], w: number[], [O, Cg, KH, KW]: number[], b: number[] | null,
  [sh, sw]: number[], [ph, pw]: number[], [dh, dw]: number[], groups: number,
): { y: number[]; shape: number[] } {
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const y: number[] = [];
  const opg = O / groups;
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    const g = Math.floor(o / opg);
    let s = b ? b[o]! : 0;
    for (let c = 0; c < Cg; c++) for (let ki = 0; ki < KH; ki++) for (let kj = 0; kj < KW; kj++) {
      const yy = i * sh - ph + ki * dh;
      const xx = j * sw - pw + kj * dw;
      if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
      const ci = g * Cg + c;
      s += x[((n * C + ci) * H + yy) * W + xx]! * w[((o * Cg + c) * KH + ki) * KW + kj]!;
    }
    y.push(s);
  }
  void C;
  return { y, shape: [N, O, OH, OW] };
}

const cases = [
  { name: '3x3, stride 1, pad 1', C: 2, O: 3, k: 3, stride: 1, padding: 1, dilation: 1, groups: 1, H: 5, W: 4 },
  { name: '3x3, stride 2, no pad', C: 3, O: 2, k: 3, stride: 2, padding: 0, dilation: 1, groups: 1, H: 7, W: 6 },
  { name: '2x2 grouped, dilation 2', C: 4, O: 6, k: 2, stride: 1, padding: 1, dilation: 2, groups: 2, H: 5, W: 5 },
  { name: '1x1', C: 3, O: 5, k: 1, stride: 1, padding: 0, dilation: 1, groups: 1, H: 3, W: 3 },
];

for (const c of cases) {
  test(`Conv2d ${c.name} matches direct convolution`, () => {
    const conv = new Conv2d(c.C, c.O, c.k, { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups });
    assert.deepEqual(conv.weight.shape, [c.O, c.C / c.groups, c.k, c.k]);
    torch.scope(() => {
      const xs = seq(2 * c.C * c.H * c.W, c.C + c.O);
      const y = conv.forward(torch.tensor(xs, { shape: [2, c.C, c.H, c.W] }));
      const ref = conv2dRef(xs, [2, c.C, c.H, c.W], flat(conv.weight), conv.weight.shape, flat(conv.bias!),
        [c.stride, c.stride], [c.padding, c.padding], [c.dilation, c.dilation], c.groups);
      assert.deepEqual(y.shape, ref.shape);
      assertClose(flat(y), ref.y, 1e-5, 1e-6, c.name);
    });
    conv.dispose();
  });
}

test("Conv2d 'same' padding keeps the size; init bound is 1/sqrt(fan_in)", () => {
  const conv = new Conv2d(4, 8, [3, 5], { padding: 'same', bias: false });
  assert.equal(conv.bias, null);
  torch.scope(() => assert.deepEqual(conv.forward(torch.zeros([1, 4, 6, 7])).shape, [1, 8, 6, 7]));
  const bound = 1 / Math.sqrt(4 * 3 * 5);
  assert.ok(flat(conv.weight).every((v) => Math.abs(v) <= bound));
  conv.dispose();
});
