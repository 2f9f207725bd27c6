// Character-GRPO: advantages and the clipped objective on hand-worked values, rollouts that
// agree with the ODE sampler, stored window steps that re-score to ratio 1, and a short run that
// trains only the generation expert and logs every reward component.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { generateImage, latentDownsample } from '../../src/model/index.js';
import { type ChwImage } from '../../src/data/index.js';
import { VqaScorer, checklistScore, createRewardScorers, computeRewards, REFERENCE_REWARD_WEIGHTS, type Answerer } from '../../src/reward/index.js';
import { SelfVqaAnswerer, SELF_VQA_ID, CHECKLIST_PROBE_ID, normaliseReply } from '../../src/reward/index.js';
import { answerAboutImage } from '../../src/eval/index.js';
import { tinyCharacterModel, writeTinySft, tinyGrpoConfig } from './fixtures/grpo-fixtures.js';
import { CharacterModel } from '../../src/character/index.js';
import { groupAdvantages } from '../../src/train/grpo-advantages.js';
import { clippedPolicyLoss } from '../../src/train/grpo-objective.js';
import { promptContexts, rollout, windowLogProb, drawWindowStart } from '../../src/train/grpo-rollout.js';
import { trainGrpo, DEFAULT_GRPO } from '../../src/train/grpo.js';

test('advantages: per-prompt population std, +1e-4, clipped', () => {
  // Group a: rewards 1, 3 -> mean 2, std 1 -> A = -1/(1+1e-4), +1/(1+1e-4). Group b: all equal -> 0.
  const r = groupAdvantages(['a', 'a', 'b', 'b'], [1, 3, 5, 5]);
  assert.ok(Math.abs(r.advantages[0]! + 1 / 1.0001) < 1e-12 && Math.abs(r.advantages[1]! - 1 / 1.0001) < 1e-12);
  assert.deepEqual(r.advantages.slice(2), [0, 0]);
  assert.equal(r.zeroStdRatio, 0.5);
  assert.equal(r.meanGroupSize, 2);
  // One outlier among n equal rewards has z = sqrt(n - 1): with 31 members, sqrt(30) > 5 is clipped.
  const rewards = [...new Array<number>(30).fill(0), 100];
  const c = groupAdvantages(rewards.map(() => 'x'), rewards, { clipMax: 5 });
  assert.equal(c.advantages[30], 5);
  assert.ok(Math.abs(c.advantages[0]! - -100 / 31 / (Math.sqrt(30) * 100 / 31 + 1e-4)) < 1e-9);
});

test('clipped objective: max(-A r, -A clip(r)) with the ratio of log-probs', () => {
  torch.scope(() => {
    // r = exp(0.1) ~ 1.105 > 1 + 0.05: with A > 0 the clipped term is the larger (less negative) one.
    const lp = torch.tensor(0.1, { dtype: 'float32' });
    const pos = clippedPolicyLoss(lp, 0, 2, { lo: 0.05, hi: 0.05 });
    assert.ok(Math.abs(pos.loss.item() - -2 * 1.05) < 1e-6);
    assert.equal(pos.clipped, true);
    const neg = clippedPolicyLoss(lp, 0, -2, { lo: 0.05, hi: 0.05 });
    assert.ok(Math.abs(neg.loss.item() - 2 * Math.exp(0.1)) < 1e-5);
    const inside = clippedPolicyLoss(torch.tensor(0.01, { dtype: 'float32' }), 0, 1, { lo: 0.05, hi: 0.05 });
    assert.equal(inside.clipped, false);
    assert.ok(Math.abs(inside.loss.item() + Math.exp(0.01)) < 1e-6);
  });
});

test('window starts cover [lo, hi - size] inclusive', () => {
  const seen = new Set<number>();
  let k = 0;
  const random = () => ((k++ * 0.37) % 1);
  for (let i = 0; i < 200; i++) seen.add(drawWindowStart({ windowSize: 3, windowRange: [0, 7], random }));
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4]);
});

// The tiny model with a non-zero velocity head (an untrained BAGEL's llm2vae is zero, which would
// give the generation expert zero gradients and leave only weight decay to change it).
const tinyModel = tinyCharacterModel;

