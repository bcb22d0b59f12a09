"""The exact model of a finite MDP in a compact successor form.

``P[s, a, s'] = sum_k probs[s, a, k] * 1[next_states[s, a, k] == s']`` and ``R[s, a]`` is the
expected immediate reward. K is small for grid worlds (1 when deterministic, 5 with slip),
so Bellman backups cost O(S·A·K) and a 100x100 world never needs a dense (S, A, S) array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TabularModel:
    """Transition model ``(next_states, probs)`` of shape (S, A, K) and expected rewards (S, A)."""

    next_states: np.ndarray
    probs: np.ndarray
    rewards: np.ndarray

    def __post_init__(self) -> None:
        if self.next_states.shape != self.probs.shape or self.next_states.shape[:2] != self.rewards.shape:
            raise ValueError(
                f"model shapes disagree: next_states {self.next_states.shape}, probs {self.probs.shape}, "
                f"rewards {self.rewards.shape}; expected (S, A, K), (S, A, K), (S, A)"
            )
        sums = self.probs.sum(axis=-1)
        if not np.allclose(sums, 1.0, atol=1e-9):
            s, a = np.argwhere(~np.isclose(sums, 1.0, atol=1e-9))[0]
            raise ValueError(f"transition probabilities of (s={s}, a={a}) sum to {sums[s, a]}, not 1")

    @property
    def n_states(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_actions(self) -> int:
        return self.rewards.shape[1]

    def expected_next(self, v: np.ndarray) -> np.ndarray:
        """``E[v(S') | s, a]`` for every (s, a): shape (S, A)."""
        if self.next_states.shape[2] == 1:
            return v[self.next_states[..., 0]]
        return np.einsum("sak,sak->sa", self.probs, v[self.next_states])

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``(P, R)`` with P of shape (S, A, S). Memory grows as S²·A: small worlds only."""
        S, A, K = self.next_states.shape
        P = np.zeros((S, A, S))
        s_idx, a_idx = np.meshgrid(np.arange(S), np.arange(A), indexing="ij")
        for k in range(K):
            np.add.at(P, (s_idx, a_idx, self.next_states[..., k]), self.probs[..., k])
        return P, self.rewards.copy()

    @classmethod
    def from_transitions(cls, P: dict, n_states: int, n_actions: int) -> TabularModel:
        """Build from gymnasium toy-text ``P[s][a] = [(prob, next_state, reward, terminated), ...]``.

        A state entered by a terminating transition is made absorbing with reward 0, so values are
        those of the episodic task (v = 0 after termination) even where the env's own ``P`` lets the
        terminal state move on (CliffWalking's goal does).
        """
        terminal = {int(ns) for s in range(n_states) for a in range(n_actions) for _, ns, _, done in P[s][a] if done}
        K = max(len(P[s][a]) for s in range(n_states) for a in range(n_actions))
        next_states = np.zeros((n_states, n_actions, K), dtype=np.int64)
        probs = np.zeros((n_states, n_actions, K))
        rewards = np.zeros((n_states, n_actions))
        for s in range(n_states):
            for a in range(n_actions):
                if s in terminal:
                    next_states[s, a, 0], probs[s, a, 0] = s, 1.0
                    continue
                for k, (p, ns, r, _) in enumerate(P[s][a]):
                    next_states[s, a, k], probs[s, a, k] = int(ns), p
                    rewards[s, a] += p * r
        return cls(next_states, probs, rewards)

    @classmethod
    def from_dense(cls, P: np.ndarray, R: np.ndarray) -> TabularModel:
        """Build the compact form from a dense ``P`` (S, A, S) and ``R`` (S, A)."""
        P = np.asarray(P, dtype=float)
        R = np.asarray(R, dtype=float)
        if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[:2] != R.shape:
            raise ValueError(f"expected P of shape (S, A, S) and R of shape (S, A), got {P.shape} and {R.shape}")
        K = max(1, int((P > 0).sum(axis=-1).max()))
        order = np.argsort(-P, axis=-1, kind="stable")[..., :K]
        probs = np.take_along_axis(P, order, axis=-1)
        return cls(order.astype(np.int64), probs, R)
