// LPIPS-alex: distances against plain-torch reference math, zero for an image with itself,
// symmetric; loading from the backbone and the heads in separate files or under lpips' own names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { scope, tensor, type Tensor } from '../../src/torch/index.js';
import { DiversityScorer, LpipsDistance, loadLpipsModel } from '../../src/reward/index.js';
import { assertClose, fixture, formulaImages, tempDir, writeModelFolder, type ParamSpec } from './helpers.js';

const fx = fixture.lpips;
const spec = fx.params as ParamSpec[];

test('LPIPS: pair distances match the reference math; self-distance 0; symmetric', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeModelFolder(dir, spec, null, { file: 'lpips_alex.safetensors' });
    const lp = LpipsDistance.load(join(dir, 'lpips_alex.safetensors'));
    assert.equal(lp.id, 'lpips-alex-v0.1');
    scope(() => {
      const images = formulaImages(fx.image_shape, fx.image_seed);
      const pick = (idx: number[]): Tensor => images.index_select(0, tensor(idx));
      const a = fx.pairs.map((p: number[]) => p[0]);
      const b = fx.pairs.map((p: number[]) => p[1]);
      const d = lp.distance(pick(a), pick(b));
      assertClose(d, fx.distances, 1e-4, 'LPIPS');
      assertClose(lp.distance(pick(b), pick(a)), d, 1e-6, 'symmetry');
      for (const s of lp.distance(images, images)) assert.ok(Math.abs(s) < 1e-7, `self distance ${s}`);
      // diversity = mean pairwise LPIPS over the whole group
      const div = new DiversityScorer(lp).score(images, ['p', 'p', 'p', 'p']);
      assertClose(div, [fx.mean_pairwise, fx.mean_pairwise, fx.mean_pairwise, fx.mean_pairwise], 1e-4, 'diversity');
    });
    lp.dispose();
  } finally {
    cleanup();
  }
});

test('LPIPS loader: backbone and heads in two files, lpips.LPIPS names, strict on missing keys', () => {
  const { dir, cleanup } = tempDir();
  try {
    const backbone = spec.filter(([n]) => n.startsWith('features.'));
    const heads = spec.filter(([n]) => n.startsWith('lin'));
    // Each file is the full spec with the other part dropped, so every key keeps its closed-form values.
    writeModelFolder(dir, spec, null, { file: 'all.safetensors' });
    writeModelFolder(dir, spec, null, { file: 'alexnet.safetensors', drop: heads.map(([n]) => n) });
    writeModelFolder(dir, spec, null, { file: 'alex_heads.safetensors', drop: backbone.map(([n]) => n) });
    const one = new LpipsDistance(loadLpipsModel(join(dir, 'all.safetensors')));
    const two = new LpipsDistance(loadLpipsModel([join(dir, 'alexnet.safetensors'), join(dir, 'alex_heads.safetensors')]));
    scope(() => {
      const images = formulaImages(fx.image_shape, fx.image_seed);
      const a = images.narrow(0, 0, 2);
      const b = images.narrow(0, 2, 2);
      assertClose(two.distance(a, b), one.distance(a, b), 1e-7, 'two files');
    });
    // lpips.LPIPS state-dict names: net.slice{k}.{j}.* and scaling_layer.*
    const renamed = new Map<string, string>([['features.0', 'net.slice1.0'], ['features.3', 'net.slice2.3'], ['features.6', 'net.slice3.6'], ['features.8', 'net.slice4.8'], ['features.10', 'net.slice5.10']]);
    const lpipsSpec = spec.map(([n, s, o, c]) => {
      const [base, leaf] = [n.slice(0, n.lastIndexOf('.')), n.slice(n.lastIndexOf('.') + 1)];
      return [renamed.has(base) ? `${renamed.get(base)}.${leaf}` : n, s, o, c] as ParamSpec;
    });
    writeModelFolder(dir, lpipsSpec, null, { file: 'lpips_module.safetensors', extra: new Map([['scaling_layer.shift', tensor([-0.03, -0.088, -0.188]).reshape([1, 3, 1, 1])]]) });
    const three = new LpipsDistance(loadLpipsModel(join(dir, 'lpips_module.safetensors')));
    scope(() => {
      const images = formulaImages(fx.image_shape, fx.image_seed);
      assertClose(three.distance(images.narrow(0, 0, 2), images.narrow(0, 2, 2)), one.distance(images.narrow(0, 0, 2), images.narrow(0, 2, 2)), 1e-7, 'lpips names');
    });
    writeModelFolder(dir, spec, null, { file: 'broken.safetensors', drop: ['lin3.model.1.weight'] });
    assert.throws(() => loadLpipsModel(join(dir, 'broken.safetensors')), /missing keys \(1\): lin3\.model\.1\.weight/);
    for (const m of [one, two, three]) m.dispose();
  } finally {
    cleanup();
  }
});
