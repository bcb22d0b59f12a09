"""Memory soak: DQN with a 1M-transition replay buffer; resident memory must stay flat once it is full.

    python benchmarks/replay_memory_soak.py --steps 1300000 --every 100000

Prints the process's resident set size (RSS) every ``--every`` env steps, and the growth between
the first sample after the buffer filled and the last one.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import gymnasium as gym
import torch

from rlzoo import make_agent
from rlzoo.seeding import seed_everything


def rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_300_000)
    parser.add_argument("--every", type=int, default=100_000)
    parser.add_argument("--buffer", type=int, default=1_000_000)
    parser.add_argument("--train-freq", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `python -m rlzoo.train` does by default (torch_threads=1)
    seed_everything(0)
    agent = make_agent("dqn", gym.make("CartPole-v1"), seed=0, buffer_size=args.buffer, train_freq=args.train_freq,
                       log_every=args.every)  # fmt: skip
    rows, t0 = [], time.perf_counter()
    for step in range(args.every, args.steps + 1, args.every):
        agent.learn(step)
        rows.append({"step": step, "buffer": len(agent.buffer), "rss_mib": round(rss_mib(), 1),
                     "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    full = [r for r in rows if r["buffer"] == args.buffer]
    if len(full) >= 2:
        print(f"RSS growth after the buffer filled: {full[-1]['rss_mib'] - full[0]['rss_mib']:+.1f} MiB "
              f"over {full[-1]['step'] - full[0]['step']} steps")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
