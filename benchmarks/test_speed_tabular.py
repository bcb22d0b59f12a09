"""Tabular update throughput: Q-learning steps/s on the raw GridWorld (target >= 200k/s on one core).

``extra_info["steps_per_s"]`` holds the figure. The ``gym.make`` variant adds gymnasium's wrappers
(order enforcing, passive checker, time limit), as the CLI uses.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

from rlzoo import make_agent
from rlzoo.envs import GridWorld

STEPS = 100_000


@pytest.mark.parametrize("algo", ["qlearning", "sarsa", "expected_sarsa", "td0"])
def test_td_update_throughput_raw_env(benchmark, algo):
    def run():
        return make_agent(algo, GridWorld(max_episode_steps=100), seed=0, log_every=STEPS).learn(STEPS)

    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["steps_per_s"] = STEPS / benchmark.stats["median"]


def test_qlearning_throughput_gym_make(benchmark):
    def run():
        env = gym.make("rlzoo/GridWorld-v0", max_episode_steps=100)
        return make_agent("qlearning", env, seed=0, log_every=STEPS).learn(STEPS)

    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["steps_per_s"] = STEPS / benchmark.stats["median"]
