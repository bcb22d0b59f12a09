"""The numpy batch CartPole (``rlzoo.envs.vector_cartpole``) gives exactly the episodes of gymnasium's CartPole-v1 in
a ``SyncVectorEnv``, which is why ``vector_mode=auto`` may pick it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlzoo.envs import CartPoleVectorEnv, make_vec, step_vector_envs, vectorize


def sync_cartpoles(n: int, max_episode_steps: int = 500) -> SyncVectorEnv:
    return SyncVectorEnv([lambda: gym.make("CartPole-v1", max_episode_steps=max_episode_steps) for _ in range(n)],
                         autoreset_mode=AutoresetMode.SAME_STEP)  # fmt: skip


@pytest.mark.parametrize("max_episode_steps", [500, 30])
def test_every_step_equals_gymnasiums_cartpoles_bit_for_bit(max_episode_steps):
    n, rng = 6, np.random.default_rng(0)
    sync, batch = sync_cartpoles(n, max_episode_steps), CartPoleVectorEnv(n, max_episode_steps)
    assert np.array_equal(sync.reset(seed=11)[0], batch.reset(seed=11)[0])
    ends = 0
    for t in range(3000):
        actions = rng.integers(0, 2, n) if t % 4 else np.ones(n, dtype=np.int64)  # long and short episodes
        expected, got = sync.step(actions), batch.step(actions)
        for a, b in zip(expected[:4], got[:4], strict=True):
            assert np.array_equal(a, b) and a.dtype == b.dtype, t
        done = expected[2] | expected[3]
        for e in np.flatnonzero(done):
            assert np.array_equal(expected[4]["final_obs"][e], got[4]["final_obs"][e])
        ends += int(done.sum())
    assert ends > 100 and (max_episode_steps == 500 or expected[3].any() or ends > 300)


def test_seeds_per_copy_and_unseeded_resets():
    batch = CartPoleVectorEnv(3)
    listed, _ = batch.reset(seed=[5, 6, 7])
    assert np.array_equal(listed, CartPoleVectorEnv(3).reset(seed=5)[0])
    assert not np.array_equal(batch.reset()[0], listed)  # an unseeded reset draws on


def test_bad_actions_are_refused():
    batch = CartPoleVectorEnv(2)
    batch.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be 2 values in"):
        batch.step(np.array([0, 2]))


def test_auto_picks_it_for_plain_cartpole_only():
    assert isinstance(vectorize(gym.make("CartPole-v1"), 2), CartPoleVectorEnv)
    assert isinstance(make_vec({"id": "CartPole-v1", "max_episode_steps": 9}, 2, "numpy"), CartPoleVectorEnv)
    assert isinstance(vectorize(gym.make("CartPole-v1", sutton_barto_reward=True), 2), SyncVectorEnv)
    assert isinstance(vectorize(gym.make("CartPole-v1"), 2, "sync"), SyncVectorEnv)


def test_stepping_several_together_equals_stepping_each():
    rng = np.random.default_rng(1)
    alone = [CartPoleVectorEnv(n) for n in (2, 3, 1)]
    together = [CartPoleVectorEnv(n) for n in (2, 3, 1)]
    for k, (a, b) in enumerate(zip(alone, together, strict=True)):
        a.reset(seed=10 * k), b.reset(seed=10 * k)
    for _ in range(400):
        actions = [rng.integers(0, 2, env.num_envs) for env in alone]
        expected = [env.step(a) for env, a in zip(alone, actions, strict=True)]
        got = step_vector_envs(together, actions)
        for e, g in zip(expected, got, strict=True):
            for x, y in zip(e[:4], g[:4], strict=True):
                assert np.array_equal(x, y)
            assert e[4].keys() == g[4].keys()


def test_a_joined_env_steps_its_parts_as_stepping_them_together_does():
    """``NumpyVectorEnv.joined`` (a seed batch's lanes' envs as one): the parts' states become views of the joined
    env's, so after every joined step each part holds what stepping the parts together gives it."""
    rng = np.random.default_rng(2)
    reference = [CartPoleVectorEnv(n, 40) for n in (1, 2, 1)]
    parts = [CartPoleVectorEnv(n, 40) for n in (1, 2, 1)]
    for k, (a, b) in enumerate(zip(reference, parts, strict=True)):
        a.reset(seed=k), b.reset(seed=k)
    joined = CartPoleVectorEnv.joined(parts)
    assert joined.num_envs == 4 and joined.action_space.shape == (4,)
    for _ in range(300):
        actions = [rng.integers(0, 2, env.num_envs) for env in reference]
        expected = step_vector_envs(reference, actions)
        obs, rewards, terminated, truncated, infos = joined.step(np.concatenate(actions))
        assert np.array_equal(obs, np.concatenate([e[0] for e in expected]))
        assert np.array_equal(rewards, np.concatenate([e[1] for e in expected]))
        assert np.array_equal(truncated | terminated, np.concatenate([e[2] | e[3] for e in expected]))
        for part, ref in zip(parts, reference, strict=True):
            assert np.array_equal(part._state, ref._state) and np.array_equal(part._t, ref._t)
        if "final_obs" in infos:
            finals = [f for e in expected for f in (e[4]["final_obs"] if e[4] else [None] * len(e[0]))]
            for i in np.flatnonzero(infos["_final_obs"]):
                assert np.array_equal(infos["final_obs"][i], finals[i])
    with pytest.raises(ValueError, match="one time limit"):
        CartPoleVectorEnv.joined([CartPoleVectorEnv(1, 40), CartPoleVectorEnv(1, 50)])


def test_acting_env_a_lanes_numpy_form_or_the_env_itself():
    """An off-policy agent acts in ``acting_env``: a seed batch's lane in the numpy batch form (joinable), a single run
    in its own env (``OneEnvVector``), which autoresets in the step that ends an episode as a ``SyncVectorEnv`` does."""
    from rlzoo.envs import OneEnvVector, acting_env

    assert isinstance(acting_env(gym.make("CartPole-v1"), batch_lane=True), CartPoleVectorEnv)
    env = gym.make("CartPole-v1", max_episode_steps=7)
    one = acting_env(env, batch_lane=False)
    assert isinstance(one, OneEnvVector) and one.env is env
    sync = sync_cartpoles(1, 7)
    assert np.array_equal(one.reset(seed=3)[0], sync.reset(seed=3)[0])
    for t in range(30):
        actions = np.array([t % 2])
        mine, theirs = one.step(actions), sync.step(actions)
        for a, b in zip(mine[:4], theirs[:4], strict=True):
            assert np.array_equal(a, b) and a.dtype == b.dtype
        assert ("final_obs" in mine[4]) == bool(theirs[4])
        if theirs[4]:
            assert np.array_equal(mine[4]["final_obs"][0], theirs[4]["final_obs"][0])
