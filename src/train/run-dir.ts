// A training run as a directory (docs/architecture.md, "Training"):
//
//   config.json              everything needed to repeat the run
//   metrics.jsonl            one JSON object per step, append-only, fsync'd at checkpoints
//   checkpoints/step-N/      the state after N steps, with checkpoint.json (its manifest) last
//   checkpoints/latest       "step-N": the checkpoint a resume starts from
//   samples/                 images and text produced during training
//   loss.svg                 the loss plot (loss-plot.ts)
//
// Crash safety: a checkpoint is written into checkpoints/step-N.tmp-<pid>, fsync'd, then renamed
// to step-N; only then is `latest` replaced (temp file + rename). A crash at any moment leaves
// `latest` naming the previous complete checkpoint or the new complete one. Leftover temporary
// folders are removed the next time the run is opened.
import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { fsyncDir, fsyncTree, listFiles, writeAllSync, writeFileAtomic } from './fs-atomic.js';

/** A JSON value (config.json and metrics lines hold only these). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One line of metrics.jsonl: the step it belongs to and any other JSON fields. */
export interface MetricsRecord {
  step: number;
  [key: string]: unknown;
}

/**
 * Config keys that never change what a run computes, so they may differ on resume: how often
 * things are saved or shown, and the resume switch itself. Dotted paths; a prefix covers its
 * children. Pass `ignoreKeys` to RunDir.open to replace this list.
 */
export const DEFAULT_VOLATILE_KEYS: readonly string[] = [
  'resume', 'keepLast', 'saveEvery', 'sampleEvery', 'plotEvery', 'logEvery', 'progress', 'runDir',
  // the VAE stage's own intervals inside an SFT config (sft-config.ts VaeStageSchema)
  'vae.saveEvery', 'vae.sampleEvery',
];

export interface RunDirOptions {
  /** Continue an existing run (default false: refuse a directory that already holds one). */
  resume?: boolean;
  /** Checkpoints to keep, newest first (default 3; Infinity keeps all). */
  keepLast?: number;
  /** Config keys allowed to differ on resume (default DEFAULT_VOLATILE_KEYS). */
  ignoreKeys?: readonly string[];
  /**
   * Called at each stage of a checkpoint write ('files-written', 'renamed', 'latest-written',
   * 'pruned'); crash tests use it to stop a process at an exact moment.
   */
  onCheckpointPhase?: (phase: CheckpointPhase, step: number) => void;
}

export type CheckpointPhase = 'files-written' | 'renamed' | 'latest-written' | 'pruned';

/** A complete checkpoint on disk. */
export interface CheckpointInfo {
  step: number;
  /** Absolute path of checkpoints/step-N. */
  dir: string;
}

/** The manifest written last into each checkpoint folder. */
interface Manifest {
  format: 'unicharacter-checkpoint';
  version: 1;
  step: number;
  createdAt: string;
  files: { path: string; bytes: number }[];
}

const MANIFEST = 'checkpoint.json';
const STEP_DIR = /^step-(\d+)$/;

/** Thrown when a resumed run's config differs from the stored one in keys that matter. */
export class ConfigMismatchError extends Error {
  constructor(
    readonly runDir: string,
    readonly differences: ConfigDifference[],
  ) {
    const lines = differences.map((d) => `  ${d.key}: stored ${show(d.stored)}, given ${show(d.given)}`);
    super(
      `cannot resume ${runDir}: the config differs from the stored config.json in ` +
        `${differences.length} key${differences.length === 1 ? '' : 's'} ` +
        `(${differences.map((d) => d.key).join(', ')}):\n${lines.join('\n')}\n` +
        'Use the stored config, or start a new run directory.',
    );
    this.name = 'ConfigMismatchError';
  }
}

export interface ConfigDifference {
  /** Dotted path (array elements by index, e.g. "optimizer.betas.1"). */
  key: string;
  /** undefined where the key is absent on that side. */
  stored: Json | undefined;
  given: Json | undefined;
}

function show(v: Json | undefined): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}

