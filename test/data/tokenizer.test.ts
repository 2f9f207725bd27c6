// The tokenizer (docs/method.md 1.5) on the `tokenizers` library. The hand-made tokenizer.json below is
// written here in the Qwen2 layout, independently of tokenizer.ts, and the expected ids are worked
// out by hand from GPT-2's byte table (comments give the arithmetic).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Tokenizer,
  streamDecode,
  trainTinyTokenizer,
  trainSampleTokenizer,
  characterTexts,
  characterSampleTexts,
  TINY_VOCAB_SIZE,
} from '../../src/data/tokenizer.js';
import { DataError } from '../../src/data/diagnostics.js';
import { loadSampleCharacter } from '../../src/data/sample-character/load.js';

const dir = mkdtempSync(join(tmpdir(), 'unichar-tok-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// GPT-2 bytes_to_unicode, in vocabulary order: printable bytes 33..126, 161..172, 174..255 keep
// their character and take ids 0..187; the other 68 bytes (0..32, 127..160, 173) become
// U+0100.. and take ids 188..255. So space (byte 32, the 33rd of those) is U+0120 'Ġ', id 220.
function byteTable(): string[] {
  const keep: number[] = [];
  for (let b = 0; b < 256; b++) if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) keep.push(b);
  const rest: number[] = [];
  for (let b = 0; b < 256; b++) if (!keep.includes(b)) rest.push(b);
  return [...keep.map((b) => String.fromCharCode(b)), ...rest.map((_, n) => String.fromCharCode(256 + n))];
}

const SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
const MERGES = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r'];
const FOUR = ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>'];

/** tokenizer.json as the Qwen2 folder lays it out: 256 byte symbols, 6 merged symbols (ids
 * 256..261 in merge order), then `added` as special added tokens from id 262. */
function handMade(added: string[] = FOUR): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteTable().forEach((c, i) => (vocab[c] = i));
  MERGES.forEach((m, i) => (vocab[m.replace(' ', '')] = 256 + i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map((content, i) => ({ id: 262 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: SPLIT }, behavior: 'Isolated', invert: false }, BYTE_LEVEL] },
    post_processor: BYTE_LEVEL,
    decoder: BYTE_LEVEL,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: MERGES },
  };
}

function writeJson(name: string, value: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return p;
}

const handPath = writeJson('hand.json', handMade());
const tok = Tokenizer.fromFile(handPath);

test('hand-made Qwen2-layout tokenizer.json: "hello world" encodes to the hand-computed ids', async () => {
  // "hello": h e -> he(256), l l -> ll(257), he ll -> hell(258), hell o -> hello(259).
  // "Ġworld": Ġ w -> Ġw(260), o r -> or(261), then l = 108-33 = 75, d = 100-33 = 67.
  assert.deepEqual(await tok.encode('hello world'), [259, 260, 261, 75, 67]);
  assert.deepEqual(await tok.tokens('hello world'), ['hello', 'Ġw', 'or', 'l', 'd']);
  // "Hi!": H = 72-33 = 39, i = 105-33 = 72, ! = 0; no merge applies.
  assert.deepEqual(await tok.encode('Hi!'), [39, 72, 0]);
  // 你 = E4 BD A0: E4 -> 106+(228-174) = 160, BD -> 106+(189-174) = 121, A0 -> 188+33+(160-127) = 254.
  assert.deepEqual(await tok.encode('你'), [160, 121, 254]);
  assert.equal(tok.vocabSize, 266);
  assert.equal(tok.numNewTokens, 0);
  assert.equal(tok.source, handPath);
});

test('the four special tokens map to their ids, are never split and are not added implicitly', async () => {
  assert.deepEqual({ ...tok.special }, { bos: 262, eos: 263, startOfImage: 264, endOfImage: 265 });
  assert.deepEqual([tok.bos, tok.eos, tok.startOfImage, tok.endOfImage], [262, 263, 264, 265]);
  const ids = await tok.encode('<|im_start|>hello world<|im_end|><|vision_start|><|vision_end|>');
  assert.deepEqual(ids, [262, 259, 260, 261, 75, 67, 263, 264, 265]);
  assert.equal(tok.decode(ids), '<|im_start|>hello world<|im_end|><|vision_start|><|vision_end|>');
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'hello world');
  assert.equal(await tok.decodeAsync(ids, { skipSpecialTokens: true }), 'hello world');
  // A near miss is ordinary text.
  const near = await tok.encode('<|im_start>');
  assert.ok(near.length > 1 && !near.includes(262));
});

test('decode inverts encode on unicode text (emoji, CJK, combining marks) and agrees with the library', async () => {
  const texts = [
    'hello world',
    'Tessel 地图 と 旅 — 你好，世界！',
    'Emoji: 😀🗺️ 👩‍👩‍👧 🏳️‍🌈 and 𝔘𝔫𝔦',
    'tabs\tand\nnew lines\r\n  spaces  ',
    'café ½ ÿ \u0000 \u00ad end',
  ];
  for (const t of texts) {
    const ids = await tok.encode(t);
    assert.equal(tok.decode(ids), t);
    assert.equal(await tok.decodeAsync(ids), t);
  }
});

