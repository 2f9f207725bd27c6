// The micro GRPO starting model (docs/grpo-settings.md 3): the sample character on the `micro`
// preset at 16 px, untrained but for the two things SFT would have given it, so that a CI-size
// Character-GRPO run has something to move. The untrained velocity head llm2vae is zero (no
// gradient would reach the generation expert): it gets random weights of std 0.2. The random
// VAE's decoder barely responds to its latent (images within about +-0.05 of grey): its output
// convolution's weights are multiplied by 10. (The same model as test/train/grpo-toy.test.ts.)
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import { MICRO } from '../model/index.js';
import { loadSampleCharacter } from '../data/index.js';
import { CharacterModel } from '../character/index.js';

/** Writes the micro GRPO starting model to `dir`/sft and returns that folder. */
export function writeMicroGrpoModel(dir: string, seed = 9): string {
  const { character } = loadSampleCharacter();
  const texts = [character.description, ...character.t2iPrompts.map((p) => p.text)];
  const cm = CharacterModel.untrained(character, { config: MICRO, imageSize: 16, vocabSize: 320, seed, texts });
  try {
    torch.noGrad(() => torch.scope(() => {
      torch.manualSeed(seed + 1);
      const w = cm.model.llm2vae!.weight;
      w.copy_(torch.randn(w.shape as number[]).mul(0.2));
      const out = cm.vae.decoder.conv_out.weight;
      out.copy_(out.mul(10));
    }));
    const path = join(dir, 'sft');
    cm.save(path);
    return path;
  } finally {
    cm.dispose();
  }
}
