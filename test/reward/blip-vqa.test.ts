// BLIP-VQA in the transformers layout (BlipForQuestionAnswering): a tiny random-weights model from
// fixtures/make_blip_fixture.py (plain torch following modeling_blip.py / modeling_blip_text.py),
// written here as config.json + model.safetensors with the HF key names and a BERT WordPiece
// tokenizer.json; image tokens, question encodings, decoder logits, greedy answers, the yes/no
// probability and choice ranking must match the reference, and the loader must name what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { arange, noGrad, scope } from '../../src/torch/index.js';
import type { ChwImage } from '../../src/data/image.js';
import {
  BLIP_VQA_ID, BlipTokenizer, BlipVqaAnswerer, createRewardScorers, loadBlipVqaModel, parseBlipConfig, REFERENCE_BLIP_LENGTHS, VqaScorer,
} from '../../src/reward/index.js';
import { assertClose, formulaImages, tempDir, writeModelFolder, type ParamSpec } from './helpers.js';
import { trainGrpo, DEFAULT_GRPO } from '../../src/train/grpo.js';
import { writeTinySft, tinyGrpoConfig } from '../train/fixtures/grpo-fixtures.js';

const fx = JSON.parse(readFileSync(new URL('../../../test/reward/fixtures/blip_fixture.json', import.meta.url), 'utf8')).blip;
const vocab = fx.vocab as Record<string, number>;
const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[DEC]'];

/** A bert-base-uncased style tokenizer.json (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] $A [SEP]). */
function tokenizerJson(): unknown {
  const special = (t: string) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: SPECIAL.map(special),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

function writeBlipFolder(dir: string, options: { drop?: string[]; extra?: Map<string, torch.Tensor>; noTokenizer?: boolean; noConfig?: boolean } = {}): void {
  writeModelFolder(dir, fx.params as ParamSpec[], options.noConfig ? null : fx.config, options);
  if (!options.noTokenizer) writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
}

function withFolder<T>(fn: (dir: string) => Promise<T> | T, options: Parameters<typeof writeBlipFolder>[1] = {}): Promise<T> {
  const { dir, cleanup } = tempDir();
  writeBlipFolder(dir, options);
  return Promise.resolve().then(() => fn(dir)).finally(cleanup);
}

const images = (): torch.Tensor => formulaImages(fx.image_shape, fx.image_seed);
/** Image i of the fixture batch as a CHW image in [-1, 1]. */
function chw(i: number): ChwImage {
  const [, , h, w] = fx.image_shape as number[];
  return scope(() => ({ channels: 3 as const, height: h!, width: w!, data: images().select(0, i).mul(2).sub(1).contiguous().dataSync() as Float32Array }));
}
const pairedImages = (): torch.Tensor => scope(() => images().index_select(0, torch.tensor(fx.pair_image, { dtype: 'int64' })));

test('BLIP config: transformers defaults (blip-vqa-base sizes) and the fixture fields', () => {
  const d = parseBlipConfig({});
  assert.deepEqual([d.vision.imageSize, d.vision.patchSize, d.vision.hiddenSize, d.vision.numHeads, d.vision.layerNormEps], [384, 16, 768, 12, 1e-5]);
  assert.deepEqual([d.text.vocabSize, d.text.bosTokenId, d.text.sepTokenId, d.text.padTokenId, d.text.maxLength, d.text.layerNormEps, d.text.hiddenAct],
    [30524, 30522, 102, 0, 20, 1e-12, 'gelu']);
  const c = parseBlipConfig(fx.config);
  assert.equal(c.text.bosTokenId, vocab['[DEC]']);
  assert.equal(c.text.sepTokenId, vocab['[SEP]']);
  assert.equal(c.text.maxLength, fx.config.text_config.max_length);
  assert.throws(() => parseBlipConfig({ text_config: { encoder_hidden_size: 16 } }), /encoder_hidden_size 16/);
});

test('BLIP tokenizer: WordPiece tokenizer.json, questions as [CLS] wordpieces [SEP]', async () => {
  await withFolder(async (dir) => {
    const tok = BlipTokenizer.load(dir);
    for (let i = 0; i < fx.questions.length; i++) {
      assert.deepEqual(await tok.encodeQuestion(fx.questions[i], 64), fx.question_ids[i], fx.questions[i]);
    }
    // 'Tessel' -> te ##ss ##el; truncation keeps [SEP]
    assert.deepEqual(await tok.encodeText('Tessel'), [vocab['te'], vocab['##ss'], vocab['##el']]);
    assert.deepEqual(await tok.encodeQuestion('what is the fox', 4), [vocab['[CLS]'], vocab['what'], vocab['is'], vocab['[SEP]']]);
    assert.equal(await tok.decode([vocab['[CLS]'], vocab['te'], vocab['##ss'], vocab['##el'], vocab['[SEP]']]), 'tessel');
  });
});

test('BLIP tokenizer: a folder with only vocab.txt (slow tokenizer) encodes as tokenizer.json does', async () => {
  await withFolder(async (dir) => {
    const byId = Object.entries(vocab).sort((a, b) => a[1] - b[1]).map(([t]) => t);
    writeFileSync(join(dir, 'vocab.txt'), byId.join('\n') + '\n');
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true }));
    const tok = BlipTokenizer.load(dir);
    assert.ok(tok.source.endsWith('vocab.txt'));
    for (let i = 0; i < fx.questions.length; i++) assert.deepEqual(await tok.encodeQuestion(fx.questions[i], 64), fx.question_ids[i]);
    assert.equal(await tok.decode([vocab['te'], vocab['##ss'], vocab['##el'], vocab['?']]), 'tessel?');
  }, { noTokenizer: true });
});

