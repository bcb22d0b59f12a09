"""Replay buffer: ring wrap-around, shapes, truncation vs termination, n-step returns by hand."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlzoo.buffers import ReplayBuffer, SeedBatchReplay
from rlzoo.seed_stack import SeedGenerators


def add(buf, obs, action, reward, next_obs, terminated=False, truncated=False):
    buf.add(np.array([[obs]], np.float32), [action], [reward], np.array([[next_obs]], np.float32), [terminated],
            [truncated])  # fmt: skip


def test_wrap_around_keeps_the_newest_transitions():
    buf = ReplayBuffer(5, (1,), n_envs=1, n_step=1, gamma=0.9)
    for i in range(8):
        add(buf, i, i % 2, float(i), i + 1)
    assert (len(buf), buf.pos) == (5, 3)
    assert sorted(buf.obs[:, 0].tolist()) == [3, 4, 5, 6, 7]
    np.testing.assert_array_equal(buf.next_obs[:, 0], buf.obs[:, 0] + 1)
    np.testing.assert_array_equal(buf.rewards, buf.obs[:, 0])


def test_sample_shapes_and_dtypes():
    buf = ReplayBuffer(100, (4,), n_envs=2, n_step=1, gamma=0.99)
    for _ in range(10):
        buf.add(np.ones((2, 4)), [0, 1], [1.0, 2.0], np.zeros((2, 4)), [False, True], [False, False])
    batch = buf.sample(32, np.random.default_rng(0))
    assert batch.obs.shape == (32, 4) and batch.next_obs.shape == (32, 4) and batch.obs.dtype == np.float32
    assert batch.actions.shape == (32,) and batch.actions.dtype == np.int64
    assert batch.rewards.shape == batch.discounts.shape == (32,)
    assert set(batch.discounts.tolist()) == {0.0, np.float32(0.99)}  # env 1 terminated each step


def test_truncation_bootstraps_and_termination_does_not():
    buf = ReplayBuffer(4, (1,), n_envs=1, n_step=1, gamma=0.9)
    add(buf, 0, 0, 1.0, 1, truncated=True)
    add(buf, 1, 0, 1.0, 2, terminated=True)
    add(buf, 2, 0, 1.0, 3)
    np.testing.assert_allclose(buf.discounts[:3], [0.9, 0.0, 0.9])


def test_n_step_returns_by_hand():
    g = 0.5
    buf = ReplayBuffer(10, (1,), n_envs=1, n_step=3, gamma=g)
    rewards = [1.0, 2.0, 3.0, 4.0]
    for t, r in enumerate(rewards):
        add(buf, t, t, r, t + 1, terminated=(t == 3))
    assert len(buf) == 4
    order = np.argsort(buf.obs[:4, 0])
    got = np.array([(buf.obs[i, 0], buf.rewards[i], buf.next_obs[i, 0], buf.discounts[i]) for i in order])
    expected = [
        (0, 1 + g * 2 + g**2 * 3, 3, g**3),  # full 3-step return, bootstrap from s3
        (1, 2 + g * 3 + g**2 * 4, 4, 0.0),  # the window reaches the terminal step
        (2, 3 + g * 4, 4, 0.0),
        (3, 4, 4, 0.0),
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_n_step_flush_on_truncation_bootstraps_with_shorter_horizons():
    g = 0.5
    buf = ReplayBuffer(10, (1,), n_envs=1, n_step=3, gamma=g)
    add(buf, 0, 0, 1.0, 1)
    add(buf, 1, 0, 2.0, 2, truncated=True)
    order = np.argsort(buf.obs[:2, 0])
    np.testing.assert_allclose(buf.rewards[order], [1 + g * 2, 2])
    np.testing.assert_allclose(buf.discounts[order], [g**2, g])
    np.testing.assert_allclose(buf.next_obs[order, 0], [2, 2])


def test_memory_stays_flat_once_full():
    buf = ReplayBuffer(1000, (8,), n_envs=1, n_step=1, gamma=0.99)
    obs = np.ones((1, 8), np.float32)
    for _ in range(1000):
        buf.add(obs, [0], [0.0], obs, [False], [False])
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(5000):
        buf.add(obs, [0], [0.0], obs, [False], [False])
    growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert growth < 50_000  # bytes: nothing proportional to the 5000 adds


@settings(max_examples=40, deadline=None)
@given(capacity=st.integers(1, 20), steps=st.lists(st.tuples(st.floats(-5, 5), st.booleans(), st.booleans()),
                                                     max_size=60))  # fmt: skip
def test_matches_a_list_reference(capacity, steps):
    buf, reference = ReplayBuffer(capacity, (1,), n_envs=1, n_step=1, gamma=0.9), []
    for i, (r, term, trunc) in enumerate(steps):
        add(buf, i, i % 3, r, i + 1, terminated=term, truncated=trunc)
        reference.append((i, i % 3, r, i + 1, 0.0 if term else 0.9))
    kept = reference[-capacity:] if reference else []
    stored = sorted(zip(buf.obs[: len(buf), 0], buf.actions[: len(buf)], buf.rewards[: len(buf)],
                        buf.next_obs[: len(buf), 0], buf.discounts[: len(buf)], strict=True))  # fmt: skip
    assert len(stored) == len(kept)
    if kept:
        # rewards are stored as float32: relative 1e-6, and absolute 1e-6 for tiny values that flush to 0
        np.testing.assert_allclose(np.array(stored, dtype=float), np.array(kept, dtype=float), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n_step", [1, 3])
def test_a_seed_batch_stores_and_samples_what_each_seeds_own_buffer_does(n_step):
    """``SeedBatchReplay``: one write and one gather for K seeds give each seed's buffer exactly the transitions and
    minibatches its own ``add`` and ``sample_tensors`` give (its slice of the stacked storage), through a wrap-around
    and episode ends at different steps per seed."""
    k, rng = 3, np.random.default_rng(0)
    alone = [ReplayBuffer(7, (2,), (1,), action_dtype=np.float32, n_envs=1, n_step=n_step, gamma=0.9)
             for _ in range(k)]  # fmt: skip
    batched = [ReplayBuffer(7, (2,), (1,), action_dtype=np.float32, n_envs=1, n_step=n_step, gamma=0.9)
               for _ in range(k)]  # fmt: skip
    batch = SeedBatchReplay(batched)
    for _ in range(12):
        step = (rng.normal(size=(k, 2)), rng.normal(size=(k, 1)), rng.normal(size=k), rng.normal(size=(k, 2)),
                rng.random(k) < 0.2, rng.random(k) < 0.1)  # fmt: skip
        for s, buffer in enumerate(alone):
            buffer.add(*(part[s : s + 1] for part in step))
        batch.add(*step)
    for mine, theirs in zip(alone, batched, strict=True):
        assert (mine.pos, mine.size) == (theirs.pos, theirs.size)
        for name in ("obs", "actions", "rewards", "next_obs", "discounts"):
            np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name))
    sampled = batch.sample_tensors(5, SeedGenerators([np.random.default_rng(s) for s in range(k)]))
    for s, buffer in enumerate(alone):
        own = buffer.sample_tensors(5, np.random.default_rng(s))
        for name in ("obs", "actions", "rewards", "next_obs", "discounts"):
            assert torch.equal(getattr(sampled, name)[s], getattr(own, name)), name