test('a rollout with noise level 0 is the ODE sampler; stored window steps re-score to ratio 1', async () => {
  const cm = tinyModel();
  try {
    const grid = 32 / latentDownsample(cm.model.config);
    const ids = await cm.encode(cm.character.t2iPrompts[0]!.text);
    const ctx = promptContexts(cm.model, ids);
    try {
      torch.manualSeed(4);
      const ode = rollout(cm.model, ctx, { grid, numSteps: 6, timestepShift: 3, cfgTextScale: 4, noiseLevel: 0, windowSize: 2, windowRange: [0, 3], windowStart: 1 });
      torch.manualSeed(4);
      const ref = generateImage(cm.model, { gen: ctx.cond, cfgText: ctx.uncond }, { h: grid, w: grid, numTimesteps: 6, timestepShift: 3, cfgTextScale: 4, cfgInterval: [0, 1] });
      assert.ok(torch.scope(() => ode.latent.sub(ref).abs().max().item()) < 1e-5);
      ref.dispose();
      ode.dispose();

      const sde = rollout(cm.model, ctx, { grid, numSteps: 6, timestepShift: 3, cfgTextScale: 4, noiseLevel: 1.3, windowSize: 2, windowRange: [0, 3], windowStart: 1 });
      assert.deepEqual(sde.window.map((w) => w.j), [1, 2]);
      for (const step of sde.window) {
        const again = torch.scope(() => windowLogProb(cm.model, ctx, step, grid, 4).logProb.item());
        assert.ok(Math.abs(again - step.logProb) < 1e-5, `${again} vs ${step.logProb}`);
      }
      sde.dispose();
    } finally {
      ctx.dispose();
    }
  } finally {
    cm.dispose();
  }
});

test('a short run trains only the generation expert and logs every reward component', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-'));
  try {
    const cm = tinyModel();
    cm.save(join(dir, 'sft'));
    const before = new Map([...cm.model.namedParameters()].map(([n, p]) => [n, torch.scope(() => Array.from(p.dataSync() as Float32Array))]));
    cm.dispose();
    const logs: string[] = [];
    const result = await trainGrpo({
      ...DEFAULT_GRPO, preset: 'project', from: join(dir, 'sft'), out: join(dir, 'run'), epochs: 2, promptsPerEpoch: 2, groupSize: 3, numSteps: 6,
      windowSize: 2, windowRange: [0, 3], evalEvery: 2, evalSteps: 4, saveEvery: 1, lr: 1e-3, clipRange: 0.2, checklistAnswerer: 'model',
    }, { log: (l) => logs.push(l), progress: null, handleSigint: false });
    assert.equal(result.step, 2);
    const metrics = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    assert.equal(metrics.length, 2);
    assert.ok(metrics[0]!.grad_norm! > 0, 'the policy loss reached the generation expert');
    // No answerer given, checklistAnswerer 'model' and selfVqa (default): the model's own understanding path answered the checklists.
    for (const m of metrics) assert.equal((m as unknown as { scorers: { vqa: string } }).scorers.vqa, SELF_VQA_ID);
    assert.ok(logs.some((l) => l.includes(SELF_VQA_ID) && l.includes('own understanding path')), logs.join('\n'));
    const config = JSON.parse(readFileSync(join(dir, 'run', 'config.json'), 'utf8')) as { scorers: { vqa: string }; rewards: { scorers: { answerer: string } } };
    assert.equal(config.scorers.vqa, SELF_VQA_ID);
    assert.equal(config.rewards.scorers.answerer, SELF_VQA_ID);
    for (const key of ['reward', 'reward_vqa', 'reward_clip', 'reward_div', 'reward_dino', 'clip_fraction', 'zero_std_ratio', 'mean_group_size']) {
      assert.equal(typeof metrics[0]![key], 'number', key);
    }
    assert.equal(metrics[0]!.mean_group_size, 3);
    assert.equal(typeof metrics[1]!.eval_reward, 'number');
    const after = await CharacterModel.load(result.modelDir);
    let genChanged = 0;
    for (const [n, p] of after.model.namedParameters()) {
      const was = before.get(n)!;
      const now = torch.scope(() => Array.from(p.dataSync() as Float32Array));
      const same = now.every((v, i) => v === was[i]);
      if (n.includes('moe_gen') && n.startsWith('language_model.')) genChanged += same ? 0 : 1;
      else assert.ok(same, `${n} changed but is not in the generation expert`);
    }
    assert.ok(genChanged > 0, 'no generation-expert parameter changed');
    after.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A 32x32 test image: a left-right ramp in red, a top-bottom ramp in green, blue at -0.5. */
function rampImage(side = 32): ChwImage {
  const plane = side * side;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      data[y * side + x] = (2 * x) / (side - 1) - 1;
      data[plane + y * side + x] = (2 * y) / (side - 1) - 1;
      data[2 * plane + y * side + x] = -0.5;
    }
  }
  return { channels: 3, height: side, width: side, data };
}

