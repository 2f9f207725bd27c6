// BlazeFace decoding written by this project (src/reward/nets/face-detect.ts), on hand-made numbers:
// anchor layout, box and keypoint decoding, IoU, greedy NMS, the letterbox mapping back to image
// pixels, the crop square, and the output ordering of the graph model (through a fake model).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BLAZEFACE_REGRESSORS, BlazeFaceDetector, blazeFaceAnchors, decodeBlazeFace, iou, letterbox, nonMaxSuppression,
  squareCrop, toImageBox, type FaceBox,
} from '../../src/reward/nets/index.js';
import { loadTf, type GraphModel } from '../../src/reward/nets/index.js';

const box = (x1: number, y1: number, x2: number, y2: number, score: number): FaceBox => ({ x1, y1, x2, y2, score, landmarks: [] });
const near = (a: number, b: number, tol = 1e-5): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('anchors: 16x16 cells x 2 at stride 16, then 8x8 cells x 6 at stride 32, for a 256 input', () => {
  const a = blazeFaceAnchors(256);
  assert.equal(a.length, 2 * 896);
  const at = (i: number): [number, number] => [a[2 * i]!, a[2 * i + 1]!];
  assert.deepEqual(at(0), [8, 8]);
  assert.deepEqual(at(1), [8, 8]); // two anchors per cell on the fine map
  assert.deepEqual(at(2), [24, 8]); // next column
  assert.deepEqual(at(32), [8, 24]); // second row: 16 cells x 2 anchors later
  assert.deepEqual(at(511), [248, 248]);
  for (let k = 0; k < 6; k++) assert.deepEqual(at(512 + k), [16, 16]); // coarse map, 6 per cell
  assert.deepEqual(at(518), [48, 16]);
  assert.deepEqual(at(895), [240, 240]);
  // The 128 px model has the same 896 anchors at half the coordinates.
  const b = blazeFaceAnchors(128);
  assert.equal(b.length, 2 * 896);
  assert.deepEqual([b[2 * 518]!, b[2 * 518 + 1]!], [24, 8]);
});

test('decoding: centre = anchor + offset, size as regressed, keypoints from the anchor, sigmoid score', () => {
  const anchors = Float32Array.from([8, 8, 24, 8, 16, 16]);
  const reg = new Float32Array(3 * BLAZEFACE_REGRESSORS);
  reg.set([1, -2, 10, 20, /* keypoints */ 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, -5, 5], 0);
  reg.set([0, 0, 4, 4], BLAZEFACE_REGRESSORS);
  reg.set([0, 0, 100, 100], 2 * BLAZEFACE_REGRESSORS);
  const all = decodeBlazeFace([0, 2, -3], reg, anchors);
  assert.equal(all.length, 3);
  const [a, b] = all;
  assert.deepEqual([a!.x1, a!.y1, a!.x2, a!.y2], [4, -4, 14, 16]); // centre (9, 6), 10 x 20
  near(a!.score, 0.5);
  assert.deepEqual(a!.landmarks, [[8, 8], [9, 9], [10, 10], [11, 11], [12, 12], [3, 13]]);
  assert.deepEqual([b!.x1, b!.y1, b!.x2, b!.y2], [22, 6, 26, 10]);
  near(b!.score, 1 / (1 + Math.exp(-2)));
  // sigmoid(-3) = 0.047 is dropped by minScore 0.3.
  assert.equal(decodeBlazeFace([0, 2, -3], reg, anchors, 0.3).length, 2);
  assert.throws(() => decodeBlazeFace([0, 1], reg, anchors), /2 logits for 3 anchors/);
});

test('IoU of hand-computed overlaps', () => {
  near(iou(box(0, 0, 10, 10, 1), box(1, 1, 11, 11, 1)), 81 / 119);
  near(iou(box(0, 0, 10, 10, 1), box(0, 0, 10, 5, 1)), 0.5);
  assert.equal(iou(box(0, 0, 10, 10, 1), box(10, 0, 20, 10, 1)), 0); // touching edges
  assert.equal(iou(box(0, 0, 0, 10, 1), box(0, 0, 10, 10, 1)), 0); // no area
});

