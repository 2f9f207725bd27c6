"""Python PyTorch baseline for `npm run bench:engine` (run with /usr/bin/python3, Debian's
python3-torch: the same libtorch as the binding). The same ops, shapes and timing as the
TypeScript side in bench/engine.bench.ts.

Usage: engine_baseline.py '<json config>'
A line protocol, so that the bench can interleave repetitions with the TS side: each input line
"<case> <iters>" (case: add, chain, mlp) runs that case iters times and answers one line with
the seconds per iteration; "check" answers the MLP losses of the first steps as JSON.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def add_case(cfg):
    a = torch.ones(1)
    b = torch.ones(1)

    def run(n):
        for _ in range(n):
            a.add(b)  # the result is freed at once (refcount drops to zero)

    return run


def chain_case(cfg):
    n = cfg["chainNumel"]
    x = torch.randn(n, requires_grad=True)
    w = torch.randn(n)
    b = torch.randn(n)

    def run(iters):
        for _ in range(iters):
            y = ((x * w + b).tanh() * 2).sum()  # mul, add, tanh, mul, sum
            y.backward()
            x.grad = None

    return run


def make_mlp(cfg):
    """Same parameters, data and seed as the TS side (same libtorch generator, same call order)."""
    torch.manual_seed(cfg["seed"])
    d_in, d_h, d_out, batch = cfg["mlpIn"], cfg["mlpHidden"], cfg["mlpOut"], cfg["mlpBatch"]
    w1 = (torch.randn(d_h, d_in) * (1 / d_in ** 0.5)).requires_grad_()
    b1 = torch.zeros(d_h).requires_grad_()
    w2 = (torch.randn(d_out, d_h) * (1 / d_h ** 0.5)).requires_grad_()
    b2 = torch.zeros(d_out).requires_grad_()
    x = torch.randn(batch, d_in)
    target = torch.randint(0, d_out, (batch,))
    params = [w1, b1, w2, b2]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                            weight_decay=cfg["weightDecay"], foreach=False)

    def step():
        h = F.relu(F.linear(x, w1, b1))
        logits = F.linear(h, w2, b2)
        loss = F.cross_entropy(logits, target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def mlp_case(cfg):
    step = make_mlp(cfg)

    def run(n):
        for _ in range(n):
            step()

    return run


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    cases = {"add": add_case(cfg), "chain": chain_case(cfg), "mlp": mlp_case(cfg)}
    print(json.dumps({"version": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "check":
            step = make_mlp(cfg)
            print(json.dumps([step().item() for _ in range(cfg["checkSteps"])]), flush=True)
            continue
        run, iters = cases[words[0]], int(words[1])
        t0 = time.perf_counter()
        run(iters)
        print(repr((time.perf_counter() - t0) / iters), flush=True)


if __name__ == "__main__":
    main()
