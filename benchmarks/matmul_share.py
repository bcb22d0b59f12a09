"""What share of an off-policy env step is matrix products: DDPG / TD3 at 400×300, batch 256, one update per step.

An env step here is everything ``learn`` does per step once training runs: act, env.step, store, sample a
minibatch, one critic update and (every ``policy_delay``) one actor update with the Polyak target updates.
The step time is measured without instrumentation (median of ``--blocks`` blocks of ``--steps`` steps).
torch.profiler then records every matrix product (aten::mm / addmm / bmm) of the same number of steps with
its shapes and FLOPs; each recorded product is re-run alone with its shapes (median of repeats) and the
share is their sum per step over the uninstrumented step time — the products' own cost, free of the
profiler's overhead (which inflates everything it records, products included).

    python benchmarks/matmul_share.py --algo ddpg
    python benchmarks/matmul_share.py --algo td3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
from torch.profiler import ProfilerActivity, profile

import rlzoo  # noqa: F401  (registers envs)
from rlzoo import make_agent

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from sb3_ddpg import SAME as SB3_SAME  # the hyper-parameters of the side-by-side throughput comparison

MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")

SAME = {("hidden" if k == "net_arch" else k): v for k, v in SB3_SAME.items()}


def replay(op: str, shapes: list[list[int]], repeats: int = 50) -> float:
    """Median seconds of one ``op`` alone on fresh tensors of the recorded ``shapes``."""
    fn = getattr(torch, op.split("::")[1])
    n_args = {"aten::mm": 2, "aten::bmm": 2, "aten::addmm": 3, "aten::baddbmm": 3}[op]
    args = [torch.randn(*shape) for shape in shapes[:n_args]]
    fn(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=["ddpg", "td3"], default="ddpg")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = make_agent(args.algo, gym.make("Pendulum-v1"), seed=0, log_every=10**9, **SAME)
    agent.learn(SAME["learning_starts"] + 100)  # past the random phase, optimizer state warmed up
    blocks = []
    for _ in range(args.blocks):
        t0 = time.perf_counter()
        agent.learn(agent.num_timesteps + args.steps)
        blocks.append((time.perf_counter() - t0) / args.steps)
    step_s = statistics.median(blocks)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True, record_shapes=True) as prof:
        agent.learn(agent.num_timesteps + args.steps)
    events = [e for e in prof.key_averages(group_by_input_shape=True) if e.key in MATMULS]
    replayed_s = sum(e.count * replay(e.key, e.input_shapes) for e in events) / args.steps
    flops = sum(e.flops for e in events) / args.steps
    report = {"algo": args.algo, "step_ms": step_s * 1e3, "matmul_ms_replayed": replayed_s * 1e3,
              "matmul_share": replayed_s / step_s,
              "gflop_per_step": flops / 1e9, "replayed_matmul_gflops": flops / replayed_s / 1e9,
              "steps_per_s": 1 / step_s, "products_per_step": sum(e.count for e in events) / args.steps}  # fmt: skip
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
