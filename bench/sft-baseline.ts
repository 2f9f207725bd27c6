// The TS side of bench/sft_baseline.py (the tiny SFT step in plain Python PyTorch): writes the
// model's weights (published key names, src/model/checkpoint.ts) and every tensor of the packed
// batch the TS step uses into safetensors files, and starts the Python step as a persistent
// worker (bench/peer.ts) on them, so that bench:train alternates the two steps on the same work.
// Import it dynamically, after the thread environment is set: it loads libtorch.
import { join } from 'node:path';
import { fromBytes, safetensors, scope, tensor, type Tensor } from '../src/torch/index.js';
import { sampleAttentionBytes, saveCheckpoint, shift, type Bagel, type ModelConfig } from '../src/model/index.js';
import type { SftBatch } from '../src/train/sft-data.js';
import type { SftConfig } from '../src/train/sft-config.js';
import { root } from './common.js';
import { BASELINE_PYTHON, Peer } from './peer.js';

/** One step's answer from either side. */
export interface StepAnswer { ms: number; loss: number; ce: number; mse: number }
/** The Python profile: per-step phase ms and top-level ops of the forward and optimizer phases. */
export interface BaselineProfile {
  phases: { forward: number; backward: number; optim: number };
  ops: { name: string; ms: number; calls: number; phase: string }[];
}

const i64 = (xs: number[]): Tensor => tensor(xs, { dtype: 'int64' });

/**
 * Every tensor of one pack (src/model/packed.ts PackedBatch) under the names sft_baseline.py
 * reads, with the per-sample allowed-attention matrices, the routing indexes, the flow noise and
 * the timesteps t = S_s(sigmoid(n)) the training forward computes from the normal draws.
 */
export function saveSftBatch(path: string, b: SftBatch, timestepShift: number): void {
  scope(() => {
    const p = b.batch;
    const out = new Map<string, Tensor>([
      ['textIds', i64(p.textIds)], ['textIndexes', i64(p.textIndexes)], ['positionIds', i64(p.positionIds)],
      ['ceIndexes', i64(p.ceIndexes)], ['ceLabels', i64(p.ceLabels)],
    ]);
    const und = p.isGen.flatMap((g, i) => (g ? [] : [i]));
    const gen = p.isGen.flatMap((g, i) => (g ? [i] : []));
    if (und.length) out.set('undIndex', i64(und));
    if (gen.length) out.set('genIndex', i64(gen));
    p.splits.forEach((s, k) => {
      const L = p.sampleLens[k]!;
      out.set(`allowed.${k}`, fromBytes(sampleAttentionBytes(s.lens, s.modes), 'bool', [L, L]));
    });
    if (p.vit) {
      out.set('vitPatches', p.vit.patches.to('float32'));
      out.set('vitPositionIds', i64(p.vit.positionIds));
      out.set('vitTokenIndexes', i64(p.vit.tokenIndexes));
    }
    if (p.vae) {
      if (!b.noise) throw new Error('saveSftBatch: the pack has latent tokens but no flow noise');
      const v = p.vae;
      out.set('vaeLatents', v.latents.to('float32'));
      out.set('vaePositionIds', i64(v.positionIds));
      out.set('vaeTokenIndexes', i64(v.tokenIndexes));
      out.set('vaeTimesteps', tensor(v.timestepNormals.map((n) => shift(1 / (1 + Math.exp(-n)), timestepShift)), { dtype: 'float32' }));
      out.set('vaeMseRows', i64(v.mseRows));
      out.set('vaeMseIndexes', i64(v.mseIndexes));
      out.set('noise', b.noise);
    }
    safetensors.save(path, out, { length: String(p.length), sampleLens: JSON.stringify(p.sampleLens), vitLens: JSON.stringify(p.vit?.lens ?? []) });
  });
}

/** The Python step as a worker: `step` and `profile` answer one line each (sft_baseline.py). */
export class SftBaseline {
  private constructor(private readonly peer: Peer, readonly version: string, readonly threads: number) {}

  /**
   * Writes the model's weights (before any TS step: both sides start from them) and the pack
   * into `dir`, and starts the worker with `env` (the same thread settings as this process).
   */
  static async start(dir: string, model: Bagel, mc: ModelConfig, pack: SftBatch, config: SftConfig, threads: number, env: Record<string, string>): Promise<SftBaseline> {
    const weights = join(dir, 'model.safetensors');
    const batch = join(dir, 'batch.safetensors');
    const trainable = model.namedParameters({ trainableOnly: true }).map(([k]) => k);
    saveCheckpoint(weights, model, { metadata: { trainable: JSON.stringify(trainable) } });
    saveSftBatch(batch, pack, config.timestepShift);
    const cfg = {
      threads, llm: mc.llm, vit: mc.vit, timestepFreqDim: mc.timestepFreqDim,
      ceWeight: config.ceWeight, mseWeight: config.mseWeight, optim: config.optim,
    };
    const peer = new Peer(BASELINE_PYTHON, [join(root, 'bench', 'sft_baseline.py'), weights, batch, JSON.stringify(cfg)], env);
    const info = JSON.parse(await peer.next()) as { version: string; threads: number };
    return new SftBaseline(peer, info.version, info.threads);
  }
  async step(): Promise<StepAnswer> {
    return JSON.parse(await this.peer.ask('step')) as StepAnswer;
  }
  async profile(steps: number): Promise<BaselineProfile> {
    return JSON.parse(await this.peer.ask(`profile ${steps}`)) as BaselineProfile;
  }
  close(): void {
    this.peer.close();
  }
}
