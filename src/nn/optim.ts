// Optimizers (AdamW, SGD) and gradient clipping, written op for op as PyTorch 1.13's
// single-tensor implementations (torch/optim/adamw.py _single_tensor_adamw, sgd.py
// _single_tensor_sgd, torch/nn/utils/clip_grad.py), so a step matches PyTorch's to the bit on
// the same libtorch. Gradients are read from p.grad; parameters are updated in place.
import { isTensor, noGrad, ops, optimKernels, scope, tensor, type Tensor } from '../torch/index.js';

/** A group of parameters sharing hyperparameters; unset ones take the optimizer's defaults. */
export type ParamGroup<H> = { params: Tensor[] } & Partial<H>;
type Group<H> = { params: Tensor[] } & H;

/**
 * An optimizer's state for checkpoints: per-parameter tensors under "state.<index>.<name>"
 * (index = position over all groups, as in PyTorch) and the hyperparameters of each group.
 * The tensors are new handles owned by the current scope (use safetensors.save on them).
 */
export interface OptimizerStateDict {
  tensors: Map<string, Tensor>;
  paramGroups: Record<string, unknown>[];
}

export abstract class Optimizer<H extends { lr: number }, S extends Record<string, Tensor | number>> {
  readonly paramGroups: Group<H>[];
  /** Per-parameter state, created on the parameter's first step. */
  protected readonly state = new Map<Tensor, S>();

  constructor(params: Tensor[] | ParamGroup<H>[], defaults: H) {
    const groups: ParamGroup<H>[] = params.length === 0 || isTensor(params[0])
      ? [{ params: params as Tensor[] } as ParamGroup<H>]
      : (params as ParamGroup<H>[]);
    const seen = new Set<Tensor>();
    this.paramGroups = groups.map((g) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error(`${this.constructor.name}: a parameter appears in more than one group`);
        seen.add(p);
      }
      return { ...defaults, ...g, params: [...g.params] };
    });
  }

  /** Sets the learning rate of every group (schedules call this before each step). */
  setLr(lr: number): void {
    for (const g of this.paramGroups) g.lr = lr;
  }
  get lr(): number {
    return this.paramGroups[0]?.lr ?? 0;
  }

  /** Sets every parameter's gradient to null (zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.grad = null;
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          scope(() => {
            const grad = p.grad;
            if (grad !== null) this.update(p, grad, group);
          });
        }
      }
    });
  }

  /** Updates one parameter in place (inside noGrad and a scope); state lives in this.state. */
  protected abstract update(p: Tensor, grad: Tensor, group: Group<H>): void;

  private allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, Tensor>();
    this.allParams().forEach((p, i) => {
      const s = this.state.get(p);
      if (!s) return;
      for (const [k, v] of Object.entries(s)) {
        // step is kept as a float32 scalar tensor, as PyTorch 1.13 stores it
        tensors.set(`state.${i}.${k}`, typeof v === 'number' ? tensor(v, { dtype: 'float32' }) : (v as Tensor).detach());
      }
    });
    let index = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...hyper } = g;
      const ids = params.map(() => index++);
      return { ...hyper, params: ids };
    });
    return { tensors, paramGroups };
  }

  /**
   * Restores state saved by stateDict() for the same parameters in the same order. State
   * tensors are copied (converted to each parameter's dtype and device).
   */
  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new Error(`${this.constructor.name}.loadStateDict: ${sd.paramGroups.length} groups saved, ${this.paramGroups.length} here`);
    }
    sd.paramGroups.forEach((saved, gi) => {
      const g = this.paramGroups[gi]!;
      const ids = saved.params as number[];
      if (ids.length !== g.params.length) {
        throw new Error(`${this.constructor.name}.loadStateDict: group ${gi} has ${ids.length} parameters saved, ${g.params.length} here`);
      }
      const { params: _, ...hyper } = saved;
      Object.assign(g, hyper);
    });
    const params = this.allParams();
    const byIndex = new Map<number, Map<string, Tensor>>();
    for (const [key, t] of sd.tensors) {
      const m = /^state\.(\d+)\.(\w+)$/.exec(key);
      if (!m) throw new Error(`${this.constructor.name}.loadStateDict: unexpected key '${key}'`);
      const i = Number(m[1]);
      if (i >= params.length) throw new Error(`${this.constructor.name}.loadStateDict: key '${key}' names parameter ${i}, but there are ${params.length}`);
      if (!byIndex.has(i)) byIndex.set(i, new Map());
      byIndex.get(i)!.set(m[2]!, t);
    }
    this.disposeState();
    noGrad(() => scope(() => {
      for (const [i, entries] of byIndex) {
        const p = params[i]!;
        const s: Record<string, Tensor | number> = {};
        for (const [k, t] of entries) {
          if (k === 'step') s[k] = t.item();
          else {
            if (t.shape.join() !== p.shape.join()) {
              throw new Error(`${this.constructor.name}.loadStateDict: state.${i}.${k} has shape [${t.shape}], parameter has [${p.shape}]`);
            }
            s[k] = t.to({ dtype: p.dtype, device: p.device }).clone().keep();
          }
        }
        this.state.set(p, s as S);
      }
    }));
  }

  private disposeState(): void {
    for (const s of this.state.values()) for (const v of Object.values(s)) if (typeof v !== 'number') (v as Tensor).dispose();
    this.state.clear();
  }

  /** Frees the optimizer state (the parameters are the model's and are left alone). */
  dispose(): void {
    this.disposeState();
  }
}