test('self VQA: the model answers through its ViT path, as evaluation does, and the VQA reward is computed through it', async () => {
  const cm = tinyModel();
  try {
    const encoded: string[] = [];
    const answerer = new SelfVqaAnswerer(cm.model, {
      encode: (t) => { encoded.push(t); return cm.encode(t); },
      decode: (ids) => cm.tokenizer.decode(ids, { skipSpecialTokens: true }),
    });
    assert.equal(answerer.id, 'self:understanding-path');
    const image = rampImage();
    // 32 px is resized to 28 px (2x2 ViT patches of 14).
    const vit = answerer.vitInput(image);
    assert.deepEqual(vit.shape, [3, 28, 28]);
    const vitData = torch.scope(() => new Float32Array(vit.dataSync() as Float32Array));
    vit.dispose();
    const q = cm.character.t2iPrompts[0]!.checklist[0]!;
    const reply = await answerer.answer(image, q.question);
    assert.equal(typeof reply, 'string');
    assert.deepEqual(encoded, [q.question]);
    // The same reply as evaluation's VQA (src/eval answerAboutImage) on the same ViT input.
    const viaEval = await answerAboutImage(cm, { channels: 3, height: 28, width: 28, data: vitData }, q.question, answerer.maxTokens);
    assert.equal(reply, normaliseReply(viaEval));

    // VQA_i through the answerer: the checklist score of its own replies, alone and in the reward suite.
    const qs = cm.character.t2iPrompts[0]!.checklist;
    const replies: string[] = [];
    for (const c of qs) replies.push(await answerer.answer(image, c.question, c.choices));
    const scorer = new VqaScorer(answerer);
    const [score] = await scorer.score([image], [qs], [cm.character.t2iPrompts[0]!.text]);
    assert.equal(score, checklistScore(qs, replies));
    // A spy answerer that says the expected answers scores 1: the scorer does use the answerer's words.
    const oracle: Answerer = { id: 'test:oracle', answer: (_i, question) => qs.find((c) => c.question === question)!.answer };
    assert.deepEqual(await new VqaScorer(oracle).score([image], [qs], ['x']), [1]);
    const suite = createRewardScorers({ answerer, tauHi: REFERENCE_REWARD_WEIGHTS.tauHi, tauLo: REFERENCE_REWARD_WEIGHTS.tauLo });
    try {
      assert.equal(suite.ids.vqa, SELF_VQA_ID);
      const report = await computeRewards(suite, { images: [image], prompts: [cm.character.t2iPrompts[0]!.text], checklists: [qs], references: [image] });
      assert.deepEqual(report.components.vqa, [score]);
      assert.equal(report.ids.vqa, SELF_VQA_ID);
    } finally {
      suite.dispose();
    }
  } finally {
    cm.dispose();
  }
});

test('trainGrpo names the VQA scorer it used: self with checklistAnswerer model, the substitute with selfVqa false, the checklist probe under project, a given answerer first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-ids-'));
  try {
    const from = writeTinySft(dir);
    const idsOf = async (name: string, over: Parameters<typeof tinyGrpoConfig>[2]): Promise<{ log: string; vqa: string }> => {
      const logs: string[] = [];
      await trainGrpo(tinyGrpoConfig(from, join(dir, name), { epochs: 0, ...over }), { log: (l) => logs.push(l), progress: null, handleSigint: false });
      const config = JSON.parse(readFileSync(join(dir, name, 'config.json'), 'utf8')) as { scorers: { vqa: string } };
      return { log: logs.join('\n'), vqa: config.scorers.vqa };
    };
    const self = await idsOf('self', { checklistAnswerer: 'model' });
    assert.equal(self.vqa, SELF_VQA_ID);
    assert.ok(self.log.includes(`"vqa":"${SELF_VQA_ID}"`), self.log);
    const reference = await idsOf('reference', { preset: 'reference', layout: { kind: 'prompt-groups' } });
    assert.equal(reference.vqa, SELF_VQA_ID, 'the reference preset keeps the model\'s own path');
    // The project preset's 'auto': the probe beats the majority on the sample character, so it answers.
    const probe = await idsOf('probe', {});
    assert.equal(probe.vqa, CHECKLIST_PROBE_ID);
    assert.match(probe.log, /checklist VQA answered by trained:checklist-probe .*held-out accuracy \d+\.\d% vs majority \d+\.\d% on \d+ items/);
    const off = await idsOf('off', { selfVqa: false, checklistAnswerer: 'model' });
    assert.equal(off.vqa, 'fallback:colour-heuristic-vqa');
    assert.ok(!off.log.includes(SELF_VQA_ID));
    const given: Answerer = { id: 'test:given', answer: () => 'yes' };
    const g = await idsOf('given', { rewards: { ...DEFAULT_GRPO.rewards, scorers: { answerer: given } } });
    assert.equal(g.vqa, 'test:given');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
