// End to end: the sample character with two tiny untrained models saved to a temp folder, the
// split given as the sample's test split root; every task is in the report, judge-only metrics are
// "not measured" with a reason, each number names its evaluator, and the copy baseline is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MICRO } from '../../src/model/index.js';
import { manualSeed } from '../../src/torch/index.js';
import { loadSampleCharacter, SAMPLE_ROOT } from '../../src/data/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { COPY_LABEL, TASK_NAMES, nearestTrainingImage, runEval, type EvalReport } from '../../src/eval/index.js';

test('nearest training image: retrieval by caption, never a held-out image', () => {
  const { character } = loadSampleCharacter();
  const hit = nearestTrainingImage(character, character.referenceImages[3]!.t2iInstruction!);
  assert.equal(hit?.id, '3');
  assert.ok(hit?.path?.includes(`${join('train', 'UniCharacter-Tessel')}`));
});

test('runEval on the sample character with two tiny untrained models', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-e2e-'));
  try {
    const { character } = loadSampleCharacter();
    const texts = [character.description, character.profile, ...character.dialogue.slice(0, 10).map((s) => `${s.user} ${s.reply}`)];
    for (const [label, seed] of [['base', 3], ['other', 4]] as const) {
      const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed, texts });
      m.save(join(dir, label));
      m.dispose();
    }
    const out = join(dir, 'report');
    const report: EvalReport = await runEval({
      character,
      split: join(SAMPLE_ROOT, 'test'),
      runs: [{ label: 'base', modelDir: join(dir, 'base') }, { label: 'other', modelDir: join(dir, 'other') }],
      evaluators: { independent: false },
      out,
      limits: { maxItems: 2, maxTokens: 6, maxAnswerTokens: 4, maxThinkTokens: 5, numTimesteps: 2, samplesPerPrompt: 2 },
    });
    for (const f of ['report.json', 'report.md', 'report.html']) assert.ok(existsSync(join(out, f)), f);
    assert.deepEqual(report.tasks.map((t) => t.name), [...TASK_NAMES]);
    assert.deepEqual(report.columns.map((c) => c.label), ['base', 'other', COPY_LABEL, 'chance: uniform', 'chance: majority key']);
    assert.equal(report.split.heldOutImages, 4);
    const metric = (k: string) => report.tasks.flatMap((t) => t.metrics).find((m) => m.key === k)!;
    // Judge-only metrics: null with a reason, for every model column.
    for (const k of ['memorization.judge', 'personality.judge', 'roleplay.judge', 'knowledge.openJudge']) {
      for (const run of ['base', 'other']) {
        const cell = metric(k).cells[run]!;
        assert.equal(cell.value, null, k);
        assert.match(cell.notMeasured!, /no judge configured/);
      }
    }
    // Rule metrics are measured and name their rule.
    for (const run of ['base', 'other']) {
      assert.equal(typeof metric('knowledge.mcqAccuracy').cells[run]!.value, 'number');
      assert.equal(metric('knowledge.mcqAccuracy').cells[run]!.n, 2);
      assert.equal(metric('roleplay.rougeL').cells[run]!.evaluator, 'rule:rouge-l-f1');
      assert.equal(metric('roleplay.bleu').cells[run]!.evaluator, 'rule:bleu-4-corpus');
      assert.equal(metric('vqa.exactMatch').cells[run]!.evaluator, 'rule:vqa-normalised-exact-match');
      assert.equal(metric('t2i.clipT').cells[run]!.evaluator, 'fallback:colour-words');
      assert.equal(metric('t2i.dino').cells[run]!.evaluator, 'fallback:colour-edge-histogram');
      assert.equal(typeof metric('t2i.diversity').cells[run]!.value, 'number');
      assert.equal(metric('multimodal.consistency').cells[run]!.evaluator, 'fallback:colour-words');
      // No CLIP weights: CLIP-I is not measured rather than faked with another embedder.
      assert.match(metric('t2i.clipI').cells[run]!.notMeasured!, /no CLIP weights/);
      assert.match(metric('multimodal.independentSimilarity').cells[run]!.notMeasured!, /switched off/);
    }
    // The copy baseline has image metrics only; a deterministic copy has zero diversity.
    assert.equal(typeof metric('t2i.dino').cells[COPY_LABEL]!.value, 'number');
    assert.equal(metric('t2i.diversity').cells[COPY_LABEL]!.value, 0);
    assert.equal(metric('knowledge.mcqAccuracy').cells[COPY_LABEL], undefined);
    assert.equal(metric('knowledge.mcqAccuracy').cells['chance: uniform']!.value, 25);
    assert.equal(metric('knowledge.mcqAccuracy').paper!.value, 77);
    // Paper context only where the paper has a number.
    assert.equal(metric('multimodal.clipI').paper!.value, 0.86);
    assert.equal(metric('roleplay.rougeL').paper, undefined);
    // Face identity applies to human characters only; Tessel is not one.
    assert.equal(metric('t2i.faceSimilarity'), undefined);
    // Every measured cell names an evaluator; every null has a reason.
    for (const t of report.tasks) for (const m of t.metrics) for (const c of Object.values(m.cells)) {
      assert.ok(c.evaluator.length > 0);
      if (c.value === null) assert.ok((c.notMeasured ?? '').length > 0, `${m.key}`);
    }
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as EvalReport;
    assert.equal(json.tasks.length, 8);
    // Role-play with thinking: its own table, the multimodal task's replies (same seeds), the
    // images drawn from the plans, and the plan the runtime makes for the same scene.
    assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /Multimodal role-play with thinking/);
    const task = (n: string) => report.tasks.find((t) => t.name === n)!;
    for (const run of ['base', 'other']) {
      const wf = metric('multimodalThinking.planWellFormed').cells[run]!;
      assert.deepEqual([wf.evaluator, wf.n], ['rule:think-gen-tags', 2]);
      assert.ok(wf.value! >= 0 && wf.value! <= 100);
      assert.equal(metric('multimodalThinking.consistency').cells[run]!.evaluator, 'fallback:colour-words');
      const plain = task('multimodal').samples.filter((s) => s.column === run);
      const planned = task('multimodalThinking').samples.filter((s) => s.column === run);
      assert.equal(planned.length, 2);
      planned.forEach((s, i) => assert.ok(s.output.startsWith(`${plain[i]!.output}\n\n[plan] `), s.output));
      for (const s of planned) assert.ok(existsSync(join(out, s.image!)));
    }
    assert.equal(metric('multimodalThinking.dino').cells[COPY_LABEL], undefined);
    const cm = await CharacterModel.load(join(dir, 'base'));
    try {
      const first = task('multimodalThinking').samples.find((s) => s.column === 'base')!;
      manualSeed(0);
      const r = await cm.rolePlay(first.input, { temperature: 0.7, maxTokens: 6, image: { seed: 0, numTimesteps: 2 }, thinking: { maxTokens: 5 } });
      assert.equal(first.output, `${r.reply}\n\n[plan] ${r.plan!.text}`);
    } finally {
      cm.dispose();
    }
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(md, /\| MCQ accuracy \| % \|/);
    assert.match(md, /not measured \[\d\]/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<table class="metrics">/);
    assert.match(html, /<img src="data:image\/png;base64,/);
    const t2iImages = report.tasks.find((t) => t.name === 't2i')!.samples.filter((s) => s.image);
    assert.ok(t2iImages.length >= 4);
    for (const s of t2iImages) assert.ok(existsSync(join(out, s.image!)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
