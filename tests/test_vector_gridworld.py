"""The vectorized GridWorld steps exactly like N single GridWorlds."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlzoo.envs import GRIDWORLD_ID, GridWorld, GridWorldVectorEnv


def test_matches_single_envs_step_for_step():
    n = 16
    vec = GridWorldVectorEnv(n, obs="index")
    singles = [GridWorld() for _ in range(n)]
    starts = np.arange(n) % 25
    obs, _ = vec.reset(seed=0, options={"state": starts})
    for env, s in zip(singles, starts, strict=True):
        env.reset(options={"state": int(s)})
    rng = np.random.default_rng(0)
    for _ in range(50):
        actions = rng.integers(0, 5, n)
        obs, rew, term, trunc, _ = vec.step(actions)
        expected = [env.step(int(a)) for env, a in zip(singles, actions, strict=True)]
        np.testing.assert_array_equal(obs, [e[0] for e in expected])
        np.testing.assert_array_equal(rew, [e[1] for e in expected])
        assert not term.any() and not trunc.any()


def test_autoreset_same_step_reports_final_obs():
    vec = GridWorldVectorEnv(3, episodic=True, start=[4, 2], max_episode_steps=2)
    vec.reset(seed=0)
    obs, rew, term, trunc, info = vec.step(np.array([0, 4, 4]))  # env 0 enters the target
    assert term.tolist() == [True, False, False] and rew[0] == 1.0
    assert info["_final_obs"].tolist() == [True, False, False] and info["final_obs"][0] == 3 * 5 + 2
    assert obs[0] == 4 * 5 + 2  # already reset to the start
    obs, _, term, trunc, info = vec.step(np.array([4, 4, 4]))
    assert trunc.tolist() == [False, True, True] and info["_final_obs"].tolist() == [False, True, True]


@pytest.mark.parametrize("obs_mode", ["onehot", "coords"])
def test_observation_modes_batch(obs_mode):
    vec = GridWorldVectorEnv(4, obs=obs_mode)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (4, *vec.single_observation_space.shape)
    assert vec.observation_space.contains(obs)


def test_make_vec_uses_the_numpy_batch():
    vec = gym.make_vec(GRIDWORLD_ID, num_envs=8, vectorization_mode="vector_entry_point")
    assert isinstance(vec.unwrapped, GridWorldVectorEnv)
    obs, _ = vec.reset(seed=3)
    assert obs.shape == (8,)


def test_bad_actions_are_named():
    vec = GridWorldVectorEnv(2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"must be in 0\.\.4"):
        vec.step(np.array([0, 9]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        vec.step(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="max_episode_steps=0 must be a positive integer"):
        GridWorldVectorEnv(2, max_episode_steps=0)


def test_slip_distribution_matches_model():
    vec = GridWorldVectorEnv(20_000, slip=0.4)
    vec.reset(seed=0, options={"state": 12})
    obs = vec.step(np.full(20_000, 1))[0]
    P, _ = GridWorld(slip=0.4).model()
    np.testing.assert_allclose(np.bincount(obs, minlength=25) / 20_000, P[12, 1], atol=0.015)


@pytest.mark.parametrize("mode", ["numpy", "sync", "async"])
def test_make_vec_autoresets_in_the_same_step_with_final_obs(mode):
    from rlzoo.envs import make_vec

    cfg = {"id": GRIDWORLD_ID, "episodic": True, "start": [4, 2], "max_episode_steps": 3, "obs": "onehot"}
    vec = make_vec(cfg, 2, mode)
    try:
        obs, _ = vec.reset(seed=0)
        obs, rew, term, _, info = vec.step(np.array([0, 4]))  # copy 0 enters the target
        assert term.tolist() == [True, False] and rew[0] == 1.0
        assert info["_final_obs"][0] and np.argmax(info["final_obs"][0]) == 3 * 5 + 2  # true last observation
        assert np.argmax(obs[0]) == 4 * 5 + 2  # already the next episode's first
    finally:
        vec.close()


def test_make_vec_wraps_any_registered_env():
    from rlzoo.envs import make_vec

    vec = make_vec({"id": "CartPole-v1", "max_episode_steps": 2}, 3, "sync")
    vec.reset(seed=0)
    vec.step(np.zeros(3, dtype=np.int64))
    _, _, _, trunc, info = vec.step(np.zeros(3, dtype=np.int64))
    assert trunc.all() and info["_final_obs"].all() and np.stack(list(info["final_obs"])).shape == (3, 4)
    with pytest.raises(ValueError, match="'numpy' exists for rlzoo/GridWorld-v0, CartPole-v1, Pendulum-v1 only"):
        make_vec({"id": "MountainCar-v0"}, 2, "numpy")
