"""Bellman operators on a ``TabularModel`` (S. Zhao, *Mathematical Foundations of RL*, ch. 2–4).

q(s, a) = R(s, a) + γ Σ_s' P(s'|s, a) v(s');   v_π = r_π + γ P_π v_π;   v* = max_a q*(·, a).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from rlzoo.envs.model import TabularModel


def q_from_v(model: TabularModel, v: np.ndarray, gamma: float) -> np.ndarray:
    """Action values ``R + γ P v`` of shape (S, A)."""
    return model.rewards + gamma * model.expected_next(v)


def row_max(x: np.ndarray) -> np.ndarray:
    """``x.max(axis=1)`` of an (S, A) table: the same values (NaN where a row holds one; only a maximum of 0.0
    tied with −0.0 may take the other sign), reduced over a transposed copy, as NumPy reduces a short last axis
    one row at a time: 3.4 ms for 90 000 × 5, 0.3 ms this way."""
    return np.ascontiguousarray(x.T).max(axis=0)


def argmax_and_max(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(np.argmax(x, axis=1), x.max(axis=1))`` of an (S, A) table, the first maximising column on ties as
    ``np.argmax`` (which it is where a row holds NaN, or A > 8); several times faster for small A: the columns
    equal to the maximum are packed into the bits of one byte a row, whose highest set bit is the first of them."""
    n_cols = x.shape[1]
    xt = np.ascontiguousarray(x.T)
    best = xt.max(axis=0)
    if n_cols > 8 or np.isnan(best).any():
        return np.argmax(x, axis=1), best
    code = np.zeros(x.shape[0], dtype=np.uint8)
    for a in range(n_cols):
        code |= (xt[a] == best).view(np.uint8) << np.uint8(n_cols - 1 - a)
    return _FIRST_OF_CODE[n_cols][code], best


# _FIRST_OF_CODE[A][code]: the first of A columns whose bit is set in code (bit A-1 is column 0)
_FIRST_OF_CODE = {n: np.array([n - code.bit_length() for code in range(2**n)], dtype=np.intp) for n in range(1, 9)}


def greedy(q: np.ndarray) -> np.ndarray:
    """Deterministic greedy policy (S, A), one-hot on the first maximising action."""
    return greedy_and_max(q)[0]


def greedy_and_max(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``greedy(q)`` and ``max_a q`` (S,) from one pass over ``q``."""
    actions, best = argmax_and_max(q)
    policy = np.zeros_like(q, dtype=float)
    policy[np.arange(q.shape[0]), actions] = 1.0
    return policy, best


def uniform_policy(n_states: int, n_actions: int) -> np.ndarray:
    """π(a|s) = 1/A."""
    return np.full((n_states, n_actions), 1.0 / n_actions)


def policy_model(model: TabularModel, policy: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """``P_π`` as a sparse (S, S) matrix and ``r_π`` (S,) for a stochastic policy (S, A)."""
    S, A, K = model.next_states.shape
    weights = (policy[:, :, None] * model.probs).ravel()
    rows = np.repeat(np.arange(S), A * K)
    P_pi = sp.csr_matrix((weights, (rows, model.next_states.ravel())), shape=(S, S))
    return P_pi, (policy * model.rewards).sum(axis=1)


def evaluate_exact(model: TabularModel, policy: np.ndarray, gamma: float) -> np.ndarray:
    """Solve the Bellman equation ``(I − γ P_π) v = r_π`` exactly (sparse LU)."""
    P_pi, r_pi = policy_model(model, policy)
    A = sp.identity(model.n_states, format="csc") - gamma * P_pi.tocsc()
    return np.asarray(spsolve(A, r_pi), dtype=float)


def bellman_expectation(model: TabularModel, policy: np.ndarray, v: np.ndarray, gamma: float) -> np.ndarray:
    """One sweep ``v ← r_π + γ P_π v``."""
    return (policy * q_from_v(model, v, gamma)).sum(axis=1)


def evaluate_iterative(
    model: TabularModel,
    policy: np.ndarray,
    gamma: float,
    tol: float = 1e-10,
    max_sweeps: int = 100_000,
    v0: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Iterate ``v ← r_π + γ P_π v`` until ``‖Δv‖∞ < tol`` or ``max_sweeps``; returns (v, sweeps)."""
    v = np.zeros(model.n_states) if v0 is None else np.asarray(v0, dtype=float)
    for sweep in range(1, max_sweeps + 1):
        new = bellman_expectation(model, policy, v, gamma)
        delta = float(np.max(np.abs(new - v)))
        v = new
        if delta < tol:
            return v, sweep
    return v, max_sweeps


def value_iteration(
    model: TabularModel, gamma: float, tol: float = 1e-10, max_sweeps: int = 100_000, v0: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Iterate ``v ← max_a (R + γ P v)`` until ``‖Δv‖∞ < tol``; returns (v, sweeps)."""
    v = np.zeros(model.n_states) if v0 is None else np.asarray(v0, dtype=float)
    for sweep in range(1, max_sweeps + 1):
        new = row_max(q_from_v(model, v, gamma))
        delta = float(np.max(np.abs(new - v)))
        v = new
        if delta < tol:
            return v, sweep
    return v, max_sweeps