export interface AdamWOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}
type AdamState = { step: number; exp_avg: Tensor; exp_avg_sq: Tensor; max_exp_avg_sq?: Tensor };

/**
 * How an AdamW step or a gradient clip is computed (the results are the same bits either way):
 *   auto     the fused native pass where it applies (contiguous float32 CPU tensors, no amsgrad,
 *            one step count per group), the multi-tensor operators elsewhere;
 *   fused    the fused pass, an error where it does not apply;
 *   foreach  the multi-tensor (_foreach_) operators always (for comparison).
 * docs/engine.md, "Fused optimizer step".
 */
export type OptimKernel = 'auto' | 'fused' | 'foreach';
export const OPTIM_KERNELS: readonly OptimKernel[] = ['auto', 'fused', 'foreach'];

function checkKernel(kernel: unknown, where: string): OptimKernel {
  if ((OPTIM_KERNELS as readonly unknown[]).includes(kernel)) return kernel as OptimKernel;
  throw new Error(`${where}: kernel must be one of ${OPTIM_KERNELS.join(', ')}, got ${JSON.stringify(kernel)}`);
}

/** A clip's coefficient: an exact float32 value as a number, or a scalar tensor (reduced-precision norms). */
type ClipScale = number | Tensor;

/** Gradients scaled by a clip coefficient, as new tensors (p.grad is left as it is). */
function scaledCopies(grads: Tensor[], scale: ClipScale): Tensor[] {
  if (scale === 1) return grads;
  return typeof scale === 'number' ? ops._foreach_mul(grads, scale) : grads.map((g) => g.mul(scale));
}

/**
 * AdamW (Loshchilov and Hutter), as torch.optim.AdamW with foreach=False:
 *   p <- p (1 - lr wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
 *   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * Defaults are PyTorch's (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2). `kernel`
 * (default 'auto') picks the implementation (OptimKernel); it is the optimizer's, not a group's.
 */
export class AdamW extends Optimizer<AdamWOptions, AdamState> {
  readonly kernel: OptimKernel;

