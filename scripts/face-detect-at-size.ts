// Can the face evaluator find a face at the model's image size at all? BlazeFace (the detector of
// `human-models:faceres`, src/reward/face-reward.ts) on a character's own images, resized as the
// model sees them (square, `side` px) and at their stored size, reporting the detection rate of
// each: the evidence behind "no face in the generated images" in docs/rolescape-run.md.
// Run: `npx tsc -p tsconfig.json && node dist/scripts/face-detect-at-size.js <character folder> [side ...]`
// (sides default 0, 128 and 64; 0 is the ViT input size, aspect kept, sides 378-980 px).
// A control at each fixed side: as many images of uniform random noise, where a detection would
// mean the detector fires on anything.
import sharp from 'sharp';
import { imageBytes, prepareImage, readRoleScapeCharacter } from '../src/data/index.js';
import { FaceIdentityScorer } from '../src/reward/index.js';

/** `count` PNGs of seeded uniform RGB noise, side x side. */
async function noiseImages(count: number, side: number): Promise<Uint8Array[]> {
  let seed = 12345;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
  return Promise.all(Array.from({ length: count }, async () => {
    const raw = Buffer.from(Array.from({ length: side * side * 3 }, next));
    return new Uint8Array(await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer());
  }));
}

async function main(): Promise<void> {
  const [folder, ...rest] = process.argv.slice(2);
  if (!folder) throw new Error('usage: node dist/scripts/face-detect-at-size.js <character folder> [side ...]');
  const sides = rest.length ? rest.map(Number) : [0, 128, 64];
  if (sides.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`sides must be integers >= 0, got ${rest.join(' ')}`);
  const c = readRoleScapeCharacter(folder, { split: 'train' }).loaded.character;
  const bytes = c.referenceImages.map(imageBytes);
  const face = await FaceIdentityScorer.load();
  try {
    for (const side of sides) {
      const images = await Promise.all(bytes.map((b) => prepareImage(b, side === 0 ? { rule: 'vit' } : { rule: 'fixed', width: side, height: side })));
      const found = (await face.referenceDescriptors(images)).length;
      console.log(`${c.names.display}: ${side === 0 ? 'ViT input size (aspect kept, sides 378-980 px)' : `${side}x${side}`}: a face in ${found} of ${images.length} images`);
      if (side === 0) continue;
      const noise = await noiseImages(images.length, side);
      console.log(`control, uniform noise ${side}x${side}: a face in ${(await face.referenceDescriptors(noise)).length} of ${noise.length} images`);
    }
  } finally {
    face.dispose();
  }
}

await main();
