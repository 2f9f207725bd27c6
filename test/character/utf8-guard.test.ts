// The UTF-8 guard and stop strings (docs/serving.md 3, 7). The guard's automaton is checked against
// the platform's own strict UTF-8 decoder on every byte string of length 1-2 and on random longer
// ones; the masks against the tokens' bytes; stop strings against hand-worked streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SPECIAL_TOKENS, Tokenizer, byteLevelAlphabet, byteLevelBpeJson, loadSampleCharacter, trainTinyTokenizer } from '../../src/data/index.js';
import { StopHoldback, Utf8Guard, tokenBytes, utf8Step } from '../../src/character/index.js';

// Printable: no C0 control but tab, newline and carriage return; no DEL; no C1 control.
const PRINTABLE = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$/u;

/** The automaton's verdict: -1 bad, 0 complete, > 0 unfinished. */
function run(bytes: number[]): number {
  let s = 0;
  for (const b of bytes) {
    s = utf8Step(s, b);
    if (s < 0) return -1;
  }
  return s;
}

/** The independent verdict, from the platform's WHATWG decoder in streaming mode (which holds
 * back exactly the bytes that can still begin a valid character): -1 when it decodes an error
 * or a non-printable character, 1 when bytes are held back, 0 when complete. */
function expected(bytes: number[]): number {
  const d = new TextDecoder('utf-8', { ignoreBOM: true });
  const text = d.decode(Uint8Array.from(bytes), { stream: true });
  if (text.includes('\uFFFD') || !PRINTABLE.test(text)) return -1;
  return d.decode() === '' ? 0 : 1;
}

test('the automaton accepts exactly the printable UTF-8 strings and their unfinished prefixes', () => {
  for (let a = 0; a < 256; a++) {
    assert.equal(Math.sign(run([a])), Math.sign(expected([a])), `byte ${a.toString(16)}`);
    for (let b = 0; b < 256; b += 1) {
      const got = Math.sign(run([a, b]));
      if (got !== Math.sign(expected([a, b]))) assert.fail(`bytes ${a.toString(16)} ${b.toString(16)}: automaton ${got}`);
    }
  }
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
  const lead = [0x41, 0x0a, 0xc3, 0xc2, 0xe0, 0xe2, 0xed, 0xf0, 0xf3, 0xf4, 0xf5, 0x80, 0xa0, 0x9f, 0xbf, 0x01];
  for (let i = 0; i < 3000; i++) {
    const bytes = Array.from({ length: 2 + Math.floor(rand() * 5) }, () => lead[Math.floor(rand() * lead.length)]!);
    assert.equal(Math.sign(run(bytes)), Math.sign(expected(bytes)), `bytes ${bytes.map((x) => x.toString(16)).join(' ')}`);
  }
});

test('token bytes and masks: a token is allowed exactly when its bytes continue the reply validly', () => {
  const { character } = loadSampleCharacter();
  const tok = trainTinyTokenizer([character.description, 'naïve café — 字'], { vocabSize: 300 }).load();
  const bytes = tokenBytes(tok, tok.vocabSize);
  // byte-level: ids 0..255 are the 256 single bytes (GPT-2's table order)
  assert.equal(bytes.slice(0, 256).every((b) => b !== null && b.length === 1), true);
  assert.deepEqual(new Set(bytes.slice(0, 256).map((b) => b![0])).size, 256);
  // GPT-2's table: "!" is byte 0x21, "Ġ" (U+0120) the space 0x20, "Ā" (U+0100) byte 0, "ÿ" 0xff
  const byteOfSymbol = (s: string): number => bytes[tok.tokenToId(s)!]![0]!;
  assert.deepEqual(['!', '\u0120', '\u0100', '\u00ff', '\u0121'].map(byteOfSymbol), [0x21, 0x20, 0x00, 0xff, 0x7f]);
  assert.equal(bytes[tok.special.eos], null);
  const guard = new Utf8Guard(tok, tok.vocabSize + 8, tok.special.eos);
  try {
    const m0 = guard.mask(0).dataSync() as Float32Array;
    assert.equal(m0.length, tok.vocabSize + 8);
    for (let id = 0; id < tok.vocabSize; id++) {
      const b = bytes[id];
      const want = id === tok.special.eos || (b !== null && run([...b]) >= 0);
      assert.equal(m0[id] === 0, want, `token ${id} (${JSON.stringify(tok.idToToken(id))})`);
    }
    assert.equal(m0[tok.vocabSize + 3], -Infinity, 'ids past the tokenizer are never allowed');
    // After the lead byte of a 2-byte character only continuations are allowed, and never <|im_end|>.
    const c3 = bytes.findIndex((b) => b !== null && b.length === 1 && b[0] === 0xc3);
    const mid = guard.advance(0, c3);
    assert.ok(mid > 0 && !Utf8Guard.complete(mid));
    const m1 = guard.mask(mid).dataSync() as Float32Array;
    assert.equal(m1[tok.special.eos], -Infinity);
    const cont = bytes.findIndex((b) => b !== null && b.length === 1 && b[0] === 0xa9);
    assert.equal(m1[cont], 0);
    assert.ok(Utf8Guard.complete(guard.advance(mid, cont)));
    assert.ok(guard.maxTokenBytes >= 2);
  } finally {
    guard.dispose();
  }
});

