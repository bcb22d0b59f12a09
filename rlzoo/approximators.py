"""Value-function approximators behind one interface, for V(s) and Q(s, ·).

- ``row(s)`` / ``value(s)``: the current estimate; ``update(...)``: a (semi-)gradient step toward
  a target with step size α; ``array()``: estimates for every state; ``state()``/``load_state()``.
- Tabular: one entry per state (V) or state-action pair (Q), kept in Python lists because per-step
  TD and MC updates touch single entries and list indexing is several times faster than numpy's.
- Linear in features: v̂ = φ(s)ᵀw, q̂(s, ·) = φ(s)ᵀW (``rlzoo.features`` builds φ).
- MLP (torch): ``mlp`` and ``q_network`` (plain or dueling head) for the deep agents.
"""

from __future__ import annotations

import numpy as np


class _ListTable:
    """Tabular storage in (nested) Python lists, ``data``; numpy in and out."""

    data: list

    def array(self) -> np.ndarray:
        """Estimates for every state: (S,) or (S, A)."""
        return np.array(self.data, dtype=float)

    def state(self) -> np.ndarray:
        return self.array()

    def load_state(self, values: np.ndarray) -> None:
        self.data = np.asarray(values, dtype=float).tolist()


class TabularQ(_ListTable):
    """Q(s, a) table: ``data[s][a]``."""

    def __init__(self, n_states: int, n_actions: int, init: float = 0.0) -> None:
        self.data = [[float(init)] * n_actions for _ in range(n_states)]

    def row(self, s: int) -> list[float]:
        """q(s, ·) (the stored list itself)."""
        return self.data[s]

    def update(self, s: int, a: int, target: float, alpha: float) -> None:
        """q(s, a) ← q(s, a) + α (target − q(s, a))."""
        row = self.data[s]
        row[a] += alpha * (target - row[a])


class TabularV(_ListTable):
    """V(s) table: ``data[s]``."""

    def __init__(self, n_states: int, init: float = 0.0) -> None:
        self.data = [float(init)] * n_states

    def value(self, s: int) -> float:
        return self.data[s]

    def update(self, s: int, target: float, alpha: float) -> None:
        """v(s) ← v(s) + α (target − v(s))."""
        self.data[s] += alpha * (target - self.data[s])


class _Linear:
    """Linear estimates ``φ(s)ᵀ w`` with the features of every state precomputed (``phi``: (S, k))."""

    def __init__(self, features: np.ndarray, width: tuple[int, ...]) -> None:
        self.phi = np.asarray(features, dtype=float)
        self.w = np.zeros((self.phi.shape[1], *width))

    def array(self) -> np.ndarray:
        return self.phi @ self.w

    def state(self) -> np.ndarray:
        return self.w.copy()

    def load_state(self, w: np.ndarray) -> None:
        self.w = np.asarray(w, dtype=float).copy()


class LinearQ(_Linear):
    """q(s, a) = φ(s)ᵀ W[:, a]; semi-gradient step W[:, a] += α (target − q(s, a)) φ(s)."""

    def __init__(self, features: np.ndarray, n_actions: int) -> None:
        super().__init__(features, (n_actions,))

    def row(self, s: int) -> list[float]:
        return (self.phi[s] @ self.w).tolist()

    def update(self, s: int, a: int, target: float, alpha: float) -> None:
        phi = self.phi[s]
        self.w[:, a] += alpha * (target - phi @ self.w[:, a]) * phi


class LinearV(_Linear):
    """v(s) = φ(s)ᵀ w; semi-gradient step w += α (target − v(s)) φ(s)."""

    def __init__(self, features: np.ndarray) -> None:
        super().__init__(features, ())

    def value(self, s: int) -> float:
        return float(self.phi[s] @ self.w)

    def update(self, s: int, target: float, alpha: float) -> None:
        phi = self.phi[s]
        self.w += alpha * (target - phi @ self.w) * phi


ACTIVATIONS = ("relu", "tanh", "elu")


def mlp(sizes: list[int], activation: str = "relu", activate_last: bool = False):
    """A torch MLP ``sizes[0] → … → sizes[-1]``, ``activation`` between layers (and after the last if asked)."""
    import torch.nn as nn

    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not supported: choose one of {', '.join(ACTIVATIONS)}")
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}[activation]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or activate_last:
            layers.append(act())
    return nn.Sequential(*layers)


def q_network(obs_dim: int, n_actions: int, hidden: list[int], activation: str = "relu", dueling: bool = False):
    """Q(s, ·) on an MLP; dueling: Q = V(s) + A(s, ·) − mean_a A(s, a) (Wang et al., 2016)."""
    import torch.nn as nn

    if not dueling:
        return mlp([obs_dim, *hidden, n_actions], activation)

    class DuelingQ(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = mlp([obs_dim, *hidden], activation, activate_last=True)
            self.value = nn.Linear(hidden[-1], 1)
            self.advantage = nn.Linear(hidden[-1], n_actions)

        def forward(self, x):
            h = self.body(x)
            adv = self.advantage(h)
            return self.value(h) + adv - adv.mean(dim=-1, keepdim=True)

    return DuelingQ()
