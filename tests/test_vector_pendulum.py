"""The numpy batch Pendulum (``envs.vector_pendulum``) gives exactly the episodes of gymnasium's Pendulum-v1 in a
``SyncVectorEnv``, which is why ``vector_mode=auto`` may pick it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlzoo.envs import PendulumVectorEnv, make_vec, step_vector_envs, vectorize


def sync_pendulums(n: int, max_episode_steps: int, g: float = 10.0) -> SyncVectorEnv:
    return SyncVectorEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=max_episode_steps, g=g)
                          for _ in range(n)], autoreset_mode=AutoresetMode.SAME_STEP)  # fmt: skip


@pytest.mark.parametrize(("max_episode_steps", "g", "dtype"), [(200, 10.0, np.float32), (37, 9.81, np.float64)])
def test_every_step_equals_gymnasiums_pendulums_bit_for_bit(max_episode_steps, g, dtype):
    n, rng = 5, np.random.default_rng(0)
    sync, batch = sync_pendulums(n, max_episode_steps, g), PendulumVectorEnv(n, max_episode_steps, g=g)
    assert np.array_equal(sync.reset(seed=7)[0], batch.reset(seed=7)[0])
    ends = 0
    for _ in range(1000):
        actions = rng.uniform(-3.0, 3.0, (n, 1)).astype(dtype)  # beyond the torque limit too: both clip
        expected, got = sync.step(actions), batch.step(actions)
        for a, b in zip(expected[:4], got[:4], strict=True):
            assert np.array_equal(a, b) and a.dtype == b.dtype
        for e in np.flatnonzero(expected[3]):
            assert np.array_equal(expected[4]["final_obs"][e], got[4]["final_obs"][e])
        ends += int(expected[3].sum())
    assert ends == n * (1000 // max_episode_steps)


def test_bad_actions_and_mixed_gravities_are_refused():
    batch = PendulumVectorEnv(2)
    batch.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 1\).*got shape \(2,\)"):
        batch.step(np.zeros(2))
    other = PendulumVectorEnv(1, g=9.81)
    other.reset(seed=1)
    with pytest.raises(ValueError, match=r"share their parameters, not \[\(\('g', 9.81\),\), \(\('g', 10.0\),\)\]"):
        step_vector_envs([batch, other], [np.zeros((2, 1)), np.zeros((1, 1))])


def test_auto_picks_it_for_plain_pendulum_only():
    assert isinstance(vectorize(gym.make("Pendulum-v1"), 2), PendulumVectorEnv)
    assert vectorize(gym.make("Pendulum-v1", g=9.81), 2).g == 9.81
    assert isinstance(make_vec({"id": "Pendulum-v1", "max_episode_steps": 9}, 2, "numpy"), PendulumVectorEnv)
    assert isinstance(vectorize(gym.make("Pendulum-v1", render_mode="rgb_array"), 2), SyncVectorEnv)
    assert isinstance(vectorize(gym.make("Pendulum-v1"), 2, "sync"), SyncVectorEnv)


def test_stepping_several_together_equals_stepping_each():
    rng = np.random.default_rng(1)
    alone = [PendulumVectorEnv(n, 50) for n in (2, 3, 1)]
    together = [PendulumVectorEnv(n, 50) for n in (2, 3, 1)]
    for k, (a, b) in enumerate(zip(alone, together, strict=True)):
        a.reset(seed=10 * k), b.reset(seed=10 * k)
    for _ in range(120):
        actions = [rng.uniform(-2.0, 2.0, (env.num_envs, 1)) for env in alone]
        expected = [env.step(a) for env, a in zip(alone, actions, strict=True)]
        for e, g in zip(expected, step_vector_envs(together, actions), strict=True):
            for x, y in zip(e[:4], g[:4], strict=True):
                assert np.array_equal(x, y)
            assert e[4].keys() == g[4].keys()
