"""On-policy speed: GAE on a 2048×8 rollout, one A2C update, A2C's collect-and-update loop, one PPO epoch, PPO's
rollout and update at rl-baselines3-zoo's HalfCheetah settings eager and compiled (``compile=true``), and one TRPO
update. PPO compiled vs eager for one seed and a seed batch, alternating: ``benchmarks/compiled_ppo_speed.py``.

Side-by-side throughput against Stable-Baselines3 lives in ``benchmarks/peers/sb3_a2c.py`` and
``benchmarks/peers/sb3_trust_region.py``.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

from rlzoo import make_agent
from rlzoo.buffers import gae
from rlzoo.logging import RunLogger


def test_gae_2048x8(benchmark):
    rng = np.random.default_rng(0)
    shape = (2048, 8)
    r, v = rng.normal(size=shape), rng.normal(size=shape)
    term, trunc = rng.random(shape) < 0.01, rng.random(shape) < 0.002
    benchmark(gae, r, v, rng.normal(size=8), term, trunc, rng.normal(size=shape), 0.99, 0.95)


def test_a2c_one_update(benchmark):
    agent = make_agent("a2c", gym.make("CartPole-v1"), seed=0)
    agent.learn(400)
    benchmark(agent.update, agent.buffer)


def test_a2c_cartpole_loop(benchmark):
    """Collect (8 envs × 5 steps) and update, 10k env steps: the number SB3 is compared on."""
    steps = 10_000

    def run():
        return make_agent("a2c", gym.make("CartPole-v1"), seed=0, log_every=steps).learn(steps, RunLogger())

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["steps_per_s"] = steps / benchmark.stats["median"]


def test_ppo_one_epoch(benchmark):
    """One pass over a 2048-sample rollout (8 envs × 256 steps) in 64-sample minibatches, 64×64 actor and critic."""
    agent = make_agent("ppo", gym.make("CartPole-v1"), seed=0, n_envs=8, n_steps=256, batch_size=64, n_epochs=1)
    agent.learn(2048)
    benchmark(agent.update, agent.buffer)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_ppo_halfcheetah_rollout_and_update(benchmark, compiled):
    """One 512-step rollout and its update (20 epochs of 64-sample minibatches, 256×256 actor and critic) at
    ``conf/experiment/ppo_halfcheetah.yaml``; compiled: the minibatch loss and the acting step (``PPO.compile``)."""
    preset = Path(__file__).resolve().parents[1] / "conf" / "experiment" / "ppo_halfcheetah.yaml"
    hp = yaml.safe_load(preset.read_text())["algo"]
    agent = make_agent("ppo", gym.make("HalfCheetah-v5"), seed=0, log_every=10**9, **hp)
    if compiled:
        agent.compile()
    agent.learn(512)  # the first rollout and update (compiled: the compilation) before the clock starts

    def rollout_and_update():
        agent.learn(agent.num_timesteps + 512)

    benchmark.pedantic(rollout_and_update, rounds=7, iterations=1)
    benchmark.extra_info["steps_per_s"] = 512 / benchmark.stats["median"]


def test_trpo_one_update(benchmark):
    """rlzoo's CartPole TRPO update on a 1024-sample rollout: CG on Fisher-vector products, line search, critic."""
    agent = make_agent("trpo", gym.make("CartPole-v1"), seed=0)
    agent.learn(1024)
    benchmark(agent.update, agent.buffer)