test('BLIP-VQA: pixels, image tokens, question encodings (<= 2e-5) and decoder logits (1e-4) match the reference', async () => {
  await withFolder(async (dir) => {
    const blip = BlipVqaAnswerer.load(dir);
    try {
      assert.equal(blip.id, BLIP_VQA_ID);
      noGrad(() => scope(() => {
        const px = blip.pixels(images()).reshape([-1]);
        const strided = px.index_select(0, arange(0, px.shape[0]!, fx.pixels_stride, { dtype: 'int64' }));
        assertClose(strided.dataSync() as Float32Array, fx.pixels, 1e-5, 'pixels');
        assertClose(blip.imageEmbeds(images()).dataSync() as Float32Array, fx.image_embeds, 1e-5, 'image embeds'); // erf vs tanh GELU differs by ~5e-5 here
      }));
      const ids = (fx.question_ids as number[][]);
      const T = Math.max(...ids.map((r) => r.length));
      noGrad(() => scope(() => {
        const m = blip.model;
        const idT = torch.tensor(ids.flatMap((r) => [...r, ...new Array<number>(T - r.length).fill(0)]), { shape: [ids.length, T], dtype: 'int64' });
        const mask = torch.tensor(ids.flatMap((r) => Array.from({ length: T }, (_, j) => (j < r.length ? 1 : 0))), { shape: [ids.length, T], dtype: 'float32' });
        const q = m.encodeQuestion(idT, mask, blip.imageEmbeds(pairedImages()));
        assertClose(q.mul(mask.unsqueeze(-1)).dataSync() as Float32Array, fx.question_embeds, 2e-5, 'question embeds');
        const prefix = torch.tensor(ids.flatMap(() => fx.decoder_prefix as number[]), { shape: [ids.length, fx.decoder_prefix.length], dtype: 'int64' });
        assertClose(m.decoderLogits(prefix, q, mask).dataSync() as Float32Array, fx.decoder_logits, 1e-4, 'decoder logits');
      }));
    } finally {
      blip.dispose();
    }
  });
});