  constructor(params: Tensor[] | ParamGroup<AdamWOptions>[], options: Partial<AdamWOptions> & { kernel?: OptimKernel } = {}) {
    const { kernel = 'auto', ...hyper } = options;
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, ...hyper });
    this.kernel = checkKernel(kernel, 'AdamW');
  }

  private stateOf(p: Tensor, group: AdamWOptions): AdamState {
    let s = this.state.get(p);
    if (s === undefined) {
      s = { step: 0, exp_avg: ops.zeros_like(p).keep(), exp_avg_sq: ops.zeros_like(p).keep() };
      if (group.amsgrad) s.max_exp_avg_sq = ops.zeros_like(p).keep();
      this.state.set(p, s);
    }
    return s;
  }

  override step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) scope(() => this.stepGroup(group, 1));
    });
  }

  /**
   * clipGradNorm(every parameter with a gradient, maxNorm, normType) and then step(), with the
   * same results, returning the norm before clipping. The gradients are scaled inside the update
   * (the fused pass multiplies each as it reads it; elsewhere scaled copies are made), so p.grad
   * keeps the unclipped values. Over all groups: the same as clipGradNorm over the optimizer's
   * parameters.
   */
  clipAndStep(maxNorm: number, normType = 2): number {
    return noGrad(() => scope(() => {
      const grads = this.paramGroups.flatMap((g) => g.params.map((p) => p.grad).filter((x): x is Tensor => x !== null));
      if (grads.length === 0) return 0;
      const { norm, scale } = clipScale(grads, maxNorm, normType, this.kernel, 'AdamW.clipAndStep');
      for (const group of this.paramGroups) scope(() => this.stepGroup(group, scale));
      return norm;
    }));
  }

  /**
   * The update of one group with its gradients multiplied by `scale`: the fused pass where it
   * applies, else the multi-tensor operators (the same operations in the same order as update(),
   * so the same results, in a handful of native calls instead of about ten per parameter).
   * Groups using amsgrad, or whose parameters have different step counts, take the per-parameter path.
   */
  private stepGroup(group: Group<AdamWOptions>, scale: ClipScale): void {
    const params: Tensor[] = [];
    const grads: Tensor[] = [];
    for (const p of group.params) {
      const g = p.grad;
      if (g !== null) {
        params.push(p);
        grads.push(g);
      }
    }
    if (params.length === 0) return;
    const states = params.map((p) => this.stateOf(p, group));
    const t0 = states[0]!.step;
    if (group.amsgrad || states.some((s) => s.step !== t0)) {
      if (this.kernel === 'fused') throw new Error(`AdamW: kernel 'fused' does not apply to a group ${group.amsgrad ? 'using amsgrad' : 'whose parameters have different step counts'} (use 'auto')`);
      const gs = scaledCopies(grads, scale);
      params.forEach((p, i) => this.update(p, gs[i]!, group));
      return;
    }
    const { lr, weightDecay, eps } = group;
    const [beta1, beta2] = group.betas;
    for (const s of states) s.step += 1;
    const step = t0 + 1;
    const m = states.map((s) => s.exp_avg);
    const v = states.map((s) => s.exp_avg_sq);
    const stepSize = lr / (1 - beta1 ** step);
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** step);
    if (this.kernel !== 'foreach' && typeof scale === 'number') {
      const constants = {
        gradScale: scale, decay: 1 - lr * weightDecay, beta1, gradWeight1: 1 - beta1, beta2, gradWeight2: 1 - beta2,
        biasCorrection2Sqrt, eps, negStepSize: -stepSize,
      };
      if (optimKernels.adamwStep(params, grads, m, v, constants)) return;
    }
    if (this.kernel === 'fused') {
      throw new Error(`AdamW: kernel 'fused' needs contiguous float32 CPU parameters, gradients and state${typeof scale === 'number' ? '' : ' and a float32 clip norm'} (got ${params[0]!.dtype} on ${params[0]!.device}; use 'auto')`);
    }
    const gs = scaledCopies(grads, scale);
    // p * 1 is p: without weight decay the pass over every parameter is skipped
    if (weightDecay !== 0) ops._foreach_mul_(params, 1 - lr * weightDecay);
    ops._foreach_mul_(m, beta1);
    ops._foreach_add_(m, gs, 1 - beta1);
    ops._foreach_mul_(v, beta2);
    ops._foreach_addcmul_(v, gs, gs, 1 - beta2);
    const denom = ops._foreach_sqrt(v);
    ops._foreach_div_(denom, biasCorrection2Sqrt);
    ops._foreach_add_(denom, eps);
    ops._foreach_addcdiv_(params, m, denom, -stepSize);
  }

  protected update(p: Tensor, grad: Tensor, group: AdamWOptions): void {
    const s = this.stateOf(p, group);
    const { lr, weightDecay, eps } = group;
    const [beta1, beta2] = group.betas;
    s.step += 1;
    p.mul_(1 - lr * weightDecay);
    s.exp_avg.mul_(beta1).add_(grad, 1 - beta1);
    s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const biasCorrection1 = 1 - beta1 ** s.step;
    const biasCorrection2 = 1 - beta2 ** s.step;
    const stepSize = lr / biasCorrection1;
    const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
    let v = s.exp_avg_sq;
    if (s.max_exp_avg_sq) {
      const m = ops.maximum(s.max_exp_avg_sq, s.exp_avg_sq);
      s.max_exp_avg_sq.copy_(m);
      v = s.max_exp_avg_sq;
    }
    const denom = v.sqrt().div(biasCorrection2Sqrt).add_(eps);
    p.addcdiv_(s.exp_avg, denom, -stepSize);
  }
}

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}
type SGDState = { momentum_buffer: Tensor };

/**
 * SGD with optional momentum and (coupled, L2) weight decay, as torch.optim.SGD:
 *   d = g + wd p;  buf <- d (first step) or mu buf + (1 - dampening) d;
 *   d = nesterov ? d + mu buf : buf;  p <- p - lr d.
 */