test('stop strings: the reply ends before the first one; a possible start is held back while streaming', () => {
  const out: string[] = [];
  const h = new StopHoldback(['END', '\n\nUser:'], (p) => out.push(p));
  assert.equal(h.push('Hello E'), false);
  assert.deepEqual(out, ['Hello ']); // "E" might begin "END"
  assert.equal(h.push('very'), false);
  assert.deepEqual(out, ['Hello ', 'Every']);
  assert.equal(h.push(' day\n'), false);
  assert.deepEqual(out.join(''), 'Hello Every day'); // "\n" might begin "\n\nUser:"
  assert.equal(h.push('\nUs'), false);
  assert.equal(h.push('er: hi'), true);
  assert.equal(h.text, 'Hello Every day');
  assert.equal(out.join(''), 'Hello Every day');
  const plain: string[] = [];
  const none = new StopHoldback([], (p) => plain.push(p));
  none.push('a');
  none.push('b');
  none.end();
  assert.deepEqual(plain, ['a', 'b']);
  const tail: string[] = [];
  const t = new StopHoldback(['xyz'], (p) => tail.push(p));
  t.push('abcx');
  t.end();
  assert.equal(tail.join(''), 'abcx');
});

// A vocabulary without some continuation bytes (hand-built, byte-level): which tokens may come
// next, worked out by hand from the bytes. No single continuation byte is a token; "\xA9A" is.
test('dead ends and the last token: only tokens whose character some token sequence can finish', () => {
  const alphabet = byteLevelAlphabet();
  const shifted = [...Array(256).keys()].filter((b) => !alphabet.includes(String.fromCodePoint(b)));
  const symbol = (bytes: number[]): string => bytes.map((b) => (alphabet.includes(String.fromCodePoint(b)) ? String.fromCodePoint(b) : String.fromCodePoint(256 + shifted.indexOf(b)))).join('');
  const ascii = [0x0a, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i)].map((b) => [b]);
  const special: Record<string, number[]> = {
    leadC3: [0xc3], contA: [0xa9, 0x41], eAcute: [0xc3, 0xa9], leadE2: [0xe2], e282: [0xe2, 0x82], euro: [0xe2, 0x82, 0xac], leadF0: [0xf0],
  };
  const vocab = [...ascii, ...Object.values(special)].map(symbol);
  const tok = Tokenizer.fromJson(byteLevelBpeJson(vocab, [], Object.values(SPECIAL_TOKENS)));
  const id = (name: string): number => tok.tokenToId(symbol(special[name]!))!;
  const A = tok.tokenToId('A')!;
  const eos = tok.special.eos;
  const guard = new Utf8Guard(tok, tok.vocabSize, eos);
  try {
    const allowed = (state: number, last = false): Set<number> => {
      const m = guard.mask(state, { last }).dataSync() as Float32Array;
      return new Set([...m.keys()].filter((i) => m[i] === 0));
    };
    const g = allowed(Utf8Guard.start);
    // C3 can be finished ("\xA9A"); E2 alone cannot (it needs two continuation bytes, and the only
    // token starting with one ends in "A"); E2 82 can; F0 needs 90-BF and two more: never.
    for (const [name, want] of [['leadC3', true], ['contA', false], ['eAcute', true], ['leadE2', false], ['e282', true], ['euro', true], ['leadF0', false]] as const) {
      assert.equal(g.has(id(name)), want, name);
    }
    assert.ok(g.has(A) && g.has(eos));
    assert.equal(guard.advance(Utf8Guard.start, id('leadE2')), -1);
    // After C3 (or E2 82) exactly one token finishes the character.
    for (const lead of ['leadC3', 'e282']) {
      const mid = guard.advance(Utf8Guard.start, id(lead));
      assert.deepEqual([...allowed(mid)], [id('contA')], lead);
      assert.ok(Utf8Guard.complete(guard.advance(mid, id('contA'))));
    }
    // The last token of a reply must end a character: C3 and E2 82 are out, whole characters in.
    const last = allowed(Utf8Guard.start, true);
    for (const [name, want] of [['leadC3', false], ['eAcute', true], ['e282', false], ['euro', true]] as const) assert.equal(last.has(id(name)), want, `last: ${name}`);
    assert.ok(last.has(A) && last.has(eos));
    assert.deepEqual([...allowed(guard.advance(Utf8Guard.start, id('leadC3')), true)], [id('contA')]);
  } finally {
    guard.dispose();
  }
});
