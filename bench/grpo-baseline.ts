// The TS side of bench/grpo_baseline.py (Character-GRPO's rollout and policy update in plain
// Python PyTorch): writes the model's weights (published key names, src/model/checkpoint.ts)
// with the trainable generation-expert names, and starts the Python side as a persistent worker
// (bench/peer.ts) with the same prompt and settings, so that bench:grpo alternates the two sides
// on the same work. Rollouts are seeded on both sides (torch.manualSeed: the same libtorch
// generator draws the same noise). Import it dynamically, after the thread environment is set:
// it loads libtorch.
import { join } from 'node:path';
import { latentTokenDim, saveCheckpoint } from '../src/model/index.js';
import { root } from './common.js';
import type { GrpoBenchModel, UpdateAnswer } from './grpo-step.js';
import { BASELINE_PYTHON, Peer } from './peer.js';

/** A rollout's answer from the Python side: the final latent tokens (flat) and the window's log-probs. */
export interface RolloutAnswer { ms: number; latent: number[]; logProbs: number[] }

export class GrpoBaseline {
  private constructor(private readonly peer: Peer, readonly version: string, readonly threads: number) {}

  /**
   * Writes the model's weights (before any TS update: both sides start from them) into `dir`
   * and starts the worker with `env` (the same thread settings as this process).
   */
  static async start(dir: string, m: GrpoBenchModel, threads: number, env: Record<string, string>): Promise<GrpoBaseline> {
    const weights = join(dir, 'model.safetensors');
    saveCheckpoint(weights, m.model, { metadata: { trainable: JSON.stringify(m.paramNames) } });
    if (!Number.isFinite(m.maxGradNorm)) throw new Error('GrpoBaseline: the baseline needs a finite maxGradNorm');
    const cfg = {
      threads, llm: m.mc.llm, timestepFreqDim: m.mc.timestepFreqDim, tokens: m.mc.tokens, maxLatentSize: m.mc.maxLatentSize,
      tokenDim: latentTokenDim(m.mc), grid: m.ro.grid, numSteps: m.ro.numSteps, timestepShift: m.ro.timestepShift, cfgTextScale: m.ro.cfgTextScale,
      noiseLevel: m.ro.noiseLevel, windowSize: m.ro.windowSize, prompt: m.prompt, microStepsPerUpdate: m.settings.microStepsPerUpdate,
      clipRange: m.clipRange, maxGradNorm: m.maxGradNorm, optim: m.optim,
    };
    const peer = new Peer(BASELINE_PYTHON, [join(root, 'bench', 'grpo_baseline.py'), weights, JSON.stringify(cfg)], env);
    const info = JSON.parse(await peer.next()) as { version: string; threads: number };
    return new GrpoBaseline(peer, info.version, info.threads);
  }
  /** One rollout after manual_seed(seed), window at `start`; the worker keeps its window steps. */
  async rollout(seed: number, start: number): Promise<RolloutAnswer> {
    return this.answer<RolloutAnswer>(`rollout ${seed} ${start}`);
  }
  /** One policy update over the kept window steps (the worker counts its updates like tsUpdate's `u`). */
  async update(advantages: number[]): Promise<UpdateAnswer> {
    return this.answer<UpdateAnswer>(`update ${advantages.join(' ')}`);
  }
  /** Forgets the kept rollouts and the update count. */
  async clear(): Promise<void> {
    await this.answer<object>('clear');
  }
  private async answer<T>(request: string): Promise<T> {
    const r = JSON.parse(await this.peer.ask(request)) as T & { error?: string };
    if (r.error) throw new Error(`grpo_baseline.py: ${r.error}`);
    return r;
  }
  close(): void {
    this.peer.close();
  }
}
