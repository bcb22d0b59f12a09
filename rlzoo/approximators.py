"""Value-function approximators. Tabular: one entry per state (V) or state-action pair (Q).

The tables keep Python lists of floats: per-step TD and MC updates touch single entries, and
list indexing is several times faster than numpy scalar access. ``array()`` gives numpy views
for logging, evaluation and saving.
"""

from __future__ import annotations

import numpy as np


class TabularQ:
    """Q(s, a) table: ``rows[s][a]``."""

    def __init__(self, n_states: int, n_actions: int, init: float = 0.0) -> None:
        self.rows = [[float(init)] * n_actions for _ in range(n_states)]

    def array(self) -> np.ndarray:
        return np.array(self.rows, dtype=float)

    def load(self, q: np.ndarray) -> None:
        self.rows = np.asarray(q, dtype=float).tolist()


class TabularV:
    """V(s) table: ``values[s]``."""

    def __init__(self, n_states: int, init: float = 0.0) -> None:
        self.values = [float(init)] * n_states

    def array(self) -> np.ndarray:
        return np.array(self.values, dtype=float)

    def load(self, v: np.ndarray) -> None:
        self.values = np.asarray(v, dtype=float).tolist()