test('streaming decode emits a multi-byte character only once its bytes are complete', async () => {
  const ids = await tok.encode('😀'); // F0 9F 98 80: four byte tokens, no merges
  assert.equal(ids.length, 4);
  const s = tok.streamDecoder();
  assert.deepEqual(ids.map((id) => s.push(id)), ['', '', '', '😀']);
  assert.equal(s.flush(), '');

  const text = 'hi 你好😀 world!';
  const all = await tok.encode(text);
  const pieces = [...streamDecode(tok, all)];
  assert.equal(pieces.join(''), text);
  for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `piece ${JSON.stringify(p)} holds a replacement char`);
  // 你 and 好 (3 bytes each) and 😀 each come out whole.
  assert.ok(pieces.includes('你') && pieces.includes('好') && pieces.includes('😀'));

  // An unfinished character is held back, and flush gives it as U+FFFD.
  const s2 = tok.streamDecoder();
  assert.equal(s2.pushAll([...(await tok.encode('a')), ...ids.slice(0, 2)]), 'a');
  assert.equal(s2.flush(), '\uFFFD');

  // Special tokens stream too, and can be skipped.
  const s3 = tok.streamDecoder({ skipSpecialTokens: true });
  assert.equal(s3.pushAll([tok.bos, ...(await tok.encode('hello')), tok.eos]), 'hello');
});

test('missing special tokens are appended after the vocabulary and counted', async () => {
  const none = Tokenizer.fromFile(writeJson('none.json', handMade([])));
  assert.equal(none.numNewTokens, 4);
  assert.deepEqual({ ...none.special }, { bos: 262, eos: 263, startOfImage: 264, endOfImage: 265 });
  assert.equal(none.vocabSize, 266);
  const some = Tokenizer.fromFile(writeJson('some.json', handMade(['<|im_start|>', '<|im_end|>'])));
  assert.equal(some.numNewTokens, 2);
  assert.deepEqual({ ...some.special }, { bos: 262, eos: 263, startOfImage: 264, endOfImage: 265 });
  assert.deepEqual(await some.encode('<|vision_start|>hello<|vision_end|>'), [264, 259, 265]);
  // In the BPE vocabulary as a plain token but not an added token: registered under its own id,
  // so it is matched whole, and nothing new is counted.
  const plain = handMade(['<|im_start|>', '<|im_end|>', '<|vision_start|>']);
  const model = plain.model as { vocab: Record<string, number> };
  model.vocab = { ...model.vocab, '<|vision_end|>': 100000 };
  const inVocab = Tokenizer.fromFile(writeJson('in-vocab.json', plain));
  assert.equal(inVocab.numNewTokens, 0);
  assert.equal(inVocab.endOfImage, 100000);
  assert.deepEqual(await inVocab.encode('hello<|vision_end|>'), [259, 100000]);
  // Saved beside a model, the appended tokens stay; the library's own writer reloads to the same ids.
  const saved = join(dir, 'saved', 'tokenizer.json');
  none.save(saved);
  const again = Tokenizer.fromFolder(join(dir, 'saved'));
  assert.equal(again.numNewTokens, 0);
  assert.deepEqual({ ...again.special }, { ...none.special });
  assert.deepEqual(await again.encode('<|im_start|>hello world<|im_end|>'), [262, 259, 260, 261, 75, 67, 263]);
});

test('malformed tokenizer.json files give errors naming the file', () => {
  const cases: [string, string, RegExp][] = [
    ['bad-json.json', '{"model": ', /not valid JSON/],
    ['array.json', '[1, 2]', /must hold a JSON object/],
    ['no-model.json', JSON.stringify({ ...handMade(), model: undefined }), /model: missing/],
    ['no-merges.json', JSON.stringify({ ...handMade(), model: { ...(handMade().model as object), merges: 'h e' } }), /model\.merges/],
    ['bad-id.json', JSON.stringify({ ...handMade(), model: { ...(handMade().model as object), vocab: { a: -1 } } }), /model\.vocab/],
    ['bad-added.json', JSON.stringify({ ...handMade(), added_tokens: [{ id: 5 }] }), /added_tokens\[0\].*content/],
    // Passes the layout checks; the library itself rejects the merge of tokens not in the vocab.
    ['bad-merge.json', JSON.stringify({ ...handMade(), model: { ...(handMade().model as object), merges: ['q z'], vocab: { q: 0 } } }), /tokenizers library/],
  ];
  for (const [name, body, why] of cases) {
    const p = writeJson(name, body);
    assert.throws(() => Tokenizer.fromFile(p), (e: unknown) => {
      assert.ok(e instanceof DataError, `${name}: ${String(e)}`);
      assert.ok(e.message.startsWith(p), `${name}: message does not start with the file: ${e.message}`);
      assert.match(e.message, why);
      return true;
    });
  }
  const missing = join(dir, 'nope', 'tokenizer.json');
  assert.throws(() => Tokenizer.fromFile(missing), (e: unknown) => e instanceof DataError && e.message.startsWith(missing) && /not found/.test(e.message));
  assert.throws(() => Tokenizer.fromFolder(join(dir, 'nope')), /nope\/tokenizer\.json: tokenizer file not found/);
  assert.throws(() => tok.decode([99999]), /hand\.json: token id 99999 is not in the vocabulary/);
});

