// Shared by the answerer tests (caption-knn, checklist probe): the sample character's reference
// images with their captions and multiple-choice items (the training side) and its held-out test
// images with their captions, prepared at one square size.
import { readFileSync } from 'node:fs';
import { loadSampleCharacter, prepareImage, type ChwImage } from '../../src/data/index.js';
import type { CaptionedImage } from '../../src/reward/index.js';

/** `withVqaAnswers`: also the image's yes/no VQA answers as extra text (what caption-kNN indexes). */
export async function sampleCaptioned(side: number, o: { withVqaAnswers?: boolean } = {}): Promise<{ train: CaptionedImage[]; heldOut: CaptionedImage[] }> {
  const { character: c } = loadSampleCharacter();
  const img = (path: string): Promise<ChwImage> => prepareImage(new Uint8Array(readFileSync(path)), { rule: 'fixed', width: side, height: side });
  const train: CaptionedImage[] = [];
  for (const r of c.referenceImages) {
    const mcq = c.vqaMcq.filter((q) => q.imageId === r.id).map((q) => ({ question: q.question, options: Object.values(q.options), answer: q.options[q.answerKey]! }));
    const extra = o.withVqaAnswers ? { extra: c.vqa.filter((q) => q.imageId === r.id).map((q) => q.answer).join(' ') } : {};
    train.push({ image: await img(r.path!), caption: r.t2iInstruction!, ...extra, mcq });
  }
  const heldOut: CaptionedImage[] = [];
  for (const r of c.tests.heldOutImages) heldOut.push({ image: await img(r.path!), caption: r.t2iInstruction! });
  return { train, heldOut };
}
