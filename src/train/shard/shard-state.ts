// Sharded checkpoints (docs/sharding.md 6): every rank writes its own file, shards/rank-R.safetensors,
// with its chunk of every unit's master weights and AdamW moments and its CPU generator; rank 0
// writes state.json (data position, JS generators, the precision mode, the layout). Each rank
// first writes its file atomically into a staging folder beside the checkpoint and all ranks meet
// at a barrier; rank 0 then moves the folder into the checkpoint it is writing, which
// RunDir.saveCheckpoint fsyncs and renames into place (docs/architecture.md "Training").
// A checkpoint resumes on any world size: a unit's chunks depend only on its element count and
// the world size (units.ts), so each rank cuts its new chunk out of the saved ones.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../../torch/index.js';
import type { ProcessGroup } from '../../torch/index.js';
import type { AdamW } from '../../nn/index.js';
import { writeFileAtomic, fsyncDir } from '../fs-atomic.js';
import type { JsonStateful, TrainingState } from '../checkpoint-state.js';
import type { ShardedModel } from './sharded-model.js';

export const SHARDS_DIR = 'shards';
const STATE_JSON = 'state.json';

export interface ShardStateParts {
  sharded: ShardedModel;
  optimizer: AdamW;
  /** All the run's processes (with hybrid sharding more than the shard group; null: one process). */
  group: ProcessGroup | null;
  /** The run directory (every rank's staging folder is under its checkpoints/). */
  root: string;
  /** Packs of one step over all ranks: a resume on another world size must keep it. */
  globalPacks: number;
  data?: JsonStateful;
  rngs?: Record<string, JsonStateful>;
}

/** What state.json records of a sharded run. */
export interface ShardedJson {
  version: 1;
  /** world: the chunks of a unit (the shard group's size); processes: the rank files (all ranks,
   * rank-R by global rank; with hybrid sharding ranks 0..world-1 hold chunks 0..world-1). */
  sharded: { mode: string; world: number; processes?: number; globalPacks: number; precision: string; units: { key: string; numel: number }[] };
  data?: unknown;
  rngs: Record<string, unknown>;
}

const rankFile = (r: number): string => `rank-${r}.safetensors`;
const stagingOf = (root: string, step: number): string => join(root, 'checkpoints', `step-${step}.shards.tmp-0`);

/** The TrainingState of a sharded run (runTraining calls saveShard on every rank, then save on rank 0). */
export function shardedCheckpointState(p: ShardStateParts): TrainingState & { saveShard(step: number): void } {
  const s = p.sharded;
  // every process writes its own file (its RNG is its own; with hybrid sharding its chunk is also
  // held by the other groups' rank of the same shard rank, docs/sharding.md 5)
  const me = p.group?.rank ?? 0;
  const processes = p.group?.worldSize ?? 1;
  return {
    saveShard(step: number): void {
      const dir = stagingOf(p.root, step);
      mkdirSync(dir, { recursive: true });
      torch.scope(() => {
        const tensors = new Map<string, torch.Tensor>();
        const opt = p.optimizer.stateDict();
        s.units.forEach((u, i) => {
          tensors.set(`${u.key}.param`, u.shard.detach());
          for (const k of ['exp_avg', 'exp_avg_sq', 'step']) {
            const t = opt.tensors.get(`state.${i}.${k}`);
            if (t) tensors.set(`${u.key}.${k}`, t);
          }
        });
        tensors.set('rng.cpu', torch.getRngState());
        const meta = { rank: String(s.rank), world: String(s.world), process: String(me), paramGroups: JSON.stringify(opt.paramGroups) };
        writeFileAtomic(join(dir, rankFile(me)), torch.safetensors.saveToBuffer(tensors, meta));
      });
      p.group?.barrier();
    },

    save(dir: string): void {
      const staging = stagingOf(p.root, readStep(dir));
      const files = existsSync(staging) ? readdirSync(staging).filter((f) => /^rank-\d+\.safetensors$/.test(f)) : [];
      if (files.length !== processes) throw new Error(`sharded checkpoint: ${staging} holds ${files.length} of ${processes} rank files`);
      renameSync(staging, join(dir, SHARDS_DIR));
      fsyncDir(join(p.root, 'checkpoints'));
      const json: ShardedJson = {
        version: 1,
        sharded: { mode: s.mode, world: s.world, processes, globalPacks: p.globalPacks, precision: s.precision, units: s.units.map((u) => ({ key: u.key, numel: u.numel })) },
        rngs: Object.fromEntries(Object.entries(p.rngs ?? {}).map(([k, v]) => [k, v.getState()])),
      };
      if (p.data) json.data = p.data.getState();
      writeFileSync(join(dir, STATE_JSON), JSON.stringify(json, null, 2) + '\n');
    },

    load(dir: string): void {
      const json = readShardedJson(dir);
      const saved = json.sharded;
      if (saved.precision !== s.precision) {
        throw new Error(`${dir}: this checkpoint was trained with precision '${saved.precision}' and cannot resume as '${s.precision}' (docs/precision.md)`);
      }
      if (saved.globalPacks !== p.globalPacks) {
        throw new Error(`${dir}: this run took ${saved.globalPacks} packs per step over all ranks (world ${saved.world}); ` +
          `with ${s.world} ranks set data.packsPerRank so that ranks x packsPerRank = ${saved.globalPacks} (docs/sharding.md 6)`);
      }
      const want = s.units.map((u) => `${u.key}:${u.numel}`).join(',');
      const have = saved.units.map((u) => `${u.key}:${u.numel}`).join(',');
      if (want !== have) throw new Error(`${dir}: the saved units (${have}) are not this model's (${want})`);
      const files = readRankFiles(dir, saved.world);
      try {
        loadShards(p, files, saved.world);
        loadRng(dir, me, saved.processes ?? saved.world, files[s.rank] ?? files[0]!);
      } finally {
        for (const f of files) for (const t of f.tensors.values()) t.dispose();
      }
      const rngs = json.rngs ?? {};
      for (const [k, v] of Object.entries(p.rngs ?? {})) {
        if (!(k in rngs)) throw new Error(`${dir}: no state for the generator '${k}'`);
        v.setState(rngs[k]);
      }
      if (p.data) p.data.setState(json.data);
    },
  };
}

