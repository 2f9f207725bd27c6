import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, cpSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataStats, dataValidate } from '../../src/data/cli.js';
import { SAMPLE_ROOT, SAMPLE_FOLDER } from '../../src/data/sample-character/paths.js';

const TRAIN = join(process.cwd(), '..', 'shared', 'rolescape20', 'train');

test('validate on the sample root: no errors, exit 0', () => {
  const lines: string[] = [];
  const r = dataValidate(SAMPLE_ROOT, { print: (l) => lines.push(l) });
  assert.equal(r.exitCode, 0);
  assert.equal(r.characters, 1);
  assert.match(lines.at(-1)!, /1 character\(s\), 1 read, .* 0 error\(s\)/);
});

test('validate reports an error per broken character and exits 1', () => {
  const root = mkdtempSync(join(tmpdir(), 'cli-'));
  try {
    cpSync(join(SAMPLE_ROOT, 'train'), join(root, 'train'), { recursive: true });
    writeFileSync(join(root, 'train', SAMPLE_FOLDER, 'annotation.json'), '[');
    const lines: string[] = [];
    const r = dataValidate(join(root, 'train'), { print: (l) => lines.push(l) });
    assert.equal(r.exitCode, 1);
    assert.ok(lines.some((l) => l.startsWith('error: ') && l.includes('annotation.json')));
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('stats prints the per-character table with train and test counts', async () => {
  const lines: string[] = [];
  const rows = await dataStats(SAMPLE_ROOT, { print: (l) => lines.push(l) });
  assert.equal(rows[0]!.testImages, 4);
  assert.deepEqual(rows[0]!.trainSizes, [256, 256]);
  assert.match(lines[0]!, /\| UniCharacter-Tessel \| Tessel \| Tessel \| anime \| 12 \| 4 \| 12 \| 44 \(12 \+ 32\) \|/);
});

test('validate on RoleScape-20 train lists the quirks as warnings and exits 0; stats matches the totals', async (t) => {
  if (!existsSync(TRAIN)) return t.skip('RoleScape-20 train split not present');
  const lines: string[] = [];
  const v = dataValidate(TRAIN, { print: (l) => lines.push(l) });
  assert.equal(v.exitCode, 0);
  assert.ok(lines.some((l) => l.startsWith('warning: [quirk 3]')));
  const out: string[] = [];
  const rows = await dataStats(TRAIN, { print: (l) => out.push(l) });
  assert.equal(rows.length, 20);
  assert.match(out[0]!, /\| \*\*total\*\* \(20\) \| \| \| 9 human \/ 4 animal \/ 7 anime \/ 0 other \| 198 \|/);
  assert.deepEqual(rows.find((r) => r.folder === 'Genshin-Furina')!.trainSizes, [467, 1685]);
  assert.equal(rows.find((r) => r.folder === 'Coco')!.jpegInPng, 3);
});
