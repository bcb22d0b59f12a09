"""Planners against closed forms and against each other."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent, PolicyEvaluation, ValueIteration
from rlzoo.bellman import argmax_and_max, row_max, uniform_policy
from rlzoo.envs import GridWorld
from rlzoo.logging import RunLogger
from rlzoo.truth import GroundTruth

from .conftest import dense_policy_values, layouts

# S. Zhao (2024), Fig. 3.2: optimal state values of the default world, gamma = 0.9, one decimal.
BOOK_V_STAR = [
    [5.8, 5.6, 6.2, 6.5, 5.8],
    [6.5, 7.2, 8.0, 7.2, 6.5],
    [7.2, 8.0, 10.0, 8.0, 7.2],
    [8.0, 10.0, 10.0, 10.0, 8.0],
    [7.2, 9.0, 10.0, 9.0, 8.1],
]
CONTROL = ["value_iteration", "policy_iteration", "truncated_policy_iteration"]


@pytest.mark.parametrize("algo", CONTROL)
def test_book_optimal_values(algo):
    agent = make_agent(algo, GridWorld()).learn(1000)
    np.testing.assert_allclose(agent.v.reshape(5, 5), BOOK_V_STAR, atol=0.051)
    assert agent.finished


@pytest.mark.parametrize("algo", CONTROL)
@pytest.mark.parametrize("slip", [0.0, 0.25])
def test_control_planners_reach_closed_form_v_star(algo, slip):
    env = GridWorld(slip=slip)
    agent = make_agent(algo, env, gamma=0.8, tol=1e-11).learn(5000)
    P, R = env.model()
    greedy_policy = np.eye(5)[np.argmax(agent.q, axis=1)]
    v_closed = dense_policy_values(P, R, greedy_policy, 0.8)
    np.testing.assert_allclose(agent.v, v_closed, atol=1e-8)
    # the greedy policy is optimal: no action improves on it anywhere (Bellman optimality)
    q_closed = R + 0.8 * P @ v_closed
    np.testing.assert_allclose(q_closed.max(axis=1), v_closed, atol=1e-8)


@pytest.mark.parametrize("method", ["exact", "iterative"])
@pytest.mark.parametrize("slip", [0.0, 0.3])
def test_policy_evaluation_matches_closed_form(method, slip):
    env = GridWorld(slip=slip)
    agent = make_agent("policy_evaluation", env, method=method, tol=1e-12).learn(10_000)
    P, R = env.model()
    expected = dense_policy_values(P, R, uniform_policy(25, 5), 0.9)
    np.testing.assert_allclose(agent.v, expected, atol=1e-9)
    assert agent.summary()["value_error_target"] == "v_pi"
    assert agent.summary()["value_error"] < 1e-9


def test_policy_evaluation_of_a_saved_tables_file(tmp_path):
    env = GridWorld()
    rng = np.random.default_rng(0)
    policy = rng.dirichlet(np.ones(5), size=25)
    np.savez(tmp_path / "tables.npz", policy=policy)
    agent = make_agent("policy_evaluation", env, policy=str(tmp_path / "tables.npz")).learn(10)
    P, R = env.model()
    np.testing.assert_allclose(agent.v, dense_policy_values(P, R, policy, 0.9), atol=1e-9)
    np.savez(tmp_path / "bad.npz", policy=policy[:3])
    with pytest.raises(ConfigError, match="shape"):
        make_agent("policy_evaluation", env, policy=str(tmp_path / "bad.npz"))


@settings(max_examples=25, deadline=None)
@given(
    layout=layouts(max_side=6), gamma=st.floats(0.5, 0.95), slip=st.sampled_from([0.0, 0.1]), sweeps=st.integers(1, 8)
)
def test_vi_pi_and_truncated_pi_agree_on_random_layouts(layout, gamma, slip, sweeps):
    env = GridWorld(layout=layout, slip=slip)
    kw = {"gamma": gamma, "tol": 1e-12}
    vi = make_agent("value_iteration", env, **kw).learn(100_000)
    pi = make_agent("policy_iteration", env, **kw).learn(100_000)
    tpi = make_agent("truncated_policy_iteration", env, eval_sweeps=sweeps, **kw).learn(100_000)
    truth = GroundTruth.optimal(vi.model, gamma)
    tol = 1e-9 / (1 - gamma)
    for agent in (vi, pi, tpi):
        assert agent.finished
        np.testing.assert_allclose(agent.v, truth.v, atol=tol)
        assert truth.optimal_action_fraction(agent.policy) == 1.0


def test_policy_iteration_converges_in_few_iterations():
    agent = make_agent("policy_iteration", GridWorld()).learn(1000)
    assert agent.num_timesteps < 15  # PI converges in a handful of improvements on the book world


def test_value_error_is_logged_and_contracts():
    agent = make_agent("value_iteration", GridWorld())
    errors = []

    class Recorder(RunLogger):
        def scalars(self, values, step):
            if "truth/value_error" in values:
                errors.append(values["truth/value_error"])

    agent.learn(50, logger=Recorder())
    assert len(errors) == 51  # step 0 (untrained) and every sweep
    # VI is a gamma-contraction in max norm: ||v_k - v*|| <= gamma^k ||v_0 - v*||
    bound = errors[0] * 0.9 ** np.arange(51) + 1e-12
    assert np.all(np.asarray(errors) <= bound * 1.0000001)
    assert errors[-1] < errors[0] / 50


def test_save_load_round_trip(tmp_path):
    env = gym.make("rlzoo/GridWorld-v0", slip=0.1)
    agent = make_agent("policy_iteration", env, gamma=0.85).learn(100)
    path = agent.save(tmp_path / "pi.pt")
    loaded = Agent.load(path)  # env rebuilt from the saved spec
    assert type(loaded).__name__ == "PolicyIteration" and loaded.config.gamma == 0.85
    for name in ("v", "q", "policy"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(agent, name))
    assert [loaded.act(s) for s in range(25)] == [agent.act(s) for s in range(25)]
    assert loaded.env.unwrapped.dynamics.slip == 0.1
    with pytest.raises(TypeError, match="not a PolicyEvaluation"):
        PolicyEvaluation.load(path)


def test_make_agent_validates_hyperparameters():
    with pytest.raises(ConfigError, match=r"algo.gamma=1.5 is out of range"):
        make_agent("value_iteration", GridWorld(), gamma=1.5)
    with pytest.raises(ConfigError, match=r"algo.nope is not a known key"):
        make_agent("value_iteration", GridWorld(), nope=1)
    with pytest.raises(ConfigError, match=r"not a known algorithm"):
        make_agent("value_iteratio", GridWorld())


def test_planner_needs_a_model_and_discrete_observations():
    with pytest.raises(ConfigError, match="exposes none"):
        ValueIteration(gym.make("CartPole-v1"))
    with pytest.raises(ConfigError, match="needs Discrete observations"):
        ValueIteration(GridWorld(obs="onehot"))


def test_planner_works_on_an_env_exposing_only_a_dense_model():
    class DenseOnly(gym.Env):
        def __init__(self):
            self.observation_space, self.action_space = gym.spaces.Discrete(2), gym.spaces.Discrete(2)

        def model(self):
            P = np.zeros((2, 2, 2))
            P[:, 0, 0] = 1.0  # action 0 -> state 0
            P[:, 1, 1] = 1.0  # action 1 -> state 1
            R = np.array([[0.0, 1.0], [0.0, 2.0]])
            return P, R

    agent = make_agent("value_iteration", DenseOnly(), gamma=0.5, tol=1e-12).learn(1000)
    np.testing.assert_allclose(agent.v, [1 + 0.5 * 4, 4.0], atol=1e-9)  # v(1) = 2 / (1 - 0.5)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    table=st.integers(1, 10).flatmap(
        lambda n_actions: hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.just(n_actions)),
                                     elements=st.sampled_from([-1.0, -0.0, 0.0, 0.5, 2.0, np.inf, -np.inf, np.nan]))
    )
)  # fmt: skip
def test_the_fast_row_reductions_equal_numpys(table):
    """Ties (first maximiser wins), infinities and NaN rows as ``np.argmax`` / ``max(axis=1)``."""
    actions, best = argmax_and_max(table)
    np.testing.assert_array_equal(actions, np.argmax(table, axis=1))
    np.testing.assert_array_equal(np.abs(best), np.abs(table.max(axis=1)))  # (±0 may differ in sign)
    np.testing.assert_array_equal(np.abs(row_max(table)), np.abs(table.max(axis=1)))
