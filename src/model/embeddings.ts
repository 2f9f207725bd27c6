// The latent path's small pieces (docs/method.md 1.3-1.4): the sinusoidal timestep embedder (raw t,
// cos first), the fixed 2-D sin-cos position tables, patchify / unpatchify with the channel
// fastest, and flattened 2-D position ids.
import { ops, scope, tensor, type Tensor } from '../torch/index.js';
import { Linear, Module, Sequential, SiLU } from '../nn/index.js';

/**
 * DiT-style sinusoid of raw t in [0, 1] (no x1000): freq_k = exp(-ln(10000) k / (dim/2)),
 * features [cos(t freq), sin(t freq)], cos first (docs/method.md 1.4). t: [N] -> [N, dim].
 */
export function timestepFeatures(t: Tensor, dim = 256, maxPeriod = 10000): Tensor {
  return scope(() => {
    const half = Math.floor(dim / 2);
    const freqs = ops.arange(0, half, 1, 'float32', undefined, t.device).mul(-Math.log(maxPeriod) / half).exp();
    const args = t.to('float32').unsqueeze(1).mul(freqs.unsqueeze(0));
    return ops.cat([args.cos(), args.sin()], -1);
  });
}

/** Timestep embedder: Linear(256 -> D), SiLU, Linear(D -> D) on timestepFeatures (keys time_embedder.mlp.0/2). */
export class TimestepEmbedder extends Module {
  readonly mlp: Sequential;
  constructor(readonly hiddenSize: number, readonly frequencyDim = 256) {
    super();
    this.mlp = this.registerModule('mlp', new Sequential(new Linear(frequencyDim, hiddenSize), new SiLU(), new Linear(hiddenSize, hiddenSize)));
  }
  forward(t: Tensor): Tensor {
    return scope(() => {
      const f = timestepFeatures(t, this.frequencyDim);
      const w = (this.mlp.at(0) as Linear).weight;
      return this.mlp.forward(f.dtype === w.dtype ? f : f.to(w.dtype));
    });
  }
}

/**
 * The fixed 2-D sin-cos table of a G x G grid (MAE's get_2d_sincos_pos_embed), as a flat
 * Float32Array of G*G rows of `dim` values. Row r*G + c holds
 * [sin(c w), cos(c w), sin(r w), cos(r w)] with w_k = 10000^(-k/(dim/4)), k < dim/4: the
 * column coordinate fills the first half (docs/method.md 1.4). Computed in float64, as numpy does.
 */
export function sincos2dTable(dim: number, gridSize: number): Float32Array {
  if (dim % 4 !== 0) throw new Error(`sincos2dTable: dim ${dim} must be a multiple of 4`);
  const q = dim / 4;
  const omega = Array.from({ length: q }, (_, k) => 1 / 10000 ** (k / q));
  const out = new Float32Array(gridSize * gridSize * dim);
  for (let r = 0; r < gridSize; r++) {
    for (let c = 0; c < gridSize; c++) {
      const base = (r * gridSize + c) * dim;
      for (let k = 0; k < q; k++) {
        out[base + k] = Math.sin(c * omega[k]!);
        out[base + q + k] = Math.cos(c * omega[k]!);
        out[base + 2 * q + k] = Math.sin(r * omega[k]!);
        out[base + 3 * q + k] = Math.cos(r * omega[k]!);
      }
    }
  }
  return out;
}

/**
 * A fixed 2-D sin-cos table as a buffer named `pos_embed` ([G*G, dim], keys
 * `latent_pos_embed.pos_embed` and `vit_pos_embed.pos_embed`). It is persistent so saved
 * checkpoints have the published layout; loaders may drop it and keep the recomputed one.
 */
export class PositionEmbedding extends Module {
  readonly pos_embed: Tensor;
  constructor(readonly gridSize: number, readonly dim: number) {
    super();
    this.pos_embed = this.registerBuffer('pos_embed', tensor(sincos2dTable(dim, gridSize), { shape: [gridSize * gridSize, dim] }));
  }
  /** Rows at flattened ids: [N] -> [N, dim]. */
  forward(ids: Tensor): Tensor {
    return this.pos_embed.index_select(0, ids);
  }
  /** Rewrites the table from the closed form (after a load that may have changed it). */
  reset(): void {
    scope(() => {
      const fresh = tensor(sincos2dTable(this.dim, this.gridSize), { shape: [this.gridSize * this.gridSize, this.dim] });
      this.pos_embed.copy_(fresh);
    });
  }
}

/**
 * Cuts [C, H, W] into p x p patches: rows raster over the (H/p, W/p) grid, features in
 * (p, q, c) order with the channel fastest (docs/method.md 1.3-1.4). -> [H/p * W/p, p*p*C].
 */
export function patchify(image: Tensor, p: number): Tensor {
  const [c, H, W] = image.shape as [number, number, number];
  if (H % p !== 0 || W % p !== 0) throw new Error(`patchify: image ${H}x${W} is not a multiple of patch ${p}`);
  const h = H / p;
  const w = W / p;
  return scope(() => image.reshape([c, h, p, w, p]).permute([1, 3, 2, 4, 0]).reshape([h * w, p * p * c]));
}

/** The exact inverse of patchify: [h*w, p*p*C] -> [C, h*p, w*p]. */
export function unpatchify(tokens: Tensor, h: number, w: number, p: number, channels: number): Tensor {
  return scope(() => tokens.reshape([h, w, p, p, channels]).permute([4, 0, 2, 1, 3]).reshape([channels, h * p, w * p]));
}

/** Flattened 2-D ids of an h x w token grid inside a side-`maxSide` table: row * maxSide + col. */
export function flattenedPositionIds(h: number, w: number, maxSide: number): number[] {
  if (h > maxSide || w > maxSide) throw new Error(`image grid ${h}x${w} exceeds the position table side ${maxSide}`);
  const ids: number[] = [];
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) ids.push(r * maxSide + c);
  return ids;
}
