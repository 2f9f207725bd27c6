// The training loop every stage shares (SFT, VAE, customization), free of any model: it calls
// trainStep(step) for steps start+1 .. totalSteps, logs one metrics line per step, shows
// progress, writes samples and the loss plot at intervals, and checkpoints through a run
// directory. Read it top to bottom: resume, step, log, save, sample.
//
// Steps count from 1: metrics line `step: k` is the k-th step, and checkpoints/step-N holds the
// state after N steps, so a run resumed from step-N calls trainStep(N + 1) next.
import * as torch from '../torch/index.js';
import { RunDir, readLatestCheckpoint, type Json, type MetricsRecord, type RunDirOptions } from './run-dir.js';
import { ProgressBar, type ProgressStream } from './progress.js';
import { writeLossPlot, type LossPlotOptions } from './loss-plot.js';
import type { TrainingState } from './checkpoint-state.js';

/** What one step reports. */
export interface StepResult {
  loss: number;
  /** Tokens processed by the step (for tokens/s). */
  tokens?: number;
  /** Other numbers to log (ce, mse, lr, grad norm, ...). */
  metrics?: Record<string, number>;
}

export interface RunTrainingOptions {
  /** A run directory opened with RunDir.open, or a path to open with `config`. */
  runDir: RunDir | string;
  /** Stored in config.json when runDir is a path (default {}). */
  config?: Json;
  /** Continue from the latest checkpoint (default: the RunDir's own setting, else false). */
  resume?: boolean;
  /** Options for RunDir.open when runDir is a path (resume is taken from above). */
  runDirOptions?: Omit<RunDirOptions, 'resume'>;
  totalSteps: number;
  trainStep: (step: number) => StepResult | Promise<StepResult>;
  state: TrainingState;
  /** Checkpoint every this many steps (and always at the end). */
  saveEvery: number;
  sampleEvery?: number;
  /**
   * Writes samples into samplesDir. It runs with the torch generator's state saved and restored
   * around it, so sampling never changes the training run's random numbers.
   */
  sample?: (step: number, samplesDir: string) => void | Promise<void>;
  /** Rewrite loss.svg every this many steps (default: at each checkpoint and at the end). */
  plotEvery?: number;
  plot?: LossPlotOptions | false;
  /** Stops like SIGINT: the current step finishes, a checkpoint is saved, the loop resolves. */
  signal?: AbortSignal;
  /**
   * A synchronous stop check polled after every step (a worker thread's shared flag: the abort
   * reaches `signal` only once the thread's event loop runs, after the step and its sample). True
   * stops as `signal` does, and the step's sample is skipped (docs/serving.md 8).
   */
  interrupt?: () => boolean;
  /** Handle SIGINT (Ctrl-C) as a stop request (default true); a second SIGINT exits at once. */
  handleSigint?: boolean;
  /** Throw when a step's loss is NaN or infinite, saving nothing (default true). */
  stopOnNonFinite?: boolean;
  /**
   * This process writes the run directory (default true). Other ranks of a data-parallel run
   * pass false: they resume from the same checkpoints but log and save nothing.
   */
  main?: boolean;
  /** Progress output (default process.stderr; null for none). */
  progress?: ProgressStream | null;
  label?: string;
  /** Milliseconds on a monotonic clock (tests inject one). */
  now?: () => number;
}

export interface TrainingResult {
  /** Steps done when the loop ended (= the last checkpoint's step unless a step threw). */
  step: number;
  interrupted: boolean;
  /** The checkpoint step this run resumed from, or null for a fresh start. */
  resumedFrom: number | null;
  lastCheckpoint: number | null;
}

/**
 * Thrown by a step that saw a stop request part-way through (a GRPO epoch between rollouts or
 * update micro-steps): the step's work is dropped and nothing more is saved, since the state is
 * half-way through a step; the run keeps the checkpoints it already wrote.
 */
export class StepInterrupted extends Error {
  override name = 'StepInterrupted';
}

