"""Does stacking K seeds' layers into one batched product make the arithmetic itself faster on this CPU?

A seed batch replaces K single runs' ``addmm`` (batch × in) @ (in × out) by one ``baddbmm`` over (K, batch, in) @
(K, in, out) (``rlzoo.seed_stack.SeedLinear``). That removes K − 1 calls' overhead; whether the products run at more
floating-point operations per second is the CPU library's matter. This times, alternating and taking medians, for a
layer shape of a benchmark preset:

- ``singles``: K separate ``addmm`` on one thread (what K single runs compute, one after another);
- ``batch``: one ``baddbmm`` of the K stacked on one thread, and on ``--threads`` threads (the seed batch's setting).

    python benchmarks/batched_matmul.py                       # DQN's CartPole preset layer: 64 × 256 @ 256 × 256, K 16
    python benchmarks/batched_matmul.py --batch 64 --n-in 64 --n-out 64     # PPO's minibatch through a 64 × 64 layer
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def seconds(fn, repeats: int) -> float:
    """Median seconds of one ``fn()`` over ``repeats`` calls (after warm-up)."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64, help="rows per seed (minibatch size)")
    parser.add_argument("--n-in", type=int, default=256)
    parser.add_argument("--n-out", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="the seed batch's torch threads")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (median reported)")
    parser.add_argument("--repeats", type=int, default=50, help="calls timed per round")
    args = parser.parse_args()

    k, b, n_in, n_out = args.seeds, args.batch, args.n_in, args.n_out
    gen = torch.Generator().manual_seed(0)
    x, w, bias = (torch.randn(k, b, n_in, generator=gen), torch.randn(k, n_in, n_out, generator=gen),
                  torch.randn(k, 1, n_out, generator=gen))  # fmt: skip
    parts = [(x[i].clone(), w[i].clone(), bias[i, 0].clone()) for i in range(k)]

    def singles() -> None:
        for xi, wi, bi in parts:
            torch.addmm(bi, xi, wi)

    def batch() -> None:
        torch.baddbmm(bias, x, w)

    flops = 2.0 * k * b * n_in * n_out
    wide = f"batch, {args.threads} threads"
    results: dict[str, list[float]] = {"singles, 1 thread": [], "batch, 1 thread": [], wide: []}
    for _ in range(args.rounds):
        torch.set_num_threads(1)
        results["singles, 1 thread"].append(seconds(singles, args.repeats))
        results["batch, 1 thread"].append(seconds(batch, args.repeats))
        torch.set_num_threads(args.threads)
        results[wide].append(seconds(batch, args.repeats))
    print(f"K={k} seeds, ({b} × {n_in}) @ ({n_in} × {n_out}) each: {flops / 1e6:.1f} MFLOP; {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}")  # fmt: skip
    base = statistics.median(results["singles, 1 thread"])
    for name, times in results.items():
        t = statistics.median(times)
        print(f"  {name:<20} {t * 1e6:9.1f} µs  {flops / t / 1e9:6.1f} GFLOP/s  singles / this {base / t:5.2f}×")


if __name__ == "__main__":
    main()
