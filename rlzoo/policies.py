"""Action selection over value tables: greedy, ε-greedy, softmax (Boltzmann), uniform, fixed tables.

ε-greedy: π(a|s) = 1 − ε + ε/|A| for the greedy action, ε/|A| otherwise (S. Zhao, ch. 5).
Softmax: π(a|s) ∝ exp(q(s, a) / τ).
"""

from __future__ import annotations

import bisect
import math
import random
from pathlib import Path

import numpy as np

from rlzoo.bellman import greedy, uniform_policy
from rlzoo.config import ConfigError
from rlzoo.envs.model import TabularModel
from rlzoo.schedules import LinearSchedule

BEHAVIOURS = ("epsilon_greedy", "softmax", "uniform")


def greedy_action(row: list[float]) -> int:
    """First maximising action of a row of action values."""
    return row.index(max(row))


def epsilon_greedy_probs(q: np.ndarray, epsilon: float) -> np.ndarray:
    """ε-greedy probabilities for action values ``q`` of shape (..., A)."""
    n = q.shape[-1]
    probs = np.full(q.shape, epsilon / n)
    np.put_along_axis(probs, np.argmax(q, axis=-1)[..., None], 1.0 - epsilon + epsilon / n, axis=-1)
    return probs


def softmax_probs(q: np.ndarray, temperature: float) -> np.ndarray:
    """Boltzmann probabilities ``exp(q/τ) / Σ exp(q/τ)`` over the last axis."""
    z = (q - q.max(axis=-1, keepdims=True)) / temperature
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Behaviour:
    """An exploration policy derived from a Q-table row: ``epsilon_greedy`` | ``softmax`` | ``uniform``."""

    def __init__(self, kind: str, n_actions: int, epsilon: LinearSchedule, temperature: float) -> None:
        if kind not in BEHAVIOURS:
            raise ValueError(f"behavior={kind!r} is not allowed: choose one of {', '.join(BEHAVIOURS)}")
        self.kind = kind
        self.n_actions = n_actions
        self.epsilon = epsilon
        self.temperature = float(temperature)

    def sample(self, row: list[float], t: int, rng: random.Random) -> int:
        """Draw an action for a state with action values ``row`` at step ``t``."""
        if self.kind == "epsilon_greedy":
            if rng.random() < self.epsilon(t):
                return rng.randrange(self.n_actions)
            return row.index(max(row))
        if self.kind == "uniform":
            return rng.randrange(self.n_actions)
        return bisect.bisect_right(self._cumulative(row), rng.random() * (1 - 1e-12))

    def probs(self, row: list[float], t: int) -> list[float]:
        """π(·|s) for action values ``row`` at step ``t``."""
        n = self.n_actions
        if self.kind == "uniform":
            return [1.0 / n] * n
        if self.kind == "epsilon_greedy":
            eps = self.epsilon(t)
            out = [eps / n] * n
            out[row.index(max(row))] += 1.0 - eps
            return out
        m = max(row)
        e = [math.exp((x - m) / self.temperature) for x in row]
        total = sum(e)
        return [x / total for x in e]

    def table(self, q: np.ndarray, t: int) -> np.ndarray:
        """The policy table (S, A) for action values ``q`` at step ``t``."""
        if self.kind == "uniform":
            return uniform_policy(*q.shape)
        if self.kind == "epsilon_greedy":
            return epsilon_greedy_probs(q, self.epsilon(t))
        return softmax_probs(q, self.temperature)

    def _cumulative(self, row: list[float]) -> list[float]:
        acc, out = 0.0, []
        for p in self.probs(row, 0):
            acc += p
            out.append(acc)
        return out


class TablePolicy:
    """Samples actions from a fixed policy table (S, A); deterministic rows cost one lookup."""

    def __init__(self, policy: np.ndarray) -> None:
        self.policy = np.asarray(policy, dtype=float)
        self._fixed = [int(np.argmax(row)) if row.max() == 1.0 else -1 for row in self.policy]
        self._cum = [np.cumsum(row).tolist() for row in self.policy]

    def sample(self, s: int, rng: random.Random) -> int:
        a = self._fixed[s]
        if a >= 0:
            return a
        return min(bisect.bisect_right(self._cum[s], rng.random()), len(self._cum[s]) - 1)


def load_policy(spec: str, model: TabularModel | None, n_states: int, n_actions: int, gamma: float) -> np.ndarray:
    """The policy named by ``spec``: ``uniform``, ``optimal`` (greedy on the exact q*), or a ``tables.npz`` path."""
    if spec == "uniform":
        return uniform_policy(n_states, n_actions)
    if spec == "optimal":
        if model is None:
            raise ConfigError("algo.policy='optimal' needs an env that exposes its model")
        from rlzoo.truth import GroundTruth

        return greedy(GroundTruth.optimal(model, gamma).q)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"algo.policy={spec!r} is not allowed: use uniform, optimal or a tables.npz path")
    with np.load(path) as tables:
        policy = np.asarray(tables["policy"], dtype=float) if "policy" in tables else None
    expected = (n_states, n_actions)
    if policy is None or policy.shape != expected or not np.allclose(policy.sum(axis=1), 1.0):
        raise ConfigError(f"algo.policy={spec!r} must hold a 'policy' array of shape {expected} with rows summing to 1")
    return policy
