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
    live: np.ndarray  # (S,) bool: states an agent acts from (not absorbing with zero reward)

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
        return cls(v, q, q >= best - atol * np.maximum(1.0, np.abs(best)), "v*", live_states(model))

    @classmethod
    def of_policy(cls, model: TabularModel, policy: np.ndarray, gamma: float) -> GroundTruth:
        """``v_π`` and ``q_π`` of a fixed policy, by an exact linear solve."""
        v = evaluate_exact(model, policy, gamma)
        return cls(v, q_from_v(model, v, gamma), None, "v_pi", live_states(model))

    def value_error(self, v: np.ndarray) -> float:
        """‖v − v_target‖∞ over the live (non-terminal) states."""
        return float(np.max(np.abs(np.asarray(v) - self.v)[self.live]))

    def optimal_action_fraction(self, policy: np.ndarray) -> float:
        """Share of live states whose greedy action under ``policy`` is optimal."""
        if self.optimal_actions is None:
            raise ValueError("optimal actions are only known for a v* ground truth")
        actions = np.argmax(policy, axis=1)
        return float(self.optimal_actions[np.arange(len(actions)), actions][self.live].mean())


def live_states(model: TabularModel) -> np.ndarray:
    """States that are not terminal; terminal = absorbing with zero reward under every action."""
    stays = (model.next_states[..., 0] == np.arange(model.n_states)[:, None]) & (model.probs[..., 0] == 1.0)
    terminal = np.all(stays & (model.rewards == 0.0), axis=1)
    return ~terminal


@dataclass(frozen=True)
class FunctionTruth:
    """Ground truth for function-approximation agents: ``v*`` plus every state's observation."""

    truth: GroundTruth
    observations: np.ndarray  # (S, ...): what the agent sees in each state
    model: TabularModel
    gamma: float

    @classmethod
    def for_env(cls, env, gamma: float) -> FunctionTruth | None:
        """Available when the env exposes its model and can render any state's observation."""
        from rlzoo.envs import model_of

        base = env.unwrapped
        model = model_of(env)
        if model is None or not hasattr(base, "observation_of"):
            return None
        obs = np.asarray(base.observation_of(np.arange(model.n_states)))
        if obs.ndim > 1:
            obs = obs.reshape(model.n_states, -1).astype(np.float32)
        return cls(GroundTruth.optimal(model, gamma), obs, model, gamma)

    def summary(self, q: np.ndarray) -> dict[str, float | str]:
        policy = np.eye(q.shape[1])[np.argmax(q, axis=1)]
        return {"value_error": self.truth.value_error(q.max(axis=1)), "value_error_target": self.truth.target,
                "optimal_action_fraction": self.truth.optimal_action_fraction(policy)}  # fmt: skip

    def log(self, logger, q: np.ndarray, step: int) -> None:
        s = self.summary(q)
        logger.scalar("truth/value_error", s["value_error"], step)
        logger.scalar("truth/optimal_action_fraction", s["optimal_action_fraction"], step)

    def policy_summary(self, policy: np.ndarray, v: np.ndarray | None = None) -> dict[str, float | str]:
        """Ground truth of a stochastic policy table (S, A) and, if given, its critic's state values ``v``.

        ``policy_value_gap`` = ‖v_π − v*‖∞ (v_π solved exactly), ``optimal_action_fraction`` of the most
        probable actions; with a critic also ``value_error`` = ‖v − v*‖∞ and ``critic_error`` = ‖v − v_π‖∞.
        """
        v_pi = evaluate_exact(self.model, policy, self.gamma)
        live = self.truth.live
        out: dict[str, float | str] = {
            "optimal_action_fraction": self.truth.optimal_action_fraction(policy),
            "policy_value_gap": float(np.max(np.abs(v_pi - self.truth.v)[live])),
        }
        if v is not None:
            out.update(value_error=self.truth.value_error(v), value_error_target=self.truth.target,
                       critic_error=float(np.max(np.abs(np.asarray(v) - v_pi)[live])))  # fmt: skip
        return out

    def log_policy(self, logger, policy: np.ndarray, v: np.ndarray | None, step: int) -> dict[str, float | str]:
        """Log ``policy_summary`` under ``truth/…`` at ``step``; returns it."""
        s = self.policy_summary(policy, v)
        for key, value in s.items():
            if not isinstance(value, str):
                logger.scalar(f"truth/{key}", value, step)
        return s
