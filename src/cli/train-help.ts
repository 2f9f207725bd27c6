// Help text of the training commands (kept apart so `unicharacter help` loads no engine).
export const TRAIN_HELP = `  train vae  --config <file> --run <dir>          the autoencoder stage alone (tiny configs)
  train sft  --config <file> --run <dir> [--resume]
                                       Unified-SFT (runs the VAE stage first when the config names no VAE)
  train base --config <file> --run <dir> [--resume]
                                       SFT over several characters (config data.characters)
  train grpo --from <dir> --run <dir> [--config <file>] [--epochs N] [--resume]
                                       Character-GRPO from a character model folder (an SFT run's
                                       character/ folder, or the SFT run itself)
  customize <character> --base <run> --run <dir> [--mode full|lora] [--steps N] [--resume]
                                       the few-shot step on a base run; <character> is 'sample' or
                                       a RoleScape-20 character folder
  Configs are YAML or JSON; every field is optional (defaults: configs/sft-tiny.yaml).
  Under \`unicharacter launch --nproc N\` the run is data parallel (gloo on CPU).`;

