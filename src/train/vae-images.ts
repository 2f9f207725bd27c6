// The VAE stage's training images (docs/fidelity.md "Image sizes below the published size"): one
// [N, 3, S, S] tensor of squares, or a list of [3, H, W] images that keep their aspect ratio (the
// sizes SFT gives the VAE). The autoencoder is convolutional, so any size that is a multiple of
// its downsampling runs; a batch is cut into groups of one size, each group one forward.
//
// Images of one size count equally whatever the grouping: a batch's loss (and the reconstruction
// error) is the mean over its images of each image's per-element mean, i.e. sum_g (n_g / n) *
// mean_g. When every image has the same size there is one group and the numbers are exactly those
// of the stacked tensor.
import { ops, scope, tensor, type Tensor } from '../torch/index.js';

export class VaeImages {
  /** Images of one size each, stacked: [n_g, 3, H_g, W_g]. */
  private readonly groups: Tensor[];
  /** For image i: its group and its row there. */
  private readonly where: { group: number; row: number }[] = [];
  private readonly owned: boolean;

  constructor(images: Tensor | readonly Tensor[]) {
    if (!Array.isArray(images)) {
      const t = images as Tensor;
      if (t.shape.length !== 4 || t.shape[1] !== 3) throw new Error(`VAE stage: images must be [N, 3, H, W] or a list of [3, H, W], got [${t.shape.join(', ')}]`);
      this.groups = [t];
      for (let i = 0; i < t.shape[0]!; i++) this.where.push({ group: 0, row: i });
      this.owned = false;
      return;
    }
    const list = images as readonly Tensor[];
    if (list.length === 0) throw new Error('VAE stage: no images to train on');
    const bySize = new Map<string, number[]>();
    list.forEach((t, i) => {
      if (t.shape.length !== 3 || t.shape[0] !== 3) throw new Error(`VAE stage: image ${i} must be [3, H, W], got [${t.shape.join(', ')}]`);
      const key = `${t.shape[1]}x${t.shape[2]}`;
      const rows = bySize.get(key) ?? [];
      this.where[i] = { group: bySize.has(key) ? [...bySize.keys()].indexOf(key) : bySize.size, row: rows.length };
      rows.push(i);
      bySize.set(key, rows);
    });
    this.groups = [...bySize.values()].map((rows) => scope(() => ops.stack(rows.map((i) => list[i]!), 0)));
    this.owned = true;
  }

  get count(): number {
    return this.where.length;
  }

  /** Whether every image has one size (one group). */
  get uniform(): boolean {
    return this.groups.length === 1;
  }

  /** Images `idx` as groups of one size, with each group's share n_g / n of the batch. */
  select(idx: readonly number[]): { x: Tensor; share: number }[] {
    if (this.uniform) return [{ x: this.groups[0]!.index_select(0, tensor([...idx], { dtype: 'int64' })), share: 1 }];
    const rows = new Map<number, number[]>();
    for (const i of idx) {
      const w = this.where[i]!;
      rows.set(w.group, [...(rows.get(w.group) ?? []), w.row]);
    }
    return [...rows].map(([g, r]) => ({ x: this.groups[g]!.index_select(0, tensor(r, { dtype: 'int64' })), share: r.length / idx.length }));
  }

  /** Every image, as groups of one size with their shares. */
  all(): { x: Tensor; share: number }[] {
    return this.groups.map((x) => ({ x, share: x.shape[0]! / this.count }));
  }

  /** The first n images, each [3, H, W]. */
  first(n: number): Tensor[] {
    return Array.from({ length: Math.min(n, this.count) }, (_, i) => {
      const w = this.where[i]!;
      return this.groups[w.group]!.select(0, w.row);
    });
  }

  dispose(): void {
    if (this.owned) this.groups.forEach((g) => g.dispose());
  }
}
