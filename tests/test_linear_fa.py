"""Linear value-function approximation: feature maps, TD-linear, linear Sarsa/Q-learning."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlzoo import ConfigError, make_agent
from rlzoo.bellman import uniform_policy
from rlzoo.features import Fourier, Polynomial, TileCoding, state_feature_table

from .conftest import dense_policy_values


def grid(**kw):
    return gym.make("rlzoo/GridWorld-v0", **{"max_episode_steps": 100, **kw})


def test_feature_maps_by_hand():
    lo, hi = np.zeros(2), np.array([4.0, 2.0])
    x = np.array([2.0, 1.0])  # scaled to (0.5, 0.5)
    poly = Polynomial(lo, hi, order=2)
    assert poly.dim == 6  # 1, y, y², x, xy, x²
    np.testing.assert_allclose(sorted(poly(x)), sorted([1, 0.5, 0.25, 0.5, 0.25, 0.25]))
    four = Fourier(lo, hi, order=1)
    np.testing.assert_allclose(four(x), np.cos(np.pi * np.array([0, 0.5, 0.5, 1.0])), atol=1e-12)
    tiles = TileCoding(lo, hi, tilings=3, tiles=2)
    phi = tiles(np.array([[0.0, 0.0], [4.0, 2.0], [2.0, 1.0]]))
    assert phi.shape == (3, tiles.dim) and np.all(phi.sum(axis=1) == 3)  # one active tile per tiling
    assert not np.array_equal(phi[0], phi[1])


def test_state_feature_table_on_gridworld_and_errors():
    env = grid()
    assert state_feature_table(env, "onehot", order=3, tilings=8, tiles=4).shape == (25, 25)
    assert state_feature_table(env, "fourier", order=2, tilings=8, tiles=4).shape == (25, 9)
    with pytest.raises(ValueError, match="need state coordinates"):
        state_feature_table(gym.make("FrozenLake-v1"), "polynomial", order=3, tilings=8, tiles=4)
    with pytest.raises(ConfigError, match=r"algo.features='tile'"):
        make_agent("td_linear", gym.make("FrozenLake-v1"), features="tile")


def test_td_linear_with_one_hot_features_reaches_the_tabular_v_pi():
    """With one-hot features the TD fixed point is v_π itself (closed form, independent of rlzoo)."""
    env = grid()
    agent = make_agent("td_linear", env, seed=0, features="onehot", alpha=1.0, alpha_schedule="robbins_monro",
                       alpha_power=0.7)  # fmt: skip
    agent.learn(400_000)
    P, R = env.unwrapped.model()
    v_pi = dense_policy_values(P, R, uniform_policy(25, 5), 0.9)
    assert np.max(np.abs(agent.v - v_pi)) < 0.1
    assert agent.summary()["value_error"] == pytest.approx(np.max(np.abs(agent.v - v_pi)))


def test_td_linear_fixed_point_with_fourier_features():
    """Semi-gradient TD converges to w_TD solving Φᵀ D (Φw − r_π − γ P_π Φw) = 0 (D: on-policy state weights)."""
    env = grid()  # uniform random starts + time limit: visit weights are estimated by counting
    agent = make_agent("td_linear", env, seed=1, features="fourier", feature_order=2, alpha=0.01)
    agent.learn(300_000)
    phi = agent.table.phi
    counts = np.zeros(25)
    rng_env = grid()
    s, _ = rng_env.reset(seed=5)
    rng = np.random.default_rng(5)
    for _ in range(200_000):
        counts[s] += 1
        s, _, _, trunc, _ = rng_env.step(int(rng.integers(5)))
        if trunc:
            s, _ = rng_env.reset()
    D = np.diag(counts / counts.sum())
    P, R = env.unwrapped.model()
    P_pi, r_pi = P.mean(axis=1), R.mean(axis=1)
    w_td = np.linalg.solve(phi.T @ D @ (phi - 0.9 * P_pi @ phi), phi.T @ D @ r_pi)
    assert np.max(np.abs(phi @ agent.table.w - phi @ w_td)) < 0.5
    assert agent.summary()["value_error"] > 0.05  # 9 features cannot represent v_π exactly


@pytest.mark.parametrize("algo", ["qlearning", "sarsa"])
def test_linear_control_with_one_hot_features_equals_tabular(algo):
    tab = make_agent(algo, grid(), seed=2, behavior="uniform").learn(5_000)
    lin = make_agent(algo, grid(), seed=2, behavior="uniform", approximator="linear", features="onehot").learn(5_000)
    np.testing.assert_allclose(lin.q, tab.q, atol=1e-12)


def test_linear_qlearning_with_coordinate_features_learns():
    agent = make_agent("qlearning", grid(), seed=0, behavior="uniform", approximator="linear", features="tile",
                       tilings=8, tiles=4, alpha=0.02)  # fmt: skip
    before = agent.summary()["optimal_action_fraction"] if agent.truth else 0
    agent.learn(100_000)
    after = agent.summary()["optimal_action_fraction"]
    assert after >= 0.6 and after > before


def test_td_linear_defaults_learn():
    agent = make_agent("td_linear", grid(), seed=0)
    before = agent.summary()["value_error"] if agent.truth else None
    agent.learn(100_000)
    assert agent.summary()["value_error"] < min(0.8, before / 3)
