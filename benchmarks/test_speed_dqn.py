"""DQN speed: one gradient update (batch 64, 256x256 MLP) and the environment-step loop.

Side-by-side throughput against Stable-Baselines3 lives in ``benchmarks/peers/sb3_dqn_cartpole.py``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rlzoo import make_agent

STEPS = 2_000


def _agent(**kw):
    return make_agent("dqn", gym.make("CartPole-v1"), seed=0, batch_size=64, hidden=[256, 256], **kw)


def test_dqn_one_update(benchmark):
    agent = _agent(learning_starts=500)
    agent.learn(1000)
    benchmark(agent.train_step)


def test_dqn_env_step_loop(benchmark):
    """Acting, stepping and storing only (learning_starts beyond the budget): per-step overhead."""

    def run():
        return _agent(learning_starts=10**9, log_every=STEPS).learn(STEPS)

    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["steps_per_s"] = STEPS / benchmark.stats["median"]


def test_replay_buffer_add_sample(benchmark):
    from rlzoo.buffers import ReplayBuffer

    buf = ReplayBuffer(100_000, (4,), n_envs=1, n_step=1, gamma=0.99)
    obs, rng = np.zeros((1, 4), np.float32), np.random.default_rng(0)
    for _ in range(1000):
        buf.add(obs, (0,), (0.0,), obs, (False,), (False,))

    def run():
        for _ in range(64):
            buf.add(obs, (0,), (0.0,), obs, (False,), (False,))
        buf.sample(64, rng)

    benchmark(run)