function isPlainObject(v: unknown): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Every key where two JSON values differ, as dotted paths (sorted). */
export function diffConfig(stored: Json, given: Json, ignoreKeys: readonly string[] = []): ConfigDifference[] {
  const out: ConfigDifference[] = [];
  const ignored = (key: string): boolean => ignoreKeys.some((k) => key === k || key.startsWith(k + '.'));
  const walk = (a: Json | undefined, b: Json | undefined, key: string): void => {
    if (key !== '' && ignored(key)) return;
    if (isPlainObject(a) && isPlainObject(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const k of keys) walk(a[k], b[k], key ? `${key}.${k}` : k);
    } else if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((x, i) => walk(x, b[i], key ? `${key}.${i}` : String(i)));
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      out.push({ key: key || '(root)', stored: a, given: b });
    }
  };
  walk(stored, given, '');
  return out;
}

/** The step a metrics line belongs to, or null for a line that is not a metrics record. */
function lineStep(line: string): number | null | 'invalid' {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'invalid';
  }
  if (!isPlainObject(v)) return 'invalid';
  const s = (v as Record<string, unknown>)['step'];
  return typeof s === 'number' ? s : null;
}

/** Reads metrics.jsonl, skipping a torn last line (a crash mid-append). */
export function readMetrics(path: string): MetricsRecord[] {
  if (!existsSync(path)) return [];
  const out: MetricsRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (isPlainObject(v) && typeof v['step'] === 'number') out.push(v as MetricsRecord);
    } catch {
      // a torn line
    }
  }
  return out;
}

/** Reads checkpoints/latest and checks the checkpoint it names is complete; null when there is none. */
export function readLatestCheckpoint(root: string): CheckpointInfo | null {
  const ckpts = join(resolve(root), 'checkpoints');
  const pointer = join(ckpts, 'latest');
  if (!existsSync(pointer)) return null;
  const name = readFileSync(pointer, 'utf8').trim();
  const m = STEP_DIR.exec(name);
  if (!m) throw new Error(`${pointer}: expected "step-N", found ${JSON.stringify(name)}`);
  const info = { step: Number(m[1]), dir: join(ckpts, name) };
  const problem = checkCheckpoint(info.dir, info.step);
  if (problem) throw new Error(`${pointer} names ${name}, which is broken: ${problem}`);
  return info;
}

/** Why a checkpoint folder is incomplete, or null when its manifest and files agree. */
export function checkCheckpoint(dir: string, step?: number): string | null {
  const mpath = join(dir, MANIFEST);
  if (!existsSync(mpath)) return `${mpath} is missing`;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(mpath, 'utf8')) as Manifest;
  } catch (e) {
    return `${mpath} is not valid JSON (${(e as Error).message})`;
  }
  if (manifest.format !== 'unicharacter-checkpoint') return `${mpath} is not a checkpoint manifest`;
  if (step !== undefined && manifest.step !== step) return `${mpath} says step ${manifest.step}, expected ${step}`;
  for (const f of manifest.files) {
    const p = join(dir, f.path);
    if (!existsSync(p)) return `${f.path} is missing`;
    const size = statSync(p).size;
    if (size !== f.bytes) return `${f.path} has ${size} bytes, the manifest says ${f.bytes}`;
  }
  return null;
}

