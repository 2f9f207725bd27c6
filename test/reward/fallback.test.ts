// The fallback scorers on the sample character's images: honest ids, identity of two Tessel
// images above Tessel vs noise, the band penalty on the substitute, colour-word alignment and the
// pixel diversity distance behaving as their real counterparts would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChwImage } from '../../src/data/image.js';
import {
  ColourEdgeHistogramEmbedder, ColourHeuristicAnswerer, ColourWordsScorer, computeRewards, createRewardScorers,
  DiversityScorer, IdentityScorer, loadImages, PixelRmsDistance,
} from '../../src/reward/index.js';

const SAMPLES = fileURLToPath(new URL('../../../samples/train/UniCharacter-Tessel/', import.meta.url));

function noise(size: number, seed: number): ChwImage {
  let s = seed >>> 0;
  const data = new Float32Array(3 * size * size);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 2 ** 32) * 2 - 1;
  }
  return { channels: 3, height: size, width: size, data };
}

/** A solid colour image, rgb in [0, 255]. */
function solid(size: number, rgb: [number, number, number]): ChwImage {
  const plane = size * size;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) data.fill((rgb[c]! / 255) * 2 - 1, c * plane, (c + 1) * plane);
  return { channels: 3, height: size, width: size, data };
}

let tessel: ChwImage[] = [];
test('load the sample images', async () => {
  tessel = await loadImages([0, 1, 2, 3].map((i) => join(SAMPLES, `${i}.png`)));
  assert.equal(tessel.length, 4);
});

test('fallback identity: Tessel vs Tessel is more similar than Tessel vs noise; PEN follows the band', () => {
  const emb = new ColourEdgeHistogramEmbedder();
  assert.equal(emb.id, 'fallback:colour-edge-histogram');
  const identity = new IdentityScorer(emb);
  const refs = tessel.slice(1);
  const r = identity.evaluate([tessel[0]!, noise(256, 7)], refs);
  assert.ok(r.similarity[0]! > r.similarity[1]! + 0.2, `tessel ${r.similarity[0]} vs noise ${r.similarity[1]}`);
  // A reference image itself is maximally close: s = 1, PEN = -2 (1 - 0.9) = -0.2
  const same = identity.evaluate([refs[0]!], refs);
  assert.ok(Math.abs(same.similarity[0]! - 1) < 1e-5);
  assert.ok(Math.abs(same.penalty[0]! + 0.2) < 1e-5);
  assert.ok(r.penalty[1]! < 0, 'noise loses identity');
  // no references: every term 0 (the reference's failure value)
  assert.deepEqual(identity.evaluate([tessel[0]!], []).penalty, [0]);
});

test('fallback diversity: 0 for identical images, larger for different ones, symmetric', () => {
  const d = new PixelRmsDistance();
  assert.equal(d.id, 'fallback:pixel-rms-32');
  const [self] = d.distance([tessel[0]!], [tessel[0]!]);
  assert.equal(self, 0);
  const ab = d.distance([tessel[0]!], [tessel[1]!])[0]!;
  assert.ok(Math.abs(ab - d.distance([tessel[1]!], [tessel[0]!])[0]!) < 1e-12);
  const div = new DiversityScorer(d);
  const copies = div.score([tessel[0]!, tessel[0]!, tessel[0]!], ['p', 'p', 'p']);
  const varied = div.score([tessel[0]!, tessel[1]!, tessel[2]!], ['p', 'p', 'p']);
  assert.deepEqual(copies, [0, 0, 0]);
  assert.ok(varied[0]! > 0.02, `varied ${varied[0]}`);
});

test('fallback alignment: colour words of the prompt against the image colours, scaled 100/30', () => {
  const s = new ColourWordsScorer();
  assert.equal(s.id, 'fallback:colour-words');
  const red = solid(32, [210, 40, 40]);
  const blue = solid(32, [60, 110, 220]);
  const [rr, rb] = s.score([red, blue], ['a red umbrella', 'a red umbrella']);
  assert.ok(Math.abs(rr! - 100 / 30) < 1e-9, `pure match scores (100/30)·1, got ${rr}`);
  assert.equal(rb, 0);
  assert.deepEqual(s.score([red], ['a fox reading']), [0], 'no colour cue: 0');
  // Tessel under a sky on grass: "sky" and "grass" cues beat "snow at night"
  const [grass, snow] = s.score([tessel[0]!, tessel[0]!], ['Tessel on the grass under a sunny sky', 'Tessel in the snow at night']);
  assert.ok(grass! > snow!, `${grass} vs ${snow}`);
});

test('fallback VQA answers colour questions only', () => {
  const a = new ColourHeuristicAnswerer();
  const red = solid(16, [210, 40, 40]);
  assert.equal(a.answer(red, 'What colour is the umbrella?', ['yellow', 'red', 'blue']), 'red');
  assert.equal(a.answer(red, 'Is the umbrella red?'), 'yes');
  assert.equal(a.answer(red, 'Is the fox teal?'), 'no');
  assert.equal(a.answer(red, 'Is there a lighthouse?'), 'unknown');
});

test('createRewardScorers without weights: every component a named fallback; computeRewards combines them', async () => {
  const set = createRewardScorers();
  assert.equal(set.usesFallback, true);
  assert.deepEqual(set.ids, {
    vqa: 'fallback:colour-heuristic-vqa', clip: 'fallback:colour-words', div: 'fallback:pixel-rms-32', dino: 'fallback:colour-edge-histogram',
  });
  const prompts = ['Tessel with a yellow scarf', 'Tessel with a yellow scarf'];
  const r = await computeRewards(set, {
    images: [tessel[0]!, tessel[1]!],
    prompts,
    checklists: [[{ question: 'What colour is the scarf?', answer: 'yellow', choices: ['yellow', 'red'], weight: 1 }], []],
    references: tessel.slice(2),
  });
  assert.equal(r.total.length, 2);
  assert.equal(r.components.div![0], r.components.div![1], 'one group, one value');
  for (let i = 0; i < 2; i++) {
    const want = 0.3 * r.components.vqa![i]! + 0.45 * r.components.clip![i]! + 0.1 * r.components.div![i]! + 0.15 * r.components.dino![i]!;
    assert.ok(Math.abs(r.total[i]! - want) < 1e-12);
  }
  assert.equal(r.components.vqa![0], 1, 'the scarf is yellow');
  set.dispose();
});