/** Yields to the event loop so signal handlers and timers run between synchronous steps. */
const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export async function runTraining(o: RunTrainingOptions): Promise<TrainingResult> {
  if (!Number.isInteger(o.totalSteps) || o.totalSteps < 0) throw new RangeError(`runTraining: totalSteps must be a non-negative integer, got ${o.totalSteps}`);
  if (!Number.isInteger(o.saveEvery) || o.saveEvery < 1) throw new RangeError(`runTraining: saveEvery must be a positive integer, got ${o.saveEvery}`);
  const main = o.main ?? true;
  const root = typeof o.runDir === 'string' ? o.runDir : o.runDir.root;
  const resume = o.resume ?? (typeof o.runDir === 'string' ? false : o.runDir.resume);
  // Only the main process opens (and locks) the run directory; other ranks just read checkpoints.
  const ownsRunDir = main && typeof o.runDir === 'string';
  const run = !main ? null : typeof o.runDir === 'string'
    ? RunDir.open(o.runDir, o.config ?? {}, { ...o.runDirOptions, resume })
    : o.runDir;
  const plot = o.plot === false ? null : o.plot ?? {};
  const now = o.now ?? (() => performance.now());
  let progress: ProgressBar | null = null;
  const stop = new StopRequests(o, () => progress);
  try {
    const resumedFrom = await resumedStep(o, root, resume, run);
    let step = resumedFrom ?? 0;
    let lastCheckpoint = resumedFrom;
    const save = async (): Promise<void> => {
      await o.state.saveShard?.(step); // every rank, sharded runs only (docs/sharding.md 6)
      if (run) {
        await run.saveCheckpoint(step, (dir) => o.state.save(dir));
        if (plot) writeLossPlot(run.metricsPath, run.plotPath, plot);
      }
      lastCheckpoint = step;
    };
    progress = run && o.progress !== null
      ? new ProgressBar({ total: o.totalSteps, start: step, stream: o.progress, now, label: o.label ?? '' })
      : null;

    let dropped: number | null = null;
    while (step < o.totalSteps && !stop.requested) {
      const k = step + 1;
      const tStart = now();
      let r: StepResult;
      try {
        r = await o.trainStep(k);
      } catch (e) {
        if (!(e instanceof StepInterrupted)) throw e;
        dropped = k;
        break;
      }
      // the step alone: checkpoint and sample time stay out of tokens/s (the ETA includes them)
      const seconds = (now() - tStart) / 1000;
      if ((o.stopOnNonFinite ?? true) && !Number.isFinite(r.loss)) {
        throw new Error(`step ${k}: the loss is ${r.loss}; stopping without saving (latest checkpoint: ${lastCheckpoint ?? 'none'})`);
      }
      step = k;
      stop.poll();
      run?.appendMetrics(metricsLine(r, step, seconds));
      progress?.update(step, { loss: r.loss, tokens: r.tokens ?? 0 });
      if (step % o.saveEvery === 0 || step === o.totalSteps) await save();
      else if (run && plot && o.plotEvery && step % o.plotEvery === 0) writeLossPlot(run.metricsPath, run.plotPath, plot);
      // Samples after the checkpoint, so a failing sampler never costs training progress; a run
      // asked to stop skips them (a sample can take longer than the step, and resuming needs none).
      stop.poll(); // raised during the checkpoint
      if (run && o.sample && o.sampleEvery && step % o.sampleEvery === 0 && !stop.requested) await sampleKeepingRng(o.sample, step, run.samplesDir);
      await yieldToEventLoop();
    }

    const interrupted = step < o.totalSteps;
    if (dropped === null && lastCheckpoint !== step) await save();
    progress?.finish();
    if (dropped !== null) progress?.log(`stopped during step ${dropped}, which was dropped; latest checkpoint: ${lastCheckpoint ?? 'none'}; resume to continue`);
    else if (interrupted) progress?.log(`stopped at step ${step}; checkpoint saved; resume to continue`);
    return { step, interrupted, resumedFrom, lastCheckpoint };
  } finally {
    progress?.finish();
    stop.dispose();
    if (ownsRunDir) run?.close();
    else run?.syncMetrics();
  }
}

/**
 * Why a run stops between steps: the caller's signal, its interrupt() poll, or Ctrl-C (a second
 * Ctrl-C quits at once; checkpoints are atomic, so even that leaves none broken).
 */
class StopRequests {
  requested: boolean;
  private sigints = 0;
  private readonly onAbort = (): void => {
    this.requested = true;
  };
  private readonly onSigint = (): void => {
    this.sigints++;
    if (this.sigints > 1) process.exit(130);
    this.requested = true;
    this.progress()?.log('interrupt: finishing this step, then saving a checkpoint (Ctrl-C again to quit now)');
  };

  constructor(private readonly o: RunTrainingOptions, private readonly progress: () => ProgressBar | null) {
    this.requested = (o.signal?.aborted ?? false) || (o.interrupt?.() ?? false);
    o.signal?.addEventListener('abort', this.onAbort);
    if (o.handleSigint ?? true) process.on('SIGINT', this.onSigint);
  }

  /** Asks the caller's interrupt() again. */
  poll(): void {
    if (this.o.interrupt?.()) this.requested = true;
  }

  dispose(): void {
    this.o.signal?.removeEventListener('abort', this.onAbort);
    process.removeListener('SIGINT', this.onSigint);
  }
}

/** The latest checkpoint's step when resuming from one (its state loaded), else null. */
async function resumedStep(o: RunTrainingOptions, root: string, resume: boolean, run: RunDir | null): Promise<number | null> {
  if (!resume) return null;
  const latest = readLatestCheckpoint(root);
  if (latest) await o.state.load(latest.dir);
  // Later metrics lines and checkpoints belong to a future this run will recompute.
  run?.discardAfter(latest?.step ?? 0);
  return latest?.step ?? null;
}

/** One metrics.jsonl line: the step's own metrics, then the loop's. */
function metricsLine(r: StepResult, step: number, seconds: number): MetricsRecord {
  return {
    ...r.metrics,
    step, // after the step's own metrics: metrics.jsonl truncation relies on it
    loss: r.loss,
    ...(r.tokens !== undefined ? { tokens: r.tokens, tokensPerSecond: seconds > 0 ? r.tokens / seconds : null } : {}),
    seconds,
    time: new Date().toISOString(),
  };
}

/** A sample leaves the training RNG where it was, so sampling never changes the run. */
async function sampleKeepingRng(sample: NonNullable<RunTrainingOptions['sample']>, step: number, dir: string): Promise<void> {
  const rng = torch.getRngState();
  try {
    await sample(step, dir);
  } finally {
    torch.setRngState(rng);
    rng.dispose();
  }
}
