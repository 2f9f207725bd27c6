// Regenerates the sample character under samples/ (images and text), byte for byte.
// Usage: npx tsc -p tsconfig.json && node dist/scripts/data-make-sample.js [out-dir]
import { writeSampleCharacter } from '../src/data/sample-character/write.js';
import { SAMPLE_ROOT } from '../src/data/sample-character/paths.js';

const out = process.argv[2] ?? SAMPLE_ROOT;
await writeSampleCharacter(out);
console.log(`sample character written to ${out}`);