test('BLIP-VQA: greedy answers (stop at [SEP], max_length), batched = alone, yes/no probability, choice ranking', async () => {
  await withFolder(async (dir) => {
    const blip = BlipVqaAnswerer.load(dir);
    try {
      const paired = pairedImages();
      // the batch (padded questions) generates the ids each question gets alone in the reference
      assert.deepEqual(await blip.generateIds(paired, fx.questions), fx.greedy_ids);
      for (let i = 0; i < fx.questions.length; i++) {
        assert.deepEqual(await blip.generateIds(paired.narrow(0, i, 1), [fx.questions[i]]), [fx.greedy_ids[i]], `alone ${i}`);
      }
      // text: [DEC] and [SEP] dropped, wordpieces joined
      const inv = new Map(Object.entries(vocab).map(([k, v]) => [v, k]));
      assert.equal(inv.get(fx.greedy_ids[0][1]), 'two');
      const batch = await blip.answerBatch(paired, fx.questions);
      assert.equal(batch[0], 'two');
      assert.equal(batch[2], await blip.tokenizer.decode(fx.greedy_ids[2].slice(1)));
      // the Answerer interface on CHW images in [-1, 1], one by one and all at once
      const img0 = chw(0);
      assert.equal(await blip.answer(img0, fx.questions[0]), batch[0]);
      assert.deepEqual(await blip.answerAll(img0, [{ question: fx.questions[0] }, { question: fx.questions[2] }]), [batch[0], batch[2]]);
      assertClose(await blip.yesProbability(paired, fx.questions), fx.p_yes, 1e-4, 'P(yes)');
      const scores = await blip.choiceScores(paired, fx.questions, fx.choices);
      assertClose(scores.flat(), (fx.choice_scores as number[][]).flat(), 1e-3, 'choice log-probabilities');
      const best = (fx.choice_scores as number[][]).map((row) => fx.choices[row.indexOf(Math.max(...row))]);
      assert.equal(await blip.answer(img0, fx.questions[0], fx.choices), best[0]);
      const mixed = await blip.answerAll(chw(1), [{ question: fx.questions[1], choices: fx.choices }, { question: fx.questions[1] }]);
      assert.deepEqual(mixed, [best[1], batch[1]]);
      // max_length caps the answer ([DEC] included)
      const short = new BlipVqaAnswerer(blip.model, blip.tokenizer, { maxLength: 3 });
      assert.deepEqual(await short.generateIds(paired.narrow(0, 2, 1), [fx.questions[2]]), [fx.greedy_ids[2].slice(0, 3)]);
      // the fallback question has its own cap: image 0 with question 2 decodes 7 tokens after [DEC]
      // uncapped (fixture max_length 8); capped at 4 ([DEC] + 3) for the fallback only
      const split = new BlipVqaAnswerer(blip.model, blip.tokenizer, { fallbackMaxLength: 4 });
      assert.equal(await split.answer(img0, fx.questions[2]), batch[2]);
      assert.equal(await split.answer(img0, fx.questions[2], undefined, 'fallback'), await blip.tokenizer.decode(fx.greedy_ids[2].slice(1, 4)));
      assert.notEqual(batch[2], await blip.tokenizer.decode(fx.greedy_ids[2].slice(1, 4)));
      assert.throws(() => new BlipVqaAnswerer(blip.model, blip.tokenizer, { fallbackMaxLength: 1 }), /fallbackMaxLength must be an integer >= 2/);
    } finally {
      blip.dispose();
    }
  });
});

test('BLIP-VQA as the checklist answerer: VqaScorer and createRewardScorers({ blipVqaDir }) report blip-vqa', async () => {
  await withFolder(async (dir) => {
    const scorers = createRewardScorers({ blipVqaDir: dir });
    try {
      assert.equal(scorers.ids.vqa, 'blip-vqa');
      assert.ok(scorers.vqa.answerer instanceof BlipVqaAnswerer);
      const img = chw(0);
      const checklist = [
        { question: fx.questions[0], answer: 'Two' },
        { question: fx.questions[0], answer: 'three', weight: 3 },
      ];
      assert.deepEqual(await scorers.vqa.score([img], [checklist], ['a fox']), [0.25]);
      // an explicit answerer wins over the folder
      const other = createRewardScorers({ blipVqaDir: dir, answerer: { id: 'x', answer: () => 'yes' } });
      assert.equal(other.ids.vqa, 'x');
      other.dispose();
      assert.equal(new VqaScorer(scorers.vqa.answerer).id, 'blip-vqa');
      // length caps: the official scorer's 50 / 10 under the reference rules (the default), the
      // folder's text_config.max_length for both under the project rules
      const blip = scorers.vqa.answerer as BlipVqaAnswerer;
      assert.deepEqual([blip.maxLength, blip.fallbackMaxLength], [50, 10]);
      assert.deepEqual([REFERENCE_BLIP_LENGTHS.checklist, REFERENCE_BLIP_LENGTHS.fallback], [50, 10]);
      const project = createRewardScorers({ blipVqaDir: dir, vqaRules: 'project' });
      const pb = project.vqa.answerer as BlipVqaAnswerer;
      assert.deepEqual([pb.maxLength, pb.fallbackMaxLength], [fx.config.text_config.max_length, fx.config.text_config.max_length]);
      project.dispose();
    } finally {
      scorers.dispose();
    }
  });
});

