"""Rollout buffer and GAE(λ): hand-computed advantages, terminated vs truncated, Monte-Carlo returns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlzoo.buffers import RolloutBuffer, gae

GAMMA, LAM = 0.9, 0.5


def test_gae_by_hand_with_a_truncation_and_a_termination():
    # one env, 4 steps: step 1 is truncated (time limit; its true final state is worth 10),
    # step 3 terminates. Episodes: [0, 1] (cut, bootstrap 10) and [2, 3] (ends, no bootstrap).
    r = np.array([[1.0], [2.0], [3.0], [4.0]])
    v = np.array([[0.5], [1.0], [1.5], [2.0]])
    term = np.array([[False], [False], [False], [True]])
    trunc = np.array([[False], [True], [False], [False]])
    final = np.array([[0.0], [10.0], [0.0], [0.0]])
    last = np.array([100.0])  # after a terminal step: must not be used
    adv = gae(r, v, last, term, trunc, final, GAMMA, LAM)
    d3 = 4.0 - 2.0  # terminal: no bootstrap
    d2 = 3.0 + GAMMA * 2.0 - 1.5
    d1 = 2.0 + GAMMA * 10.0 - 1.0  # truncated: bootstrap from the final observation's value
    d0 = 1.0 + GAMMA * 1.0 - 0.5
    a3 = d3
    a2 = d2 + GAMMA * LAM * a3
    a1 = d1  # episode boundary: nothing flows back across it
    a0 = d0 + GAMMA * LAM * a1
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2, a3])


def test_gae_bootstraps_the_unfinished_tail_from_last_values():
    r, v = np.array([[1.0], [1.0]]), np.array([[0.0], [0.0]])
    no = np.zeros((2, 1), bool)
    adv = gae(r, v, np.array([5.0]), no, no, np.zeros((2, 1)), GAMMA, 1.0)
    np.testing.assert_allclose(adv[:, 0], [1 + GAMMA * (1 + GAMMA * 5.0), 1 + GAMMA * 5.0])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_lambda_one_with_zero_values_is_the_discounted_return(n_steps, n_envs, seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(n_steps, n_envs))
    term = rng.random((n_steps, n_envs)) < 0.3
    zeros = np.zeros((n_steps, n_envs))
    adv = gae(r, zeros, np.zeros(n_envs), term, np.zeros_like(term), zeros, GAMMA, 1.0)
    for e in range(n_envs):  # G_t = r_t + γ G_{t+1}, G reset at terminations
        g, expected = 0.0, []
        for t in reversed(range(n_steps)):
            g = r[t, e] + (0.0 if term[t, e] else GAMMA * g)
            expected.append(g)
        np.testing.assert_allclose(adv[:, e], expected[::-1], rtol=1e-10, atol=1e-10)


def test_lambda_zero_is_the_td_error():
    r, v = np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]])
    no = np.zeros((2, 1), bool)
    adv = gae(r, v, np.array([6.0]), no, no, np.zeros((2, 1)), GAMMA, 0.0)
    np.testing.assert_allclose(adv[:, 0], [1 + GAMMA * 4 - 3, 2 + GAMMA * 6 - 4])


def test_buffer_stores_computes_and_flattens():
    buf = RolloutBuffer(3, 2, (4,))
    for t in range(3):
        trunc = np.array([t == 1, False])
        buf.add(np.full((2, 4), t), [t, t], [0.0, 0.0], [1.0, 2.0], [1.0, 1.0], [False, t == 2], trunc)
        if trunc.any():
            buf.set_final_values(np.array([0]), np.array([7.0]))
    assert buf.full and buf.final_values[1, 0] == 7.0
    with pytest.raises(ValueError, match="holds 3 steps already"):
        buf.add(np.zeros((2, 4)), [0, 0], [0, 0], [0, 0], [0, 0], [False, False], [False, False])
    buf.compute_advantages(np.array([1.0, 2.0]), GAMMA, 1.0)
    np.testing.assert_allclose(buf.returns, buf.advantages + buf.values)
    assert buf.flat("obs").shape == (6, 4) and buf.flat("actions").tolist() == [0, 0, 1, 1, 2, 2]
    # env 1 terminates at the last step: its return is just that reward
    assert buf.returns[2, 1] == pytest.approx(1.0)
    # env 0 is truncated at step 1: returns restart there and bootstrap from 7
    assert buf.returns[1, 0] == pytest.approx(1.0 + GAMMA * 7.0)
