// The frozen reference policy of the KL term (docs/method.md 3.6: "if beta > 0: add
// beta * mean((mu_theta - mu_ref)^2) / (2 sigma^2)"; the reference code builds a reference copy
// only then, 3.1). Only the generation expert is trained, so the reference differs from the
// policy in those tensors alone: ReferencePolicy keeps a frozen copy of them (taken when the run
// opens, i.e. the SFT weights, also on resume) and evaluates a function with them swapped in.
// The swap writes the parameters in place, so it must run before the policy forward whose graph
// is backpropagated (an in-place write would invalidate that graph's saved tensors).
// Sharded runs (docs/sharding.md 7) freeze each rank's shards instead, 1/N of the copy, and swap
// them into the shards (ShardedModel.withShards): the layers then gather the frozen weights.
import * as torch from '../torch/index.js';
import type { ShardedModel } from './shard/index.js';

export class ReferencePolicy {
  private readonly frozen: torch.Tensor[];

  /** `params`: the generation expert; with `sharded`, its shards are what is frozen and swapped. */
  constructor(readonly params: readonly torch.Tensor[], private readonly sharded: ShardedModel | null = null) {
    const source = sharded ? sharded.params : params;
    this.frozen = torch.noGrad(() => source.map((p) => p.detach().clone().keep()));
  }

  /** fn() without a graph, with the parameters at their frozen values; they are restored after. */
  run<T>(fn: () => T): T {
    const sharded = this.sharded;
    if (sharded) return torch.noGrad(() => sharded.withShards(this.frozen, fn));
    return torch.noGrad(() => {
      const saved = this.params.map((p) => p.detach().clone().keep());
      try {
        this.params.forEach((p, i) => p.copy_(this.frozen[i]!));
        return fn();
      } finally {
        this.params.forEach((p, i) => p.copy_(saved[i]!));
        for (const t of saved) t.dispose();
      }
    });
  }

  dispose(): void {
    for (const t of this.frozen) t.dispose();
  }
}
