// Trains the tiny byte-level BPE tokenizer on the sample character (Tessel) and writes it as a
// Hugging Face tokenizer.json (Qwen2 layout, the four special tokens of docs/method.md 1.5 registered).
// Deterministic: the same texts give the same bytes.
// Usage: npx tsc -p tsconfig.json && node dist/scripts/data-train-tokenizer.js <out/tokenizer.json> [vocabSize]
import { TINY_VOCAB_SIZE, trainSampleTokenizer } from '../src/data/tokenizer.js';

const out = process.argv[2];
if (out === undefined) {
  console.error('usage: node dist/scripts/data-train-tokenizer.js <out/tokenizer.json> [vocabSize]');
  process.exit(2);
}
const vocabSize = process.argv[3] === undefined ? TINY_VOCAB_SIZE : Number(process.argv[3]);
const trained = trainSampleTokenizer({ vocabSize });
trained.save(out);
const tok = trained.load();
console.log(`tokenizer.json written to ${out}: vocab ${trained.vocabSize} (${trained.numMerges} merges), special ids ${JSON.stringify(tok.special)}`);
if (trained.vocabSize < vocabSize) console.log(`note: the texts ran out of pairs seen twice; asked for ${vocabSize}`);
