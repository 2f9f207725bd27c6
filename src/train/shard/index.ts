// Sharded data parallel (docs/sharding.md): units of flat buffers, grad and full sharding, hybrid
// groups, sharded checkpoints and their consolidation.
export { ShardedModel, SHARD_MODES, type ShardMode, type ShardOptions, type ShardUnit } from './sharded-model.js';
export { unitKeyOf, unitLayouts, layerOf, type UnitLayout, type UnitKey } from './units.js';
export { shardedCheckpointState, readShardedJson, readRankFiles, joinChunks, SHARDS_DIR, type ShardedJson } from './shard-state.js';
export { openSharding, hybridGroups, type ShardConfig } from './open.js';
export { ExactAllReduce } from './exact-all-reduce.js';
export { sizeBoundedBuckets } from './buckets.js';
export { reduceScatterInPieces, sliceOfParts, REDUCE_PIECE_ELEMENTS, type FlatParts } from './chunked-reduce.js';
