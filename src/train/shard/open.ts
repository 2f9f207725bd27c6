// The sharding of a training run from its config (`shard`, `shardGroupSize`; docs/sharding.md 1, 5).
import type { ProcessGroup } from '../../torch/index.js';
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
 * [G*floor(r/G), G*floor(r/G) + G) and the world/G ranks holding the same shard (r mod G). Both
 * meet through the run's own store under a prefix (ProcessGroup.subGroup), so their members may
 * run on any node (unicharacter launch --nnodes).
 */
export function hybridGroups(group: ProcessGroup, g: number): { shards: ProcessGroup; replicas: ProcessGroup } {
  const r = group.rank;
  const world = group.worldSize;
  const shardIndex = Math.floor(r / g);
  // every rank joins its shard group first, then its replica group: the same order everywhere
  const shards = group.subGroup(`shard-group-${shardIndex}/`, r % g, g);
  const replicas = group.subGroup(`replica-group-${r % g}/`, shardIndex, world / g);
  return { shards, replicas };
}