export class SGD extends Optimizer<SGDOptions, SGDState> {
  constructor(params: Tensor[] | ParamGroup<SGDOptions>[], options: Partial<SGDOptions> & { lr: number }) {
    const o = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...options };
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) throw new Error('SGD: Nesterov momentum requires a momentum and zero dampening');
    super(params, o);
  }

  // Without momentum SGD keeps no state; with it, the buffer is made on the first step.
  protected update(p: Tensor, grad: Tensor, group: SGDOptions): void {
    const { lr, momentum, dampening, weightDecay, nesterov } = group;
    let d = grad;
    if (weightDecay !== 0) d = d.add(p, weightDecay);
    if (momentum !== 0) {
      const s = this.state.get(p);
      let buf: Tensor;
      if (s === undefined) {
        buf = d.clone().detach().keep();
        this.state.set(p, { momentum_buffer: buf });
      } else {
        buf = s.momentum_buffer;
        buf.mul_(momentum).add_(d, 1 - dampening);
      }
      d = nesterov ? d.add(buf, momentum) : buf;
    }
    p.add_(d, -lr);
  }
}

/**
 * Scales all gradients together so their global norm is at most maxNorm, and returns the norm
 * before clipping (torch.nn.utils.clip_grad_norm_): coef = min(1, maxNorm / (norm + 1e-6)).
 * Parameters without a gradient are skipped. normType may be Infinity (max |g|). `kernel`: as
 * AdamW's (OptimKernel); the fused norm and scale apply to contiguous float32 CPU gradients
 * with normType 2.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2, kernel: OptimKernel = 'auto'): number {
  checkKernel(kernel, 'clipGradNorm');
  return noGrad(() => scope(() => {
    const grads: Tensor[] = [];
    for (const p of params) {
      const g = p.grad;
      if (g !== null) grads.push(g);
    }
    if (grads.length === 0) return 0;
    const { norm, scale } = clipScale(grads, maxNorm, normType, kernel, 'clipGradNorm');
    if (typeof scale !== 'number') {
      for (const g of grads) g.mul_(scale);
    } else if (scale < 1) {
      // one multi-tensor multiply, and none when the coefficient is 1 (g * 1 is g)
      if (kernel === 'foreach' || !optimKernels.scaleTensors(grads, scale)) {
        if (kernel === 'fused') throw new Error('clipGradNorm: kernel \'fused\' needs contiguous float32 CPU gradients (use \'auto\')');
        ops._foreach_mul_(grads, scale);
      }
    }
    return norm;
  }));
}

/**
 * The global norm of `grads` and the clip coefficient min(1, maxNorm / (norm + 1e-6)), computed
 * as clip_grad_norm_ does: a float32 coefficient as an exact number, a reduced-precision one as
 * a scalar tensor of the norm's dtype.
 */
function clipScale(grads: Tensor[], maxNorm: number, normType: number, kernel: OptimKernel, where: string): { norm: number; scale: ClipScale } {
  if (kernel !== 'foreach' && normType === 2) {
    const fused = optimKernels.gradNorm2(grads);
    if (fused !== null) return { norm: fused, scale: clipCoefficient(fused, maxNorm, true) };
  }
  if (kernel === 'fused') throw new Error(`${where}: kernel 'fused' needs contiguous float32 CPU gradients and normType 2 (use 'auto')`);
  let total: Tensor;
  if (normType === Infinity) {
    const norms = grads.map((g) => g.detach().abs().max());
    total = norms.length === 1 ? norms[0]! : ops.stack(norms).max();
  } else {
    // one multi-tensor call: the same norm kernel per gradient as ops.norm, bit for bit
    total = ops.norm(ops.stack(ops._foreach_norm(grads, normType)), normType);
  }
  if (total.dtype !== 'float32' && total.dtype !== 'float64') {
    const clamped = ops.clamp(total.add(1e-6).reciprocal().mul(maxNorm), null, 1.0);
    return { norm: total.item(), scale: clamped };
  }
  const norm = total.item();
  return { norm, scale: clipCoefficient(norm, maxNorm, total.dtype === 'float32') };
}

/**
 * min(1, maxNorm / (norm + 1e-6)) as libtorch computes it on a float32 (or float64) scalar
 * tensor: each float32 operation done in double and rounded once gives the float32 result.
 */
function clipCoefficient(norm: number, maxNorm: number, float32: boolean): number {
  const r = float32 ? Math.fround : (x: number): number => x;
  return Math.min(1, r(r(1 / r(norm + r(1e-6))) * r(maxNorm)));
}
