"""DDPG / TD3 speed: one update at the defaults (64×64) and at SB3's 400×300 comparison size, batch 256; one SAC
update at its defaults (256×256, batch 256) on HalfCheetah-v5, eager and through ``torch.compile`` (``compile=true``).

Side-by-side throughput against Stable-Baselines3 lives in ``benchmarks/peers/sb3_ddpg.py``; the share of
the step spent in matrix products in ``benchmarks/matmul_share.py``.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

from rlzoo import make_agent


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
@pytest.mark.parametrize("hidden", [[64, 64], [400, 300]], ids=["64x64", "400x300"])
def test_one_update(benchmark, algo, hidden):
    agent = make_agent(algo, gym.make("Pendulum-v1"), seed=0, hidden=hidden, learning_starts=300, log_every=10**9)
    agent.learn(400)
    benchmark(agent.train_step)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_one_sac_update(benchmark, compiled):
    agent = make_agent("sac", gym.make("HalfCheetah-v5"), seed=0, learning_starts=100, log_every=10**9, device="cpu")
    agent.learn(400)
    if compiled:
        agent.compile()
        for _ in range(3):  # compiles both graphs (tens of seconds) before the clock starts
            agent.train_step()
    benchmark(agent.train_step)
