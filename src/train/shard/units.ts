// Sharding units (docs/sharding.md 3): the trainable parameters grouped into the embedding unit,
// one unit per decoder layer and the head unit, each laid out as one flat buffer of W equal
// chunks (zero-padded to a multiple of W; rank r owns chunk r, docs/sharding.md 2). The layout
// is pure arithmetic over names and sizes, so checkpoints can be re-cut for another world size.

/** 'embedding', 'layer.N' or 'head'. */
export type UnitKey = string;

/** The unit a parameter belongs to, from its published key name. */
export function unitKeyOf(name: string): UnitKey {
  const m = /^language_model\.model\.layers\.(\d+)\./.exec(name);
  if (m) return `layer.${m[1]}`;
  if (/^language_model\.model\.norm(_moe_gen)?\./.test(name) || name.startsWith('language_model.lm_head.') || name.startsWith('llm2vae.')) return 'head';
  return 'embedding';
}

/** The decoder layer index of a unit key, or null for the embedding and head units. */
export function layerOf(key: UnitKey): number | null {
  const m = /^layer\.(\d+)$/.exec(key);
  return m ? Number(m[1]) : null;
}

/** Where each parameter sits in its unit's flat buffer, and this rank's chunk. */
export interface UnitLayout {
  key: UnitKey;
  names: string[];
  shapes: number[][];
  /** Element offset of each parameter in the flat buffer. */
  offsets: number[];
  /** Elements of the parameters (unpadded). */
  numel: number;
  /** numel rounded up to a multiple of the world size. */
  padded: number;
  /** Elements per rank (padded / world). */
  size: number;
}

const numelOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Groups named parameters into units in a fixed order (embedding, layers by index, head; the
 * model's order inside a unit). Every rank computes the same layout from the same model.
 */
export function unitLayouts(named: { name: string; shape: number[] }[], world: number): UnitLayout[] {
  if (!Number.isInteger(world) || world < 1) throw new RangeError(`unitLayouts: world size must be an integer >= 1, got ${world}`);
  const byKey = new Map<UnitKey, { name: string; shape: number[] }[]>();
  for (const p of named) {
    const k = unitKeyOf(p.name);
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k)!.push(p);
  }
  const rank = (k: UnitKey): number => (k === 'embedding' ? -1 : k === 'head' ? Number.MAX_SAFE_INTEGER : layerOf(k)!);
  return [...byKey.keys()].sort((a, b) => rank(a) - rank(b)).map((key) => {
    const ps = byKey.get(key)!;
    const offsets: number[] = [];
    let numel = 0;
    for (const p of ps) {
      offsets.push(numel);
      numel += numelOf(p.shape);
    }
    const padded = Math.ceil(numel / world) * world;
    return { key, names: ps.map((p) => p.name), shapes: ps.map((p) => p.shape), offsets, numel, padded, size: padded / world };
  });
}
