// `unicharacter checklist-probe <character model dir>`: the held-out accuracy of the checklist
// answerer GRPO would train for this model (docs/reward-scorers.md "The checklist probe"), beside
// the majority answer on the same items and the shuffled-label control, without running GRPO. The
// probe sees the character's images at the model's image size, as in src/train/grpo-answerer.ts.
import { parseArgs } from 'node:util';
import { CharacterModel } from '../character/index.js';
import { probeHeldOutAccuracy, type ProbeAccuracy } from '../reward/index.js';
import { accuracyNote, captionedImages } from '../train/index.js';

export const CHECKLIST_PROBE_HELP = `  checklist-probe <character model dir> [--seed N]
                                       held-out accuracy of the checklist probe (trained:checklist-probe,
                                       GRPO's checklist answerer) on the model's character at its image
                                       size, beside the majority answer and the shuffled-label control
                                       (seeded by-item split, default seed 7; docs/reward-scorers.md)`;

export interface ChecklistProbeReport {
  character: string;
  imageSize: number;
  images: { train: number; heldOut: number };
  probe: ProbeAccuracy;
  shuffled: ProbeAccuracy;
}

/** The probe's accuracy and its shuffled-label control for a character model folder. */
export async function checklistProbeReport(modelDir: string, seed = 7): Promise<ChecklistProbeReport> {
  const cm = await CharacterModel.load(modelDir);
  try {
    const { train, heldOut } = await captionedImages(cm.character, cm.manifest.imageSize);
    return {
      character: cm.character.names.display,
      imageSize: cm.manifest.imageSize,
      images: { train: train.length, heldOut: heldOut.length },
      probe: probeHeldOutAccuracy(train, heldOut, { seed }),
      shuffled: probeHeldOutAccuracy(train, heldOut, { seed, shuffleLabels: true }),
    };
  } finally {
    cm.dispose();
  }
}

export async function checklistProbeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { seed: { type: 'string' } } });
  if (positionals.length !== 1) {
    console.error(`usage:\n${CHECKLIST_PROBE_HELP}`);
    return 2;
  }
  const seed = values.seed === undefined ? 7 : Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got '${values.seed}'`);
  const r = await checklistProbeReport(positionals[0]!, seed);
  console.log(`${r.character} at ${r.imageSize} px (${r.images.train} captioned training images, ${r.images.heldOut} held-out images)`);
  console.log(`trained:checklist-probe: ${accuracyNote(r.probe)}; seed ${r.probe.seed}, ${r.probe.fitItems} training items`);
  console.log(`shuffled-label control: ${accuracyNote(r.shuffled)}`);
  return 0;
}
