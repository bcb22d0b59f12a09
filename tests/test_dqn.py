"""DQN: targets by hand, target-network updates, a fast learning test, persistence, guards."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent, NumericalError
from rlzoo.agents.dqn import td_targets
from rlzoo.seeding import seed_everything

CORRIDOR = {"layout": ["S...T"], "episodic": True, "obs": "onehot", "max_episode_steps": 50}
FAST = {"hidden": [32], "learning_rate": 3e-3, "learning_starts": 200, "train_freq": 1, "batch_size": 32,
        "target_update_interval": 100, "exploration_fraction": 0.5, "gamma": 0.9, "log_every": 500}  # fmt: skip


def test_td_targets_by_hand():
    rewards, discounts = torch.tensor([1.0, 0.5]), torch.tensor([0.9, 0.0])
    next_target = torch.tensor([[1.0, 3.0], [5.0, 2.0]])
    next_online = torch.tensor([[4.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(td_targets(rewards, discounts, next_target), torch.tensor([1.0 + 0.9 * 3.0, 0.5]))
    # Double DQN: the online net picks a* (action 0 in row 0), the target net values it (1.0)
    torch.testing.assert_close(td_targets(rewards, discounts, next_target, next_online), torch.tensor([1.9, 0.5]))


@pytest.mark.parametrize("tau", [1.0, 0.25])
def test_target_update_hard_and_polyak(tau):
    agent = make_agent("dqn", gym.make("CartPole-v1"), seed=0, tau=tau)
    before = [p.clone() for p in agent.target_net.parameters()]
    with torch.no_grad():
        for p in agent.q_net.parameters():
            p.add_(1.0)
    agent.update_target()
    for old, p_t, p in zip(before, agent.target_net.parameters(), agent.q_net.parameters(), strict=True):
        torch.testing.assert_close(p_t, tau * p + (1 - tau) * old)


@pytest.mark.parametrize("options", [{}, {"double": True, "dueling": True, "n_step": 3}])
def test_dqn_learns_a_corridor(options):
    seed_everything(0)
    env = gym.make("rlzoo/GridWorld-v0", **CORRIDOR)
    agent = make_agent("dqn", env, seed=0, **FAST, **options)
    before = agent.summary()["value_error"]
    agent.learn(3000)
    summary = agent.summary()
    assert summary["optimal_action_fraction"] == 1.0  # "right" everywhere
    assert summary["value_error"] < min(0.2, before / 3)


def test_save_load_gives_identical_actions_and_values(tmp_path):
    env = gym.make("CartPole-v1")
    agent = make_agent("dqn", env, seed=0, learning_starts=100, hidden=[16]).learn(600)
    loaded = Agent.load(agent.save(tmp_path / "dqn.pt"))
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))
    assert [loaded.act(o) for o in obs] == [agent.act(o) for o in obs]
    assert loaded.n_updates == agent.n_updates > 0


def test_seeded_runs_are_reproducible():
    def run(seed):
        seed_everything(seed)
        return make_agent("dqn", gym.make("CartPole-v1"), seed=seed, learning_starts=100, hidden=[16]).learn(800)

    a, b, c = run(4), run(4), run(5)
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(a.q_values(obs), b.q_values(obs))
    assert not np.array_equal(a.q_values(obs), c.q_values(obs))


class NaNReward(gym.Wrapper):
    def step(self, action):
        obs, _, term, trunc, info = self.env.step(action)
        return obs, float("nan"), term, trunc, info


def test_nan_loss_stops_training_naming_loss_and_step():
    agent = make_agent("dqn", NaNReward(gym.make("CartPole-v1")), seed=0, learning_starts=50, train_freq=10)
    with pytest.raises(NumericalError, match=r"losses/td_loss is nan at step 60"):
        agent.learn(500)


def test_incompatible_envs_are_named():
    with pytest.raises(ConfigError, match=r"env\.obs=onehot"):
        make_agent("dqn", gym.make("rlzoo/GridWorld-v0"))
    with pytest.raises(ConfigError, match="needs a Discrete action space"):
        make_agent("dqn", gym.make("Pendulum-v1"))
