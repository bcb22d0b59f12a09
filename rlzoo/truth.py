"""Ground truth from an env's exact model: ``v*``, ``q*``, the optimal action sets, or ``v_π``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlzoo.bellman import evaluate_exact, greedy, q_from_v, value_iteration
from rlzoo.envs.model import TabularModel


@dataclass(frozen=True)
class GroundTruth:
    """Exact values to report learners' errors against (``truth/value_error`` in TensorBoard)."""

    v: np.ndarray
    q: np.ndarray
    optimal_actions: np.ndarray | None  # (S, A) bool; None when the target is v_π of a fixed policy
    target: str  # "v*" or "v_pi"

    @classmethod
    def optimal(cls, model: TabularModel, gamma: float, atol: float = 1e-8) -> GroundTruth:
        """``v*`` by value iteration polished with exact policy iteration (exact to solver precision)."""
        v, _ = value_iteration(model, gamma, tol=1e-10)
        policy = greedy(q_from_v(model, v, gamma))
        for _ in range(100):
            v = evaluate_exact(model, policy, gamma)
            q = q_from_v(model, v, gamma)
            # improve only where strictly better, so ties cannot make the policy cycle
            current = (policy * q).sum(axis=1)
            better = q.max(axis=1) > current + 1e-12 * np.maximum(1.0, np.abs(current))
            if not better.any():
                break
            policy[better] = greedy(q[better])
        q = q_from_v(model, v, gamma)
        best = q.max(axis=1, keepdims=True)
        return cls(v, q, q >= best - atol * np.maximum(1.0, np.abs(best)), "v*")

    @classmethod
    def of_policy(cls, model: TabularModel, policy: np.ndarray, gamma: float) -> GroundTruth:
        """``v_π`` and ``q_π`` of a fixed policy, by an exact linear solve."""
        v = evaluate_exact(model, policy, gamma)
        return cls(v, q_from_v(model, v, gamma), None, "v_pi")

    def value_error(self, v: np.ndarray) -> float:
        """‖v − v_target‖∞."""
        return float(np.max(np.abs(np.asarray(v) - self.v)))

    def optimal_action_fraction(self, policy: np.ndarray) -> float:
        """Share of states whose greedy action under ``policy`` is optimal."""
        if self.optimal_actions is None:
            raise ValueError("optimal actions are only known for a v* ground truth")
        actions = np.argmax(policy, axis=1)
        return float(self.optimal_actions[np.arange(len(actions)), actions].mean())
