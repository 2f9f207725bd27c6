// The sharding of a training run from its config (`shard`, `shardGroupSize`; docs/sharding.md 1, 5).
import { ProcessGroup, readDistEnv } from '../../torch/index.js';
import type { PrecisionMode } from '../../nn/index.js';
import type { Bagel } from '../../model/index.js';
import { ShardedModel, type ShardMode } from './sharded-model.js';

export interface ShardConfig {
  shard: ShardMode;
  shardGroupSize?: number | undefined;
  precision: PrecisionMode;
  ema?: { enabled: boolean };
}

/** A ShardedModel for `shard: grad | full`, or null for 'none' (plain data parallel). */
export function openSharding(model: Bagel, c: ShardConfig, group: ProcessGroup | null): ShardedModel | null {
  if (c.shard === 'none') {
    if (c.shardGroupSize !== undefined) throw new Error(`config: shardGroupSize ${c.shardGroupSize} needs shard 'grad' or 'full' (shard is 'none')`);
    return null;
  }
  if (c.ema?.enabled) throw new Error(`config: ema.enabled is not supported with shard '${c.shard}' (the EMA would need sharding too); use shard 'none' or turn the EMA off`);
  const world = group?.worldSize ?? 1;
  const g = c.shardGroupSize ?? world;
  if (g === world) return new ShardedModel(model, { mode: c.shard, group, precision: c.precision });
  if (world % g !== 0) throw new Error(`config: shardGroupSize ${g} must divide the number of processes (${world})`);
  const { shards, replicas } = hybridGroups(group!, g);
  return new ShardedModel(model, { mode: c.shard, group: shards, replicas, precision: c.precision });
}

/**
 * Hybrid sharding's two sub-groups of rank r (docs/sharding.md 5): the G ranks of its shard group
 * [G*floor(r/G), G*floor(r/G) + G) and the world/G ranks holding the same shard (r mod G). Each
 * sub-group meets at its own store on MASTER_ADDR, at MASTER_PORT + 1 + its index (shard groups
 * first); all of them run on the machine of MASTER_ADDR's ranks only when that is one machine.
 */
export function hybridGroups(group: ProcessGroup, g: number): { shards: ProcessGroup; replicas: ProcessGroup } {
  const env = readDistEnv();
  const r = group.rank;
  const world = group.worldSize;
  // A sub-group's store is served by its first rank and reached at MASTER_ADDR: every first rank
  // (g*i for the shard groups, 0..g-1 for the replica groups) must run on node 0, which holds
  // global ranks 0..LOCAL_WORLD_SIZE-1 (launch, torchrun).
  const local = Number(process.env['LOCAL_WORLD_SIZE'] ?? world);
  if (world - g >= local || g > local) {
    throw new Error(`config: shardGroupSize ${g} on ${world} processes over several nodes (${local} per node) is not supported: ` +
      `the sub-group stores are opened on MASTER_ADDR (${env.masterAddr}), and a sub-group's first rank, ${world - g >= local ? world - g : g - 1}, runs on another node ` +
      `(docs/sharding.md 5); use shard 'grad' or 'full' over all ranks, or run on one node`);
  }
  const shardIndex = Math.floor(r / g);
  const opts = { host: env.masterAddr, backend: group.backend, timeoutMs: group.timeoutMs };
  // every rank joins its shard group first, then its replica group: the same order everywhere
  const shards = ProcessGroup.create({ ...opts, port: env.masterPort + 1 + shardIndex, rank: r % g, worldSize: g });
  const replicas = ProcessGroup.create({ ...opts, port: env.masterPort + 1 + world / g + (r % g), rank: shardIndex, worldSize: world / g });
  return { shards, replicas };
}
