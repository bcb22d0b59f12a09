"""Shared fixtures and hypothesis strategies."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

import rlzoo  # noqa: F401  (registers envs)
from rlzoo.envs import GridWorld

if os.environ.get("PYTEST_XDIST_WORKER"):  # one pytest-xdist worker per core (pytest -n auto): one torch thread each
    torch.set_num_threads(1)


@st.composite
def layouts(draw, max_side: int = 6):
    """Random valid layouts: any size up to ``max_side``, random forbidden cells, one target."""
    n_rows = draw(st.integers(1, max_side))
    n_cols = draw(st.integers(2 if n_rows == 1 else 1, max_side))
    cells = draw(st.lists(st.sampled_from(".#F"), min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    target = draw(st.integers(0, n_rows * n_cols - 1))
    cells[target] = "T"
    return ["".join(cells[r * n_cols : (r + 1) * n_cols]) for r in range(n_rows)]


@pytest.fixture
def book_env() -> GridWorld:
    """The book's default 5x5 world (continuing, deterministic)."""
    return GridWorld()


def dense_policy_values(P: np.ndarray, R: np.ndarray, policy: np.ndarray, gamma: float) -> np.ndarray:
    """Closed form ``(I − γ P_π)⁻¹ r_π`` with dense numpy algebra (independent of rlzoo.bellman)."""
    P_pi = np.einsum("sa,sat->st", policy, P)
    r_pi = (policy * R).sum(axis=1)
    return np.linalg.solve(np.eye(len(r_pi)) - gamma * P_pi, r_pi)
