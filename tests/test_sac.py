"""SAC: the squashed Gaussian's log-density, the soft TD target, the temperature, the update cadence, fast learning
tests on a Box (the 1-D point task) and a Discrete space (the GridWorld, against its ground truth), persistence."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent
from rlzoo.policy_networks import SquashedGaussianActor

from .test_ddpg import PointReach, final_distances

SMALL = {"hidden": [32, 32], "learning_starts": 100, "batch_size": 64, "log_every": 200}


def grid(**kwargs) -> gym.Env:
    return gym.make("rlzoo/GridWorld-v0", max_episode_steps=100, **kwargs)


# ---- the actor ----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_squashed_gaussian_log_prob_is_the_change_of_variables(seed):
    torch.manual_seed(seed)
    actor = SquashedGaussianActor(gym.spaces.Box(-1, 1, (3,), np.float32), 2, [8], "tanh")
    obs, eps = torch.randn(5, 3), torch.randn(5, 2)
    u, log_prob = actor.sample(obs, eps)
    mean, log_std = actor(obs)
    # the textbook change of variables in float64 at the pre-squash draw x (not at u: float32's rounding of u near ±1
    # would move atanh(u) by more than the tolerance): log N(x; μ, σ²) − Σ log(1 − tanh(x)²)
    x = mean.double() + log_std.double().exp() * eps.double()
    gaussian = torch.distributions.Normal(mean.double(), log_std.double().exp()).log_prob(x)
    expected = (gaussian - torch.log1p(-torch.tanh(x).square())).sum(-1)
    rows = (x.abs() < 8).all(dim=1)  # where 1 − tanh(x)² is still resolved in float64
    torch.testing.assert_close(log_prob.double()[rows], expected[rows], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(u.double(), torch.tanh(x), rtol=0, atol=1e-6)
    assert torch.isfinite(log_prob).all() and (u.abs() <= 1).all()


def test_greedy_action_is_tanh_of_the_mean_scaled_to_the_box():
    agent = make_agent("sac", PointReach(), seed=0, **SMALL)
    obs = np.array([0.3], np.float32)
    mean = agent.actor(torch.as_tensor(obs[None]))[0][0].detach().numpy()
    np.testing.assert_allclose(agent.act(obs), 0.25 * np.tanh(mean), rtol=1e-6)


# ---- the soft target and the temperature --------------------------------------------------------


def test_discrete_td_target_is_the_exact_soft_value_of_the_target_critics():
    agent = make_agent("sac", grid(), seed=0, gamma=0.9, **SMALL).learn(300)
    batch = agent.buffer.sample(32, np.random.default_rng(1))
    with torch.no_grad():
        next_obs = torch.from_numpy(batch.next_obs)
        target = agent.td_target(next_obs, torch.from_numpy(batch.rewards), torch.from_numpy(batch.discounts), None)
        log_pi = torch.log_softmax(agent.actor.head.logits(agent.actor.body(agent.actor.encoder(next_obs))), -1)
        q = agent.critic_target.all_actions(next_obs).amin(0)
        soft_v = (log_pi.exp() * (q - agent.alpha * log_pi)).sum(-1).numpy()
    np.testing.assert_allclose(target.numpy(), batch.rewards + batch.discounts * soft_v, rtol=1e-5, atol=1e-5)
    assert set(np.unique(batch.discounts).tolist()) <= {0.0, np.float32(0.9)}


def test_learned_temperature_moves_toward_the_target_entropy_and_a_fixed_one_stays():
    # a target entropy far below the policy's: α must fall; far above: α must rise
    low = make_agent("sac", PointReach(), seed=0, target_entropy=-20.0, alpha_learning_rate=3e-3, **SMALL).learn(400)
    high = make_agent("sac", PointReach(), seed=0, target_entropy=5.0, alpha_learning_rate=3e-3, **SMALL).learn(400)
    assert low.stats["alpha"] < 0.5 < 2.0 < high.stats["alpha"]
    fixed = make_agent("sac", PointReach(), seed=0, alpha=0.2, **SMALL).learn(400)
    assert fixed.stats["alpha"] == pytest.approx(0.2) and "alpha_loss" not in fixed.stats
    assert fixed.alpha_optimizer is None


def test_default_target_entropy_is_minus_the_action_dimension_or_a_share_of_log_actions():
    assert make_agent("sac", gym.make("Pendulum-v1"), seed=0).target_entropy == -1.0
    agent = make_agent("sac", grid(), seed=0, target_entropy_scale=0.5)
    assert agent.target_entropy == pytest.approx(0.5 * math.log(5))
    assert make_agent("sac", grid(), seed=0, target_entropy=0.3).target_entropy == 0.3


def test_actor_and_target_updates_follow_their_intervals():
    agent = make_agent("sac", PointReach(), seed=0, actor_update_interval=3, target_update_interval=4, **SMALL)
    agent.learn(112)  # training starts after step 100: 12 critic steps
    assert agent.n_critic_updates == 12 and agent.n_updates == 4
    before = [p.clone() for p in agent.target_params]
    agent.learn(115)  # critic steps 13..15: no target update (16 is the next)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.target_params, strict=True))
    agent.learn(116)
    assert not all(torch.equal(a, b) for a, b in zip(before, agent.target_params, strict=True))


def test_logs_every_sac_quantity():
    agent = make_agent("sac", PointReach(), seed=0, **SMALL).learn(150)
    assert {"qf1_loss", "qf2_loss", "qf1_values", "qf2_values", "actor_loss", "alpha", "alpha_loss",
            "entropy"} <= set(agent.stats)  # fmt: skip


# ---- learning -----------------------------------------------------------------------------------


def test_learns_to_reach_a_point_on_a_line():
    agent = make_agent("sac", PointReach(), seed=0, gamma=0.9, learning_starts=300, hidden=[64, 64], batch_size=64,
                       learning_rate=1e-3)  # fmt: skip
    before = final_distances(agent)
    agent.learn(1500)
    after = final_distances(agent)
    assert after.max() < 0.1 and after.mean() < 0.05 < before.mean()


def test_discrete_sac_finds_the_optimal_gridworld_policy():
    agent = make_agent("sac", grid(), seed=0, gamma=0.9, hidden=[64], learning_starts=500, learning_rate=1e-3,
                       batch_size=64, target_entropy_scale=0.2)  # fmt: skip
    initial = agent.summary()["optimal_action_fraction"]
    summary = agent.learn(4000).summary()
    assert summary["optimal_action_fraction"] == 1.0 > initial
    assert summary["policy_value_gap"] < 1e-6 and summary["critic_error"] < 2.0


# ---- guards and persistence ---------------------------------------------------------------------


def test_unbounded_or_multi_dimensional_actions_are_one_clear_error():
    class Unbounded(PointReach):
        def __init__(self):
            super().__init__()
            self.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)

    with pytest.raises(ConfigError, match="algo=sac needs finite action bounds"):
        make_agent("sac", Unbounded())
    with pytest.raises(ConfigError, match="algo=sac needs a continuous"):
        make_agent("sac", _multi_discrete_env())


def _multi_discrete_env() -> gym.Env:
    env = PointReach()
    env.action_space = gym.spaces.MultiDiscrete([2, 2])
    return env


@pytest.mark.parametrize("env", ["point", "grid"])
def test_save_load_gives_identical_agent(tmp_path, env):
    make = PointReach if env == "point" else grid
    agent = make_agent("sac", make(), seed=0, **SMALL).learn(250)
    loaded = Agent.load(agent.save(tmp_path / "sac.pt"), make())
    assert loaded.alpha.item() == agent.alpha.item() != 1.0
    steps = [a.alpha_optimizer.state_dict()["state"][0]["step"] for a in (agent, loaded)]
    assert steps[0] == steps[1] > 0
    for part in ("actor", "critic", "critic_target"):
        for a, b in zip(getattr(agent, part).parameters(), getattr(loaded, part).parameters(), strict=True):
            assert torch.equal(a, b)


def test_seeded_runs_are_reproducible():
    def run(seed):
        return make_agent("sac", gym.make("Pendulum-v1"), seed=seed, **SMALL).learn(300)

    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, size=(16, 3)).astype(np.float32))
    a, b, c = run(3), run(3), run(4)
    with torch.no_grad():
        assert torch.equal(a.greedy_actions(obs), b.greedy_actions(obs))
        assert not torch.equal(a.greedy_actions(obs), c.greedy_actions(obs))