test('BLIP-VQA loader: missing files, keys and shapes are named; legacy and tied keys are accepted', async () => {
  await withFolder((dir) => {
    assert.throws(() => loadBlipVqaModel(dir), (e: Error) => /no config\.json/.test(e.message) && e.message.includes(dir));
  }, { noConfig: true });
  await withFolder((dir) => {
    assert.throws(() => BlipVqaAnswerer.load(dir), /no tokenizer\.json/);
  }, { noTokenizer: true });
  await withFolder((dir) => {
    rmSync(join(dir, 'model.safetensors'));
    assert.throws(() => loadBlipVqaModel(dir), /no model\.safetensors/);
  });
  await withFolder((dir) => {
    assert.throws(() => loadBlipVqaModel(dir), (e: Error) =>
      /missing keys \(2\)/.test(e.message) && e.message.includes('vision_model.encoder.layers.1.self_attn.qkv.weight')
      && e.message.includes('text_encoder.encoder.layer.0.crossattention.self.key.bias') && e.message.includes('model.safetensors'));
  }, { drop: ['vision_model.encoder.layers.1.self_attn.qkv.weight', 'text_encoder.encoder.layer.0.crossattention.self.key.bias'] });
  await withFolder((dir) => {
    assert.throws(() => loadBlipVqaModel(dir), /size mismatch for vision_model\.embeddings\.position_embedding/);
  }, { extra: new Map([['vision_model.embeddings.position_embedding', torch.zeros([1, 5, 32])]]) });
  await withFolder((dir) => {
    assert.throws(() => loadBlipVqaModel(dir), /unexpected keys \(1\): text_decoder\.cls\.seq_relationship\.weight/);
  }, { extra: new Map([['text_decoder.cls.seq_relationship.weight', torch.zeros([2, 32])]]) });
  // position_ids buffers and a tied decoder bias are skipped; a missing decoder weight is tied to the word embeddings
  const V = Object.keys(vocab).length;
  await withFolder((dir) => {
    const m = loadBlipVqaModel(dir);
    try {
      scope(() => {
        const words = m.text_decoder.bert.embeddings.word_embeddings.weight;
        assert.equal(m.text_decoder.cls.predictions.decoder.weight.sub(words).abs().max().item(), 0);
        assert.equal(m.text_decoder.cls.predictions.bias.shape[0], V);
      });
    } finally {
      m.dispose();
    }
  }, {
    drop: ['text_decoder.cls.predictions.decoder.weight'],
    extra: new Map([
      ['text_encoder.embeddings.position_ids', arange(0, 24).reshape([1, 24])],
      ['text_decoder.cls.predictions.decoder.bias', torch.zeros([V])],
    ]),
  });
});

test('trainGrpo with rewards.scorers.blipVqaDir: BLIP-VQA answers the checklists and is named in the log and config.json', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const blipDir = join(dir, 'blip');
    mkdirSync(blipDir);
    writeBlipFolder(blipDir);
    const from = writeTinySft(join(dir, 'sft'));
    const logs: string[] = [];
    const out = join(dir, 'grpo');
    await trainGrpo(tinyGrpoConfig(from, out, { epochs: 1, rewards: { ...DEFAULT_GRPO.rewards, scorers: { blipVqaDir: blipDir } } }),
      { log: (l) => logs.push(l), progress: null, handleSigint: false });
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { scorers: { vqa: string }; rewards: { scorers: { blipVqaDir: string; answerer: string } } };
    assert.equal(config.scorers.vqa, BLIP_VQA_ID);
    assert.equal(config.rewards.scorers.blipVqaDir, blipDir);
    assert.equal(config.rewards.scorers.answerer, BLIP_VQA_ID);
    const log = logs.join('\n');
    assert.ok(log.includes(`"vqa":"${BLIP_VQA_ID}"`) && log.includes('BLIP-VQA from'), log);
    assert.ok(!log.includes('self:understanding-path'), log);
    // the epoch's metrics line carries a VQA reward in [0, 1] and the scorer that produced it
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const rec = lines.find((l) => typeof l.reward_vqa === 'number');
    assert.ok(rec, JSON.stringify(lines));
    assert.ok((rec.reward_vqa as number) >= 0 && (rec.reward_vqa as number) <= 1);
    assert.equal((rec.scorers as { vqa: string }).vqa, BLIP_VQA_ID);
  } finally {
    cleanup();
  }
});
