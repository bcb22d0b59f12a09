"""Greedy evaluation steps its episodes side by side (``rlzoo.evaluate.evaluate_together``): the same episodes as
one after another, one batched policy call a step, and the one-at-a-time loop wherever copies of the env could
differ from it or something watches its steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TransformReward

import rlzoo
from rlzoo.envs import GRIDWORLD_ID, NumpyVectorEnv, seeded_copies
from rlzoo.evaluate import evaluate


def one_at_a_time(agent, env, episodes, seed, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(agent, "acts_in_batches", False)
        return evaluate(agent, env, episodes, seed=seed, max_episode_steps=300)


def forbid_single_calls(agent, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("a one-observation act during a batched evaluation")

    monkeypatch.setattr(agent, "_act", refuse)


@pytest.mark.parametrize(
    ("algo", "env_id", "kwargs", "steps"),
    [
        ("ppo", "CartPole-v1", {}, 2048),
        ("dqn", "CartPole-v1", {}, 0),
        ("td3", "Pendulum-v1", {}, 0),
        ("a2c", GRIDWORLD_ID, {}, 0),
        ("dqn", GRIDWORLD_ID, {"obs": "onehot"}, 0),
    ],
)
def test_side_by_side_episodes_are_the_one_at_a_time_episodes(algo, env_id, kwargs, steps, monkeypatch):
    env = gym.make(env_id, **kwargs)
    agent = rlzoo.make_agent(algo, env, seed=3)
    if steps:
        agent.learn(steps)  # a policy whose episodes differ in length
    before = one_at_a_time(agent, env, 12, 500, monkeypatch)
    forbid_single_calls(agent, monkeypatch)
    together = evaluate(agent, env, 12, seed=500, max_episode_steps=300)
    assert together.lengths == before.lengths
    np.testing.assert_allclose(together.returns, before.returns, rtol=1e-5, atol=1e-4)
    assert len(set(before.returns)) > 1, "the episodes must differ for the comparison to mean anything"


def test_the_episode_cap_ends_side_by_side_episodes(monkeypatch):
    env = gym.make("CartPole-v1")
    agent = rlzoo.make_agent("dqn", env, seed=0)
    forbid_single_calls(agent, monkeypatch)
    result = evaluate(agent, env, 4, seed=0, max_episode_steps=3)
    assert result.lengths == [3, 3, 3, 3] and result.returns == [3.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize("watch", ["stochastic", "render", "observe", "wrapped"])
def test_watched_stochastic_or_wrapped_evaluations_go_one_at_a_time(watch, monkeypatch, capsys):
    env = gym.make(GRIDWORLD_ID, obs="onehot", render_mode="ansi" if watch == "render" else None)
    if watch == "wrapped":  # a wrapper added after make: a copy re-made from the spec would not have it
        env = TransformReward(env, lambda r: r + 1.0)
    agent = rlzoo.make_agent("dqn", env, seed=0)
    calls = []
    single = agent._act
    monkeypatch.setattr(agent, "_act", lambda obs, deterministic=True: calls.append(1) or single(obs, deterministic))
    options = {"stochastic": {"deterministic": False}, "render": {"render": True},
               "observe": {"observe": lambda: None}, "wrapped": {}}[watch]  # fmt: skip
    result = evaluate(agent, env, 2, seed=0, max_episode_steps=5, **options)
    assert len(calls) == sum(result.lengths) == 10
    if watch == "wrapped":  # the wrapper's rewards
        plain = evaluate(agent, env.env, 2, seed=0, max_episode_steps=5)
        assert result.returns == [r + n for r, n in zip(plain.returns, plain.lengths, strict=True)]


@pytest.mark.parametrize(("env_id", "numpy_form"), [("CartPole-v1", True), ("Pendulum-v1", True),
                                                    (GRIDWORLD_ID, False)])  # fmt: skip
def test_copy_i_starts_as_the_env_reset_with_seed_plus_i(env_id, numpy_form):
    env = gym.make(env_id)
    copies = seeded_copies(env, 3)
    assert isinstance(copies, NumpyVectorEnv) == numpy_form
    obs, _ = copies.reset(seed=40)
    for i in range(3):
        np.testing.assert_array_equal(obs[i], env.reset(seed=40 + i)[0])
    assert seeded_copies(gym.wrappers.ClipReward(env, -1.0, 1.0), 3) is None
    assert seeded_copies(gym.make(env_id, render_mode="rgb_array"), 3) is None


def test_copies_of_an_env_without_a_time_limit_have_none():
    copies = seeded_copies(gym.make("CartPole-v1").unwrapped, 2)
    assert not isinstance(copies, NumpyVectorEnv)  # the numpy form would cut episodes at 500 steps
    assert copies.envs[0].spec.max_episode_steps is None


def test_act_batch_names_a_batch_of_the_wrong_shape():
    agent = rlzoo.make_agent("dqn", gym.make("CartPole-v1"), seed=0)
    assert agent.act_batch(np.zeros((5, 4), dtype=np.float32)).shape == (5,)
    with pytest.raises(ValueError, match=r"obs of shape \(4,\) is not a batch of observations .* give shape \(N, 4\)"):
        agent.act_batch(np.zeros(4, dtype=np.float32))
    agent.n_seeds = 2  # a seed batch's stacked agent would read the rows as its seeds
    with pytest.raises(ValueError, match=r"^this is a seed batch of 2 agents: act with one of its lanes$"):
        agent.act_batch(np.zeros((2, 4), dtype=np.float32))


def test_act_batch_of_an_agent_without_batched_networks_acts_row_by_row():
    env = gym.make(GRIDWORLD_ID)
    agent = rlzoo.make_agent("value_iteration", env, seed=0)
    agent.learn(50)
    states = np.arange(25)
    np.testing.assert_array_equal(agent.act_batch(states), [agent.act(int(s)) for s in states])
    with pytest.raises(ValueError, match=r"obs of shape \(\) is not a batch .* give shape \(N\)"):
        agent.act_batch(np.array(3))