function readStep(dir: string): number {
  const m = /step-(\d+)\.tmp-\d+$/.exec(dir) ?? /step-(\d+)$/.exec(dir);
  if (!m) throw new Error(`sharded checkpoint: cannot tell the step of ${dir}`);
  return Number(m[1]);
}

export function readShardedJson(dir: string): ShardedJson {
  const path = join(dir, STATE_JSON);
  if (!existsSync(path)) throw new Error(`checkpoint ${dir} has no ${STATE_JSON}`);
  const json = JSON.parse(readFileSync(path, 'utf8')) as Partial<ShardedJson>;
  if (!json.sharded) throw new Error(`${path}: not a sharded checkpoint (no "sharded" entry); it was written by a run with shard 'none'`);
  return json as ShardedJson;
}

export interface RankFile {
  tensors: Map<string, torch.Tensor>;
  metadata: Record<string, string>;
}

/** Every rank's file of a sharded checkpoint, in rank order. */
export function readRankFiles(dir: string, world: number): RankFile[] {
  return Array.from({ length: world }, (_, r) => {
    const path = join(dir, SHARDS_DIR, rankFile(r));
    if (!existsSync(path)) throw new Error(`sharded checkpoint ${dir}: ${SHARDS_DIR}/${rankFile(r)} is missing (saved by ${world} ranks)`);
    return torch.safetensors.load(path);
  });
}

/** A unit's whole tensor `name` ('param', 'exp_avg', ...), unpadded: the saved chunks joined. */
export function joinChunks(files: RankFile[], key: string, name: string, numel: number): torch.Tensor | null {
  const parts = files.map((f) => f.tensors.get(`${key}.${name}`));
  if (parts.every((t) => t === undefined)) return null;
  if (parts.some((t) => t === undefined)) throw new Error(`sharded checkpoint: ${key}.${name} is missing in some rank files`);
  return torch.ops.cat(parts as torch.Tensor[], 0).narrow(0, 0, numel);
}

// This process's CPU generator: its own file's when the run had this process, else its shard rank's.
function loadRng(dir: string, me: number, processes: number, fallback: RankFile): void {
  const own = me < processes && me !== Number(fallback.metadata['process'] ?? -1) ? torch.safetensors.load(join(dir, SHARDS_DIR, rankFile(me))) : fallback;
  try {
    const rng = own.tensors.get('rng.cpu');
    if (rng) torch.setRngState(rng);
  } finally {
    if (own !== fallback) for (const t of own.tensors.values()) t.dispose();
  }
}

// Each unit's new chunk cut out of the joined saved ones (zero padding past the end).
function loadShards(p: ShardStateParts, files: RankFile[], savedWorld: number): void {
  const s = p.sharded;
  const same = savedWorld === s.world;
  const tensors = new Map<string, torch.Tensor>();
  torch.noGrad(() => torch.scope(() => {
    const cut = (whole: torch.Tensor, u: (typeof s.units)[number]): torch.Tensor => {
      const start = s.rank * u.size;
      const have = Math.max(0, Math.min(u.size, u.numel - start));
      const out = torch.zeros([u.size], { dtype: whole.dtype });
      if (have > 0) out.narrow(0, 0, have).copy_(whole.narrow(0, start, have));
      return out;
    };
    s.units.forEach((u, i) => {
      const chunk = (name: string): torch.Tensor | null => {
        if (same) return files[s.rank]!.tensors.get(`${u.key}.${name}`) ?? null;
        const whole = joinChunks(files, u.key, name, u.numel);
        return whole ? cut(whole, u) : null;
      };
      const param = chunk('param');
      if (!param) throw new Error(`sharded checkpoint: no ${u.key}.param`);
      u.shard.copy_(param);
      for (const k of ['exp_avg', 'exp_avg_sq']) {
        const t = chunk(k);
        if (t) tensors.set(`state.${i}.${k}`, t);
      }
      const step = files[0]!.tensors.get(`${u.key}.step`);
      if (step) tensors.set(`state.${i}.step`, step);
    });
    const groups = JSON.parse(files[0]!.metadata['paramGroups'] ?? '[]') as Record<string, unknown>[];
    p.optimizer.loadStateDict({ tensors, paramGroups: groups });
  }));
  s.refresh();
}