test('BPE training: most frequent pair first, ties to the smaller ids, specials after the vocabulary', async () => {
  // "ab ab ab cd" -> words ab, Ġab x2, Ġcd. Counts: (a,b) 3, (Ġ,a) 2, (Ġ,c) 1, (c,d) 1.
  // Merge 1: a b. Then (Ġ,ab) 2 -> merge 2: Ġ ab. Vocabulary 256 + 2 + 4 = 262.
  const t = trainTinyTokenizer(['ab ab ab cd'], { vocabSize: 262 });
  const json = JSON.parse(t.json) as { model: { merges: string[]; vocab: Record<string, number> }; added_tokens: { id: number; content: string; special: boolean }[] };
  assert.deepEqual(json.model.merges, ['a b', 'Ġ ab']);
  assert.equal(json.model.vocab['ab'], 256);
  assert.equal(json.model.vocab['Ġab'], 257);
  assert.equal(json.model.vocab['!'], 0);
  assert.equal(json.model.vocab['Ġ'], 220);
  assert.deepEqual(json.added_tokens.map((a) => [a.id, a.content, a.special]), FOUR.map((c, i) => [258 + i, c, true]));
  // Ties (all count 1): (a,b) = (64,65) < (c,d) = (66,67) < (Ġ,c) = (220,66); then Ġ cd.
  const tie = JSON.parse(trainTinyTokenizer(['ab cd'], { vocabSize: 263, minFrequency: 1 }).json) as { model: { merges: string[] } };
  assert.deepEqual(tie.model.merges, ['a b', 'c d', 'Ġ cd']);
  // With minFrequency 2 nothing but (a,b) qualifies in "ab ab cd": training stops early.
  const early = trainTinyTokenizer(['ab ab cd'], { vocabSize: 300 });
  assert.equal(early.numMerges, 1);
  assert.equal(early.vocabSize, 261);
  const loaded = early.load();
  assert.deepEqual(await loaded.encode('ab cd'), [256, 220, 66, 67]);
  assert.deepEqual({ ...loaded.special }, { bos: 257, eos: 258, startOfImage: 259, endOfImage: 260 });
  assert.throws(() => trainTinyTokenizer(['x'], { vocabSize: 100 }), /vocabSize must be an integer >= 260/);
  // Special tokens in training text are kept whole, not learned from.
  const sp = trainTinyTokenizer(['<|im_start|>hi<|im_end|>'.repeat(3)], { vocabSize: 300 });
  assert.ok(!(JSON.parse(sp.json) as { model: { merges: string[] } }).model.merges.some((m) => m.includes('|')));
});

test('training on the sample character is deterministic and round-trips its text', async () => {
  const a = trainSampleTokenizer();
  const b = trainSampleTokenizer();
  const pa = join(dir, 'a', 'tokenizer.json');
  const pb = join(dir, 'b', 'tokenizer.json');
  a.save(pa);
  b.save(pb);
  assert.ok(readFileSync(pa).equals(readFileSync(pb)), 'two trainings gave different tokenizer.json bytes');
  assert.equal(a.vocabSize, TINY_VOCAB_SIZE);
  assert.equal(a.numMerges, TINY_VOCAB_SIZE - 256 - 4);

  const t = Tokenizer.fromFile(pa);
  assert.equal(t.vocabSize, TINY_VOCAB_SIZE);
  assert.equal(t.numNewTokens, 0);
  assert.deepEqual({ ...t.special }, { bos: 1020, eos: 1021, startOfImage: 1022, endOfImage: 1023 });
  const { character } = loadSampleCharacter();
  const texts = [...characterTexts(character), ...characterSampleTexts(character)];
  assert.ok(texts.length > 100);
  let bytes = 0;
  let tokens = 0;
  for (const text of texts) {
    const ids = await t.encode(text);
    assert.equal(t.decode(ids), text.normalize('NFC'));
    assert.ok(ids.every((id) => id < t.vocabSize && !t.isSpecial(id)));
    bytes += Buffer.byteLength(text);
    tokens += ids.length;
  }
  // The merges are used: well under one token per byte on the text it was trained on.
  assert.ok(bytes / tokens > 3, `only ${(bytes / tokens).toFixed(2)} bytes per token`);
  // The file is in the layout the hand-made one uses (same sections, same pre-tokenizer).
  const j = JSON.parse(readFileSync(pa, 'utf8')) as Record<string, unknown>;
  const h = handMade();
  assert.deepEqual(Object.keys(j), Object.keys(h));
  for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) assert.deepEqual(j[k], h[k]);
  // A wrapped segment (docs/method.md 1.5) encodes with the special ids at both ends.
  const seg = await t.encode(`<|im_start|>${character.opening}<|im_end|>`);
  assert.equal(seg[0], t.bos);
  assert.equal(seg.at(-1), t.eos);
  assert.deepEqual(seg.slice(1, -1), await t.encode(character.opening));
});
