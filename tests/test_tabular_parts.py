"""Shared tabular parts: episode buffer, step sizes, exploration policies, toy-text models."""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import pytest

from rlzoo.buffers import EpisodeBuffer
from rlzoo.envs import model_of, reset_to_state
from rlzoo.policies import Behaviour, TablePolicy, epsilon_greedy_probs, softmax_probs
from rlzoo.schedules import LinearSchedule, StepSize


def test_episode_buffer_returns_and_first_visits_by_hand():
    buf = EpisodeBuffer()
    for s, a, r in [(0, 1, 1.0), (2, 0, 0.0), (0, 1, -1.0), (0, 2, 2.0)]:
        buf.add(s, a, r)
    g3 = 2.0
    g2 = -1.0 + 0.5 * g3
    g1 = 0.0 + 0.5 * g2
    g0 = 1.0 + 0.5 * g1
    assert buf.returns(0.5) == pytest.approx([g0, g1, g2, g3])
    assert buf.returns(0.5, bootstrap=4.0)[-1] == pytest.approx(2.0 + 0.5 * 4.0)
    assert buf.first_visits() == [True, True, False, True]


def test_step_sizes():
    const = StepSize(0.3, "constant", 1.0, size=0)
    assert [const(0) for _ in range(3)] == [0.3, 0.3, 0.3]
    rm = StepSize(1.0, "robbins_monro", 1.0, size=2)
    assert [rm(0), rm(0), rm(1), rm(0)] == pytest.approx([1, 1 / 2, 1, 1 / 3])  # counts are per entry
    rm = StepSize(0.5, "robbins_monro", 0.6, size=1)
    assert [rm(0) for _ in range(3)] == pytest.approx([0.5, 0.5 / 2**0.6, 0.5 / 3**0.6])
    with pytest.raises(ValueError, match="alpha_schedule='cosine'"):
        StepSize(0.1, "cosine", 1.0, size=0)


def test_linear_schedule():
    eps = LinearSchedule(1.0, 0.1, 10)
    assert [eps(0), eps(5), eps(10), eps(100)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert LinearSchedule(0.2, None, 0)(10**6) == 0.2


def test_epsilon_greedy_and_softmax_tables():
    q = np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(epsilon_greedy_probs(q, 0.3), [[0.1, 0.8, 0.1], [0.8, 0.1, 0.1]])
    p = softmax_probs(q, 1.0)
    np.testing.assert_allclose(p[0], np.exp([1, 3, 2]) / np.exp([1, 3, 2]).sum())
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


@pytest.mark.parametrize("kind", ["epsilon_greedy", "softmax", "uniform"])
def test_behaviour_sampling_matches_its_probabilities(kind):
    beh = Behaviour(kind, 4, LinearSchedule(0.2, None, 0), temperature=0.5)
    row = [0.0, 1.0, 0.5, -1.0]
    rng = random.Random(0)
    counts = np.bincount([beh.sample(row, 0, rng) for _ in range(40_000)], minlength=4) / 40_000
    np.testing.assert_allclose(counts, beh.probs(row, 0), atol=0.01)
    np.testing.assert_allclose(beh.table(np.array([row]), 0)[0], beh.probs(row, 0))


def test_table_policy_sampler():
    policy = np.array([[0.0, 1.0], [0.25, 0.75]])
    sampler, rng = TablePolicy(policy), random.Random(1)
    assert {sampler.sample(0, rng) for _ in range(100)} == {1}
    freq = np.mean([sampler.sample(1, rng) for _ in range(20_000)])
    assert freq == pytest.approx(0.75, abs=0.015)


def _independent_value_iteration(P: dict, n_s: int, n_a: int, gamma: float) -> np.ndarray:
    """Episodic VI straight from toy-text transition lists: v(s') counts only if not terminated."""
    v = np.zeros(n_s)
    for _ in range(2000):
        q = np.array([[sum(p * (r + gamma * v[ns] * (not d)) for p, ns, r, d in P[s][a]) for a in range(n_a)]
                      for s in range(n_s)])  # fmt: skip
        v = q.max(axis=1)
    return v


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "CliffWalking-v1"])
def test_toy_text_model_gives_episodic_values(env_id):
    from rlzoo import make_agent

    env = gym.make(env_id)
    n_s, n_a = env.observation_space.n, env.action_space.n
    expected = _independent_value_iteration(env.unwrapped.P, n_s, n_a, 0.9)
    model = model_of(env)
    assert model.n_states == n_s and model.n_actions == n_a
    agent = make_agent("value_iteration", env, tol=1e-12).learn(10_000)
    P = env.unwrapped.P
    terminal = sorted({ns for s in range(n_s) for a in range(n_a) for _, ns, _, done in P[s][a] if done})
    live = [s for s in range(n_s) if s not in terminal]
    np.testing.assert_allclose(agent.v[live], expected[live], atol=1e-8)
    assert np.all(agent.v[terminal] == 0.0)  # CliffWalking's goal is terminal though its own P lets it move on


def test_reset_to_state_on_gridworld_and_toy_text():
    grid = gym.make("rlzoo/GridWorld-v0")
    assert reset_to_state(grid, 7) == 7 and grid.unwrapped.state == 7
    lake = gym.make("FrozenLake-v1", is_slippery=False)
    assert reset_to_state(lake, 5) == 5
    assert lake.unwrapped.step(1)[0] == 5  # a hole is absorbing: it stays put