/** Steps of the complete-looking step-N folders under checkpoints/ (ascending). */
function stepDirs(ckpts: string): number[] {
  if (!existsSync(ckpts)) return [];
  return readdirSync(ckpts)
    .map((n) => STEP_DIR.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class RunDir {
  readonly root: string;
  readonly configPath: string;
  readonly metricsPath: string;
  readonly checkpointsDir: string;
  readonly samplesDir: string;
  readonly plotPath: string;
  readonly resume: boolean;
  readonly keepLast: number;
  private readonly lockPath: string;
  private readonly onPhase: RunDirOptions['onCheckpointPhase'];
  private metricsFd = -1;
  private closed = false;

  private constructor(root: string, options: RunDirOptions) {
    this.root = resolve(root);
    this.configPath = join(this.root, 'config.json');
    this.metricsPath = join(this.root, 'metrics.jsonl');
    this.checkpointsDir = join(this.root, 'checkpoints');
    this.samplesDir = join(this.root, 'samples');
    this.plotPath = join(this.root, 'loss.svg');
    this.lockPath = join(this.root, 'run.lock');
    this.resume = options.resume ?? false;
    this.keepLast = options.keepLast ?? 3;
    if (!(this.keepLast >= 1)) throw new RangeError(`RunDir: keepLast must be at least 1, got ${this.keepLast}`);
    this.onPhase = options.onCheckpointPhase;
  }

  /**
   * Opens (creating if needed) a run directory for writing. A fresh run writes config.json. An
   * existing run is refused unless `resume` is set; on resume the stored config must match
   * `config` except in `ignoreKeys` (ConfigMismatchError lists the differing keys). Only one
   * live process may hold a run directory (run.lock).
   */
  static open(root: string, config: Json, options: RunDirOptions = {}): RunDir {
    const run = new RunDir(root, options);
    mkdirSync(run.root, { recursive: true });
    run.lock();
    try {
      run.init(config, options.ignoreKeys ?? DEFAULT_VOLATILE_KEYS);
    } catch (e) {
      run.unlock();
      throw e;
    }
    return run;
  }

  private lock(): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.lockPath, 'wx');
        writeAllSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = Number(readFileSync(this.lockPath, 'utf8').trim());
        if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
          const who = pid === process.pid ? 'this process (a RunDir left open)' : `process ${pid}`;
          throw new Error(`${this.root} is in use by ${who} (${this.lockPath}); stop it first, or delete the lock file if no process is training there`);
        }
        rmSync(this.lockPath, { force: true }); // left by a process that died
      }
    }
    throw new Error(`cannot lock ${this.root}`);
  }

  private unlock(): void {
    rmSync(this.lockPath, { force: true });
  }

  private init(config: Json, ignoreKeys: readonly string[]): void {
    mkdirSync(this.checkpointsDir, { recursive: true });
    mkdirSync(this.samplesDir, { recursive: true });
    this.removeLeftovers();
    const given = JSON.parse(JSON.stringify(config)) as Json;
    const hasRun = readLatestCheckpoint(this.root) !== null || (existsSync(this.metricsPath) && statSync(this.metricsPath).size > 0);
    if (!this.resume && hasRun) {
      const latest = readLatestCheckpoint(this.root);
      throw new Error(
        `${this.root} already holds a run (${latest ? `latest checkpoint step ${latest.step}` : 'metrics.jsonl is not empty'}); ` +
          'resume it (resume: true, --resume) or use a new directory',
      );
    }
    if (this.resume && existsSync(this.configPath)) {
      const stored = JSON.parse(readFileSync(this.configPath, 'utf8')) as Json;
      const diff = diffConfig(stored, given, ignoreKeys);
      if (diff.length > 0) throw new ConfigMismatchError(this.root, diff);
    }
    writeFileAtomic(this.configPath, JSON.stringify(given, null, 2) + '\n');
  }

  // Temporary checkpoint folders and trash from a process that died mid-write.
  private removeLeftovers(): void {
    for (const name of readdirSync(this.checkpointsDir)) {
      if (/\.tmp-\d+$/.test(name) || name.startsWith('.trash-') || name.startsWith('.latest.tmp-')) {
        rmSync(join(this.checkpointsDir, name), { recursive: true, force: true });
      }
    }
    for (const name of readdirSync(this.root)) {
      if (name.startsWith('.') && /\.tmp-\d+$/.test(name)) rmSync(join(this.root, name), { force: true });
    }
  }

  /** The config stored in config.json. */
  get config(): Json {
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as Json;
  }

  // ---- metrics ----

  /** Appends one line to metrics.jsonl (made durable by syncMetrics, which checkpoints call). */
  appendMetrics(record: MetricsRecord): void {
    this.checkOpen();
    if (this.metricsFd < 0) this.metricsFd = openSync(this.metricsPath, 'a');
    writeAllSync(this.metricsFd, JSON.stringify(record) + '\n');
  }

  /** fsyncs metrics.jsonl. */
  syncMetrics(): void {
    if (this.metricsFd >= 0) fsyncSync(this.metricsFd);
  }

  readMetrics(): MetricsRecord[] {
    return readMetrics(this.metricsPath);
  }

  /**
   * Makes the run directory match the state after `step` steps, before a resume continues from
   * there: metrics lines of later steps (and a torn last line) are dropped, and checkpoint
   * folders of later steps (written after the checkpoint being resumed) are removed.
   */
  discardAfter(step: number): { droppedLines: number; removedCheckpoints: number[] } {
    this.checkOpen();
    this.closeMetrics();
    let droppedLines = 0;
    if (existsSync(this.metricsPath)) {
      const kept: string[] = [];
      for (const line of readFileSync(this.metricsPath, 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        const s = lineStep(line);
        if (s === 'invalid' || (s !== null && s > step)) droppedLines++;
        else kept.push(line);
      }
      if (droppedLines > 0) writeFileAtomic(this.metricsPath, kept.map((l) => l + '\n').join(''));
    }
    const removedCheckpoints = stepDirs(this.checkpointsDir).filter((s) => s > step);
    for (const s of removedCheckpoints) this.removeCheckpointDir(s);
    return { droppedLines, removedCheckpoints };
  }

  private closeMetrics(): void {
    if (this.metricsFd >= 0) {
      fsyncSync(this.metricsFd);
      closeSync(this.metricsFd);
      this.metricsFd = -1;
    }
  }

  // ---- checkpoints ----

  /** The checkpoint `latest` names (checked complete), or null. */
  latestCheckpoint(): CheckpointInfo | null {
    return readLatestCheckpoint(this.root);
  }

  /** Steps that have a checkpoint folder (ascending). */
  checkpointSteps(): number[] {
    return stepDirs(this.checkpointsDir);
  }

  checkpointDir(step: number): string {
    return join(this.checkpointsDir, `step-${step}`);
  }

  /**
   * Writes a checkpoint: `write(dir)` fills a temporary folder; then the manifest is added, every
   * file fsync'd, the folder renamed to step-N, `latest` replaced atomically and old checkpoints
   * pruned to keepLast. metrics.jsonl is fsync'd first, so it holds every line up to `step`. If
   * `write` throws, the temporary folder is removed and `latest` is untouched.
   */
  async saveCheckpoint(step: number, write: (dir: string) => void | Promise<void>): Promise<CheckpointInfo> {
    this.checkOpen();
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`saveCheckpoint: step must be a non-negative integer, got ${step}`);
    this.syncMetrics();
    const name = `step-${step}`;
    const tmp = join(this.checkpointsDir, `${name}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    try {
      await write(tmp);
      const manifest: Manifest = {
        format: 'unicharacter-checkpoint',
        version: 1,
        step,
        createdAt: new Date().toISOString(),
        files: listFiles(tmp),
      };
      writeFileAtomic(join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
      fsyncTree(tmp);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    this.onPhase?.('files-written', step);
    const final = this.checkpointDir(step);
    // A folder of this step can exist only if `latest` does not name it (a resume discarded it,
    // or a crash came between rename and pointer update): move it aside, then replace it.
    if (existsSync(final)) this.removeCheckpointDir(step);
    renameSync(tmp, final);
    fsyncDir(this.checkpointsDir);
    this.onPhase?.('renamed', step);
    writeFileAtomic(join(this.checkpointsDir, 'latest'), `${name}\n`);
    this.onPhase?.('latest-written', step);
    this.prune(step);
    this.onPhase?.('pruned', step);
    return { step, dir: final };
  }

  // Keeps the keepLast newest checkpoints up to `latest` (never `latest` itself).
  private prune(latest: number): void {
    const steps = stepDirs(this.checkpointsDir).filter((s) => s <= latest);
    const doomed = steps.slice(0, Math.max(0, steps.length - this.keepLast)).filter((s) => s !== latest);
    for (const s of doomed) this.removeCheckpointDir(s);
  }

  // Renames first so a half-deleted folder never looks like a checkpoint.
  private removeCheckpointDir(step: number): void {
    const dir = this.checkpointDir(step);
    const trash = join(this.checkpointsDir, `.trash-step-${step}-${process.pid}-${Date.now()}`);
    renameSync(dir, trash);
    fsyncDir(this.checkpointsDir);
    rmSync(trash, { recursive: true, force: true });
  }

  // ---- samples ----

  /** A path under samples/ for something produced at `step`: samples/step-000120-<name>. */
  samplePath(step: number, name: string): string {
    if (name.includes('/') || name.includes('\\')) throw new Error(`samplePath: name must be a plain file name, got '${name}'`);
    return join(this.samplesDir, `step-${String(step).padStart(6, '0')}-${name}`);
  }

  // ---- lifetime ----

  private checkOpen(): void {
    if (this.closed) throw new Error(`RunDir ${this.root} is closed`);
  }

  /** fsyncs and closes metrics.jsonl and releases the lock. */
  close(): void {
    if (this.closed) return;
    this.closeMetrics();
    this.unlock();
    this.closed = true;
  }
}
