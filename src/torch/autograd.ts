// Autograd entry points beyond Tensor.backward(): grad-mode guards and autograd.grad.
import { native } from './native.js';
import { Tensor } from './tensor.js';

/** Runs fn with gradient recording off (like torch.no_grad()). fn must be synchronous. */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with gradient recording on, e.g. inside noGrad. fn must be synchronous. */
export function enableGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export interface GradOptions {
  gradOutputs?: (Tensor | null)[];
  retainGraph?: boolean;
  createGraph?: boolean;
  allowUnused?: boolean;
}

/** Gradients of outputs with respect to inputs (like torch.autograd.grad); null for unused inputs when allowUnused. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], o: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const ids = native.autogradGrad(
    outs.map((t) => t.id),
    ins.map((t) => t.id),
    o.gradOutputs ? o.gradOutputs.map((t) => (t ? t.id : null)) : null,
    o.retainGraph,
    o.createGraph ?? false,
    o.allowUnused ?? false,
  );
  return ids.map((id) => (id === null ? null : new Tensor(id)));
}
