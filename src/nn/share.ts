// Modules that share another module's tensors: every parameter and buffer of the copy is a
// handle on the source's storage (set_data, as `p.data = source.data`), so many module trees
// (one per LoRA character, docs/serving.md 10) hold one copy of the weights between them. Each
// copy may carry its own adapters; disposing a copy frees only its handles.
import { noGrad, ops, type Tensor } from '../torch/index.js';
import type { Module } from './module.js';
import { withoutInit } from './init.js';

function tensorsOf(m: Module): [string, Tensor][] {
  return [...m.namedParameters(), ...m.namedBuffers()];
}

/** Points every parameter and buffer of `target` at the same-named tensor of `source` (same structure required). */
export function shareTensors(target: Module, source: Module): void {
  const own = tensorsOf(target);
  const theirs = new Map(tensorsOf(source));
  const problems: string[] = [];
  for (const [name, t] of own) {
    const s = theirs.get(name);
    if (!s) problems.push(`${name} is missing from the source`);
    else if (s.shape.join() !== t.shape.join()) problems.push(`${name}: [${t.shape.join(', ')}] here, [${s.shape.join(', ')}] in the source`);
  }
  if (own.length !== theirs.size) problems.push(`${own.length} tensors here, ${theirs.size} in the source`);
  if (problems.length) throw new Error(`shareTensors: the modules differ: ${problems.slice(0, 5).join('; ')}`);
  noGrad(() => {
    for (const [name, t] of own) ops.set_data(t, theirs.get(name)!);
  });
}

/**
 * A module built by `build` (without running its initializers) whose tensors are those of
 * `source`: a second tree over the same memory.
 */
export function sharingTensors<M extends Module>(build: () => M, source: M): M {
  const m = withoutInit(build);
  try {
    shareTensors(m, source);
  } catch (e) {
    m.dispose();
    throw e;
  }
  return m;
}
