"""PPO eager vs ``compile=true``, one seed and a 16-seed batch, at rlzoo's CartPole defaults: side by side in one
process, rounds alternating.

Each of the four agents (1 seed or a seed batch of ``--seeds``, eager or compiled) first runs one rollout and update
(the compiled ones: their compilation); then every round times one more rollout (8 envs × 32 steps per seed) and its
update for each agent in turn. Printed: the median milliseconds, compiled's gain for one seed and for the batch, and
the batch's lead per seed over one seed (eager, and both compiled). One torch thread.

    python benchmarks/compiled_ppo_speed.py --rounds 9
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import gymnasium as gym
import torch

from rlzoo import make_agent
from rlzoo.agents import Agent
from rlzoo.seed_batch import SeedBatch

STEPS = 256  # env steps per seed of one rollout at rlzoo's CartPole PPO defaults (8 envs × 32 steps)


def build(seeds: int, compiled: bool) -> tuple[Agent | SeedBatch, Agent]:
    """The trainer (an agent, or a seed batch) and the agent that trains (itself, or the batch's stacked agent),
    compiled when asked, after its first rollout and update."""
    agents = [make_agent("ppo", gym.make("CartPole-v1"), seed=k, log_every=10**9) for k in range(seeds)]
    trainer = SeedBatch(agents) if seeds > 1 else agents[0]
    agent = trainer.stacked if seeds > 1 else trainer
    if compiled:
        agent.compile()
    trainer.learn(STEPS)
    return trainer, agent


def median_ms(cases: dict[Any, tuple[Agent | SeedBatch, Agent]], rounds: int) -> dict[Any, float]:
    """Median milliseconds of one more rollout and update (``STEPS`` env steps a seed) for every case's (trainer,
    agent that trains), the cases taking turns in each of ``rounds`` rounds."""
    times: dict[Any, list[float]] = {case: [] for case in cases}
    for _ in range(rounds):
        for case, (trainer, agent) in cases.items():
            start = time.perf_counter()
            trainer.learn(agent.num_timesteps + STEPS)
            times[case].append(time.perf_counter() - start)
    return {case: 1000 * statistics.median(t) for case, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = {(seeds, compiled): build(seeds, compiled) for seeds in (1, args.seeds) for compiled in (False, True)}
    ms = median_ms(cases, args.rounds)
    for (seeds, compiled), value in ms.items():
        print(f"{seeds:3d} seed(s), {'compiled' if compiled else 'eager':8s}: {value:7.1f} ms a rollout and update")
    k = args.seeds
    print(f"compiled / eager: {ms[1, False] / ms[1, True]:.2f}x for one seed, {ms[k, False] / ms[k, True]:.2f}x for "
          f"{k} seeds; the batch's lead per seed: {k * ms[1, False] / ms[k, False]:.2f}x eager, "
          f"{k * ms[1, True] / ms[k, True]:.2f}x both compiled")  # fmt: skip


if __name__ == "__main__":
    main()
