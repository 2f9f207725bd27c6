// Shared by the reward tests: the Python fixture (test/reward/fixtures/make_reward_fixture.py),
// its closed-form weights and images, and writing them as layout-exact files in a temp folder.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { safetensors, tensor, type Tensor } from '../../src/torch/index.js';

export type ParamSpec = [name: string, shape: number[], offset: number, scale: number];

export const fixture = JSON.parse(readFileSync(new URL('../../../test/reward/fixtures/reward_fixture.json', import.meta.url), 'utf8'));

/** value_k = offset + scale * sin(0.37 k + 1.3 (i + 1)), float64 then float32 (as the script). */
export function formulaTensor(i: number, shape: number[], offset: number, scale: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let k = 0; k < n; k++) data[k] = offset + scale * Math.sin(0.37 * k + 1.3 * (i + 1));
  return tensor(data, { shape });
}

/** All parameters of a spec list, by name. */
export function formulaState(spec: ParamSpec[]): Map<string, Tensor> {
  return new Map(spec.map(([name, shape, off, sc], i) => [name, formulaTensor(i, shape, off, sc)]));
}

/** 0.5 + 0.45 sin(0.05 k + seed) over the flat index: a [B, 3, H, W] float batch in [0, 1]. */
export function formulaImages(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let k = 0; k < n; k++) data[k] = 0.5 + 0.45 * Math.sin(0.05 * k + seed);
  return tensor(data, { shape });
}

/** A fresh temp folder, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'reward-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes config.json (if given) and model.safetensors of a spec list, optionally without some keys or with extra tensors. */
export function writeModelFolder(dir: string, spec: ParamSpec[], config: unknown | null, options: { drop?: string[]; extra?: Map<string, Tensor>; file?: string } = {}): void {
  if (config !== null) writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const state = formulaState(spec);
  for (const k of options.drop ?? []) state.delete(k);
  for (const [k, v] of options.extra ?? []) state.set(k, v);
  safetensors.save(join(dir, options.file ?? 'model.safetensors'), state);
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, what = ''): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= atol, `${what}: max abs difference ${worst} > ${atol}`);
}