test('greedy NMS keeps the best box and drops overlaps above the threshold', () => {
  const A = box(0, 0, 10, 10, 0.9);
  const B = box(1, 1, 11, 11, 0.8); // IoU 0.68 with A, 36/114 = 0.316 with D
  const C = box(20, 20, 30, 30, 0.7); // overlaps nothing
  const D = box(0, 0, 10, 5, 0.95); // IoU 0.5 with A
  const all = [A, B, C, D];
  assert.deepEqual(nonMaxSuppression(all, { iouThreshold: 0.3, minScore: 0, maxBoxes: 10 }), [D, C]);
  assert.deepEqual(nonMaxSuppression(all, { iouThreshold: 0.6, minScore: 0, maxBoxes: 10 }), [D, A, C]);
  assert.deepEqual(nonMaxSuppression(all, { iouThreshold: 0.6, minScore: 0, maxBoxes: 2 }), [D, A]);
  assert.deepEqual(nonMaxSuppression(all, { iouThreshold: 0.3, minScore: 0.92, maxBoxes: 10 }), [D]);
  assert.deepEqual(nonMaxSuppression([], { iouThreshold: 0.3, minScore: 0, maxBoxes: 10 }), []);
});

test('letterbox and the way back to image pixels; the enlarged square crop', () => {
  assert.deepEqual(letterbox(300, 200), { side: 300, padX: 0, padY: 50 });
  assert.deepEqual(letterbox(201, 400), { side: 400, padX: 99, padY: 0 });
  const b = toImageBox({ x1: 10, y1: 40, x2: 60, y2: 90, score: 0.7, landmarks: [[25, 50]] }, letterbox(300, 200), 150);
  assert.deepEqual(b, { x1: 20, y1: 30, x2: 120, y2: 130, score: 0.7, landmarks: [[50, 50]] });
  // Centre (20, 40), longer side 40 -> square of side 48.
  const s = squareCrop(box(10, 20, 30, 60, 1), 1.2);
  near(s.x1, -4); near(s.y1, 16); near(s.x2, 44); near(s.y2, 64);
});

test('the detector orders the graph outputs into anchor order and maps the best box to the image', async () => {
  const tf = await loadTf();
  const side = 16;
  // One anchor fires: coarse map (stride 2, 8x8 cells, 6 per cell), cell (1, 1) -> anchor (3, 3).
  const hot = 512 + 6 * (8 + 1);
  const fake = {
    inputs: [{ shape: [1, side, side, 3] }],
    execute: (x: import('@tensorflow/tfjs').Tensor) => {
      assert.deepEqual(x.shape, [1, side, side, 3]);
      const logits = new Float32Array(896).fill(-20);
      logits[hot] = 5;
      const reg = new Float32Array(896 * BLAZEFACE_REGRESSORS);
      reg.set([0, 0, 4, 4], hot * BLAZEFACE_REGRESSORS);
      // Shuffled, as the converted model returns them: [384, 16], [512, 1], [384, 1], [512, 16].
      return [
        tf.tensor3d(reg.slice(512 * BLAZEFACE_REGRESSORS), [1, 384, BLAZEFACE_REGRESSORS]),
        tf.tensor3d(logits.slice(0, 512), [1, 512, 1]),
        tf.tensor3d(logits.slice(512), [1, 384, 1]),
        tf.tensor3d(reg.slice(0, 512 * BLAZEFACE_REGRESSORS), [1, 512, BLAZEFACE_REGRESSORS]),
      ];
    },
    dispose: () => {},
  } as unknown as GraphModel;
  const det = new BlazeFaceDetector(tf, fake);
  assert.equal(det.inputSize, side);
  // A 32 x 16 image: letterboxed into a 32 x 32 square (8 rows of padding on top), scale 2.
  const img = tf.zeros([16, 32, 3]) as import('@tensorflow/tfjs').Tensor3D;
  const faces = await det.detect(img);
  img.dispose();
  assert.equal(faces.length, 1);
  const f = faces[0]!;
  assert.deepEqual([f.x1, f.y1, f.x2, f.y2], [2, -6, 10, 2]);
  near(f.score, 1 / (1 + Math.exp(-5)));
  const raw = await det.raw(tf.zeros([1, side, side, 3]));
  assert.equal(raw.logits[hot], 5);
  assert.equal(raw.logits[0], -20);
  assert.equal(raw.regressors[hot * BLAZEFACE_REGRESSORS + 2], 4);
});
