// Building a model and its VAE from two weight files, strictly (published key names), in eval
// mode, with the bytes they took; shared by a whole character folder and a shared base
// (docs/serving.md 10).
import { memory } from '../torch/index.js';
import { AutoEncoder, Bagel, loadCheckpoint, type ModelConfig } from '../model/index.js';

export interface LoadedWeights {
  model: Bagel;
  vae: AutoEncoder;
  /** torch.memory() bytes the two took. */
  bytes: number;
}

/** The model and VAE of `config` with the weights of `modelPath` and `vaePath`; on a failed
 * load both are freed before the error goes on. */
export function loadModelAndVae(modelPath: string, vaePath: string, config: ModelConfig): LoadedWeights {
  const before = memory().bytes;
  const model = new Bagel(config);
  const vae = new AutoEncoder(config.vae);
  try {
    loadCheckpoint(modelPath, model, { strict: true });
    loadCheckpoint(vaePath, vae, { strict: true });
  } catch (e) {
    model.dispose();
    vae.dispose();
    throw e;
  }
  model.eval();
  vae.eval();
  return { model, vae, bytes: memory().bytes - before };
}
