// Who answers Character-GRPO's checklists (docs/reward-scorers.md "The checklist probe"): a given
// answerer object, else BLIP-VQA from rewards.scorers.blipVqaDir, else cfg.checklistAnswerer: the
// customized model's own understanding path ('model', the official answerer's place), one of the
// two small answerers trained here on the character's own images ('caption-knn',
// 'checklist-probe'), or 'auto' (the checklist probe when its held-out accuracy beats the majority
// answer, else 'model'). A trained answerer's held-out accuracy and majority baseline go into the
// log line, config.json and every metrics record.
import { readFileSync } from 'node:fs';
import { prepareImage, type Character, type ChwImage } from '../data/index.js';
import {
  captionKnnHeldOutAccuracy, fitCaptionKnn, fitChecklistProbe, probeHeldOutAccuracy, SelfVqaAnswerer, BLIP_VQA_ID,
  type AccuracyResult, type Answerer, type CaptionedImage,
} from '../reward/index.js';
import type { CharacterModel } from '../character/index.js';
import type { GrpoConfig } from './grpo-config.js';

export interface ChecklistAnswererChoice {
  /** The answerer to give the suite; undefined lets it decide (BLIP-VQA from its folder, or the colour heuristic). */
  answerer: Answerer | undefined;
  /** A trained answerer's held-out accuracy, else null. */
  accuracy: AccuracyResult | null;
  /** For the log line ('' when there is nothing to add). */
  note: string;
}

/** The character's images with their captions, VQA answers and MCQs (the trained answerers' data), square at `side`. */
export async function captionedImages(c: Character, side: number): Promise<{ train: CaptionedImage[]; heldOut: CaptionedImage[] }> {
  const load = async (imgs: Character['referenceImages']): Promise<{ id: string; image: ChwImage; caption: string }[]> => {
    const out: { id: string; image: ChwImage; caption: string }[] = [];
    for (const img of imgs) {
      const bytes = img.data ?? (img.path ? new Uint8Array(readFileSync(img.path)) : undefined);
      if (bytes && img.t2iInstruction) out.push({ id: img.id, caption: img.t2iInstruction, image: await prepareImage(bytes, { rule: 'fixed', width: side, height: side }) });
    }
    return out;
  };
  const train = (await load(c.referenceImages)).map((t) => ({
    ...t,
    extra: c.vqa.filter((q) => q.imageId === t.id).map((q) => q.answer).join(' '),
    mcq: c.vqaMcq.filter((q) => q.imageId === t.id).map((q) => ({ question: q.question, options: Object.values(q.options), answer: q.options[q.answerKey] })),
  }));
  return { train, heldOut: await load(c.tests.heldOutImages) };
}

/** The answerer's accuracy in words, for the log. */
export function accuracyNote(a: AccuracyResult): string {
  const p = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const k = a.byKind;
  return `held-out accuracy ${p(a.accuracy)} vs majority ${p(a.majority)} on ${a.n} items (yes/no ${p(k.yes_no.accuracy)} vs ${p(k.yes_no.majority)}, n ${k.yes_no.n}; multiple choice ${p(k.multiple_choice.accuracy)} vs ${p(k.multiple_choice.majority)}, n ${k.multiple_choice.n})`;
}

/** The model's own understanding path (selfVqa), or none (the suite's colour heuristic). */
function modelAnswerer(cfg: GrpoConfig, cm: CharacterModel, why: string): ChecklistAnswererChoice {
  if (!cfg.selfVqa) return { answerer: undefined, accuracy: null, note: why ? `; checklist VQA by the colour heuristic (selfVqa false; ${why})` : '' };
  const vitSide = cm.manifest.provenance.vitImageSize;
  const answerer = new SelfVqaAnswerer(cm.model, {
    encode: (t) => cm.encode(t),
    decode: (ids) => cm.tokenizer.decode(ids, { skipSpecialTokens: true }),
    ...(typeof vitSide === 'number' && vitSide % cm.model.config.vit.patchSize === 0 ? { imageSide: vitSide } : {}),
  });
  return { answerer, accuracy: null, note: `; checklist VQA answered by ${answerer.id} (the customized model's own understanding path, no BLIP-VQA given${why ? `; ${why}` : ''})` };
}

/** The checklist answerer for a run and what to log about it (see the file comment). */
export async function chooseChecklistAnswerer(cfg: GrpoConfig, cm: CharacterModel): Promise<ChecklistAnswererChoice> {
  const given = cfg.rewards.scorers.answerer as Answerer | undefined;
  if (given) return { answerer: given, accuracy: null, note: '' };
  const blip = cfg.rewards.scorers.blipVqaDir;
  if (blip) return { answerer: undefined, accuracy: null, note: `; checklist VQA answered by ${BLIP_VQA_ID} (BLIP-VQA from ${blip})` };
  const setting = cfg.checklistAnswerer;
  if (setting === 'model') return modelAnswerer(cfg, cm, '');
  const c = cm.character;
  const { train, heldOut } = await captionedImages(c, cm.manifest.imageSize);
  if (train.length < 2) {
    const why = `${c.names.display} has ${train.length} captioned reference images (t2iInstruction), the trained answerers need 2`;
    if (setting === 'auto') return modelAnswerer(cfg, cm, `checklistAnswerer 'auto': ${why}`);
    throw new Error(`Character-GRPO: checklistAnswerer '${setting}': ${why}; use checklistAnswerer 'model' or 'auto'`);
  }
  if (setting === 'caption-knn') {
    const answerer = fitCaptionKnn(train);
    const accuracy = await captionKnnHeldOutAccuracy(train, heldOut);
    return { answerer, accuracy, note: `; checklist VQA answered by ${answerer.id} (fitted on ${c.names.display}'s captioned images; ${accuracyNote(accuracy)})` };
  }
  const accuracy = probeHeldOutAccuracy(train, heldOut);
  const words = `${accuracyNote(accuracy)}, seed ${accuracy.seed}, ${accuracy.fitItems} training items`;
  if (setting === 'auto' && !(accuracy.accuracy > accuracy.majority)) {
    return modelAnswerer(cfg, cm, `checklistAnswerer 'auto': the checklist probe does not beat the majority answer (${words})`);
  }
  const answerer = fitChecklistProbe(train, heldOut);
  return { answerer, accuracy, note: `; checklist VQA answered by ${answerer.id} (trained on ${c.names.display}'s checklist items; ${words})` };
}
