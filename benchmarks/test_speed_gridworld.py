"""Speed of the GridWorld and the planners (issue: foundation targets).

- single ``GridWorld.step`` on the raw env: target >= 300k steps/s on one core;
- vectorized GridWorld with 4096 copies: target >= 20M env-steps/s;
- value iteration on a 100x100 random layout to tol 1e-8: target < 1 s.

Each test stores its throughput in ``extra_info`` (visible in the saved JSON).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rlzoo import make_agent
from rlzoo.bellman import value_iteration
from rlzoo.envs import GridWorld, GridWorldVectorEnv, random_layout

N_STEPS = 20_000


def _bench_steps(benchmark, env) -> None:
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 5, N_STEPS).tolist()
    step = env.step

    def run():
        for a in actions:
            step(a)

    benchmark(run)
    benchmark.extra_info["steps_per_s"] = N_STEPS / benchmark.stats["median"]


def test_gridworld_step_raw(benchmark):
    _bench_steps(benchmark, GridWorld())


def test_gridworld_step_gym_make(benchmark):
    """Through ``gymnasium.make`` (order-enforcing and passive-checker wrappers), for reference."""
    _bench_steps(benchmark, gym.make("rlzoo/GridWorld-v0"))


def test_vector_gridworld_4096(benchmark):
    n = 4096
    vec = GridWorldVectorEnv(n, max_episode_steps=100)
    vec.reset(seed=0)
    batches = np.random.default_rng(0).integers(0, 5, (64, n))

    def run():
        for actions in batches:
            vec.step(actions)

    benchmark(run)
    benchmark.extra_info["env_steps_per_s"] = 64 * n / benchmark.stats["median"]


def _layout_100():
    return random_layout(100, 100, p_forbidden=0.2, rng=0)


def test_value_iteration_100x100(benchmark):
    """The value-iteration loop itself on the compact model (the planner's core)."""
    model = GridWorld(layout=_layout_100()).tabular_model()
    _, sweeps = benchmark(value_iteration, model, 0.9, 1e-8)
    benchmark.extra_info["sweeps"] = sweeps


def test_value_iteration_agent_100x100(benchmark):
    """The ``value_iteration`` agent end to end, including per-sweep ``truth/value_error`` tracking."""
    env = GridWorld(layout=_layout_100())

    def run():
        return make_agent("value_iteration", env, tol=1e-8).learn(10_000)

    agent = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["sweeps"] = agent.num_timesteps
    assert agent.finished
