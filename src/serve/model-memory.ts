// What the model worker holds in memory (docs/serving.md 10): each loaded character's own bytes
// (its whole model, or its LoRA adapters) and each shared base once, measured with
// torch.memory() when they were loaded.
import { basename } from 'node:path';
import type { CharacterModel, SharedBases } from '../character/index.js';

export interface WorkerMemory {
  characters: { id: string; ownBytes: number; base: string | null }[];
  bases: { key: string; model: string; bytes: number; characters: string[] }[];
}

/** The report over the worker's loaded models (those still loading are left out). */
export async function memoryReport(loaded: Map<string, { model: Promise<CharacterModel> }>, bases: SharedBases): Promise<WorkerMemory> {
  const settled = await Promise.allSettled([...loaded].map(async ([dir, e]) => ({ dir, model: await e.model })));
  const characters: WorkerMemory['characters'] = [];
  for (const s of settled) {
    if (s.status !== 'fulfilled' || !s.value.model.loaded) continue;
    const m = s.value.model.loaded.memory;
    characters.push({ id: basename(s.value.dir), ownBytes: m.ownBytes, base: m.base?.key ?? null });
  }
  characters.sort((a, b) => a.id.localeCompare(b.id));
  const shared = bases.report().map((b) => ({ key: b.key, model: b.model, bytes: b.bytes, characters: b.users.map((u) => basename(u)) }));
  return { characters, bases: shared };
}

/** The API's view (snake_case, as the rest of the API). */
export function memoryJson(m: WorkerMemory): Record<string, unknown> {
  return {
    characters: m.characters.map((c) => ({ id: c.id, own_bytes: c.ownBytes, base: c.base })),
    bases: m.bases.map((b) => ({ key: b.key, model: b.model, bytes: b.bytes, characters: b.characters })),
    total_bytes: m.characters.reduce((n, c) => n + c.ownBytes, 0) + m.bases.reduce((n, b) => n + b.bytes, 0),
  };
}
