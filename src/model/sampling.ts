// Samplers as small pure functions over tensors (docs/method.md 1.8, 3.3, 6.2): the shifted timestep
// grid, the Euler ODE step and loop ("noise at t = 1": x moves against v), classifier-free
// guidance with renormalisation, and the SDE-window step with its log-probability for GRPO.
// A velocity function goes in, tensors come out, so each piece can be tested on analytic fields.
import { ops, randn, scope, type Tensor } from '../torch/index.js';

/** S_s(t) = s t / (1 + (s - 1) t). */
export function shift(t: number, s: number): number {
  return (s * t) / (1 + (s - 1) * t);
}

/** tau_j = S_s(linspace(1, 0, N)), j = 0..N-1 (N - 1 transitions). */
export function timestepGrid(numSteps: number, timestepShift: number): number[] {
  if (numSteps < 2) throw new Error(`timestepGrid: need at least 2 steps, got ${numSteps}`);
  return Array.from({ length: numSteps }, (_, j) => shift(1 - j / (numSteps - 1), timestepShift));
}

/** x + v (tau_next - tau): with tau_next < tau this subtracts v |dt| (docs/method.md 7.1). */
export function eulerStep(x: Tensor, v: Tensor, tau: number, tauNext: number): Tensor {
  return scope(() => x.add(v.mul(tauNext - tau)));
}

/** A velocity field: v(x, tau, step index). */
export type VelocityFn = (x: Tensor, tau: number, step: number) => Tensor;

/** Runs the Euler ODE over a grid from x (at grid[0]) and returns x at the last grid value. */
export function sampleOde(x: Tensor, velocity: VelocityFn, grid: number[], onStep?: (x: Tensor, step: number) => void): Tensor {
  let cur = x;
  for (let j = 0; j < grid.length - 1; j++) {
    const next = scope(() => eulerStep(cur, velocity(cur, grid[j]!, j), grid[j]!, grid[j + 1]!));
    if (cur !== x) cur.dispose();
    cur = next;
    onStep?.(cur, j);
  }
  return cur === x ? x.clone() : cur;
}

export type RenormType = 'global' | 'channel' | 'text_channel';

export interface CfgOptions {
  textScale: number;
  imgScale?: number;
  renormMin?: number;
  renormType?: RenormType;
}

/** ||a|| / (||b|| + 1e-8) clamped to [min, 1]; over everything (global) or per token (last dim). */
function renormScale(a: Tensor, b: Tensor, perToken: boolean, min: number): Tensor {
  const na = perToken ? ops.linalg_vector_norm(a, 2, [-1], true) : ops.linalg_vector_norm(a, 2);
  const nb = perToken ? ops.linalg_vector_norm(b, 2, [-1], true) : ops.linalg_vector_norm(b, 2);
  return na.div(nb.add(1e-8)).clamp(min, 1);
}

/**
 * Classifier-free guidance (docs/method.md 1.8, bagel.py _forward_flow). Active only when
 * textScale > 1: v_text = u_text + g_t (cond - u_text); then, if g_i > 1,
 * v' = u_img + g_i (v_text - u_img); renorm 'global' or 'channel' rescales v' by
 * clamp(||cond|| / (||v'|| + 1e-8), min, 1); 'text_channel' rescales v_text per token before the
 * image step. With textScale <= 1 the conditional velocity is returned as is.
 */
export function cfgCombine(cond: Tensor, uncondText: Tensor | null, uncondImg: Tensor | null, o: CfgOptions): Tensor {
  return scope(() => {
    const gi = o.imgScale ?? 1;
    const min = o.renormMin ?? 0;
    const type = o.renormType ?? 'global';
    if (!(o.textScale > 1)) return cond.clone();
    if (!uncondText) throw new Error('cfgCombine: textScale > 1 needs the text-uncond velocity');
    if (gi > 1 && !uncondImg) throw new Error('cfgCombine: imgScale > 1 needs the image-uncond velocity');
    let vText = uncondText.add(cond.sub(uncondText).mul(o.textScale));
    if (type === 'text_channel') {
      vText = vText.mul(renormScale(cond, vText, true, min));
      return gi > 1 ? uncondImg!.add(vText.sub(uncondImg!).mul(gi)) : vText;
    }
    const v = gi > 1 ? uncondImg!.add(vText.sub(uncondImg!).mul(gi)) : vText;
    return v.mul(renormScale(cond, v, type === 'channel', min));
  });
}

/** Whether CFG is on at tau: lo < tau <= hi (docs/method.md 1.8). */
export function cfgActive(tau: number, interval: [number, number]): boolean {
  return tau > interval[0] && tau <= interval[1];
}

/**
 * sigma_j = a sqrt(tau_j / (1 - tau~_j)), with tau~_j = tau_j except at tau_j = 1 where it is the
 * second grid value (docs/method.md 3.3). a = 0 gives the ODE.
 */
export function sdeSigma(grid: number[], j: number, noiseLevel: number): number {
  const tau = grid[j]!;
  const tauTilde = tau === 1 ? grid[1]! : tau;
  return noiseLevel * Math.sqrt(tau / (1 - tauTilde));
}

export interface SdeStepResult {
  /** x_{j+1} (the given sample, or a fresh draw). */
  next: Tensor;
  /** mu_j. */
  mean: Tensor;
  /** log p(x_{j+1} | x_j), constants and log sigma dropped, averaged over all elements (a scalar). */
  logProb: Tensor;
}

/**
 * One SDE-window transition in fp32 (docs/method.md 3.3, 6.2):
 * mu = x (1 + sigma^2 dt / (2 tau)) + v (1 + sigma^2 (1 - tau) / (2 tau)) dt,
 * x' = mu + sigma sqrt(-dt) eps, log p = -mean((x' - mu)^2) / (2 sigma^2 (-dt)).
 * Pass `sample` to score a stored x' (the policy-update pass) instead of drawing one.
 */
export function sdeStep(x: Tensor, v: Tensor, tau: number, tauNext: number, sigma: number, o: { sample?: Tensor; noise?: Tensor } = {}): SdeStepResult {
  return scope(() => {
    const dt = tauNext - tau;
    const xf = x.to('float32');
    const vf = v.to('float32');
    const mean = sigma === 0
      ? xf.add(vf.mul(dt))
      : xf.mul(1 + (sigma * sigma * dt) / (2 * tau)).add(vf.mul((1 + (sigma * sigma * (1 - tau)) / (2 * tau)) * dt));
    const next = o.sample ? o.sample.to('float32') : mean.add((o.noise ?? randn(mean.shape)).mul(sigma * Math.sqrt(-dt)));
    const logProb = sigma === 0
      ? ops.zeros([], 'float32')
      : next.sub(mean).pow(2).mean().div(-2 * sigma * sigma * -dt);
    return { next, mean, logProb };
  });
}
