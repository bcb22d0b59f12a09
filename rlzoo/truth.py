"""Ground truth from an env's exact model: ``v*``, ``q*``, the optimal action sets, or ``v_π``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rlzoo.bellman import argmax_and_max, evaluate_exact, greedy, q_from_v, row_max, value_iteration
from rlzoo.envs.model import TabularModel


@dataclass(frozen=True)
class GroundTruth:
    """Exact values to report learners' errors against (``truth/value_error`` in TensorBoard)."""

    v: np.ndarray
    q: np.ndarray
    optimal_actions: np.ndarray | None  # (S, A) bool; None when the target is v_π of a fixed policy
    target: str  # "v*" or "v_pi"
    live: np.ndarray  # (S,) bool: states an agent acts from (not absorbing with zero reward)
    model: TabularModel
    gamma: float

    @classmethod
    def optimal(cls, model: TabularModel, gamma: float, atol: float = 1e-8) -> GroundTruth:
        """``v*`` by value iteration polished with exact policy iteration (exact to solver precision)."""
        v, _ = value_iteration(model, gamma, tol=1e-10)
        # on to 1e-13 of the values' scale: near-ties that 1e-10 leaves would each cost a polishing round below
        # (an exact solve), 65 of them on a 300×300 grid
        with np.errstate(over="ignore", invalid="ignore"):
            v, _ = value_iteration(model, gamma, tol=1e-13 * max(1.0, float(np.abs(v).max())), v0=v)
        policy = greedy(q_from_v(model, v, gamma))
        for _ in range(100):
            v = evaluate_exact(model, policy, gamma)
            q = q_from_v(model, v, gamma)
            # improve only where strictly better, so ties cannot make the policy cycle
            current = (policy * q).sum(axis=1)
            better = row_max(q) > current + 1e-12 * np.maximum(1.0, np.abs(current))
            if not better.any():
                break
            policy[better] = greedy(q[better])
        q = q_from_v(model, v, gamma)
        best = row_max(q)[:, None]
        return cls(v, q, q >= best - atol * np.maximum(1.0, np.abs(best)), "v*", live_states(model), model, gamma)

    @classmethod
    def of_policy(cls, model: TabularModel, policy: np.ndarray, gamma: float) -> GroundTruth:
        """``v_π`` and ``q_π`` of a fixed policy, by an exact linear solve."""
        v = evaluate_exact(model, policy, gamma)
        return cls(v, q_from_v(model, v, gamma), None, "v_pi", live_states(model), model, gamma)

    def value_error(self, v: np.ndarray) -> float:
        """‖v − v_target‖∞ over the live (non-terminal) states."""
        error = np.abs(np.asarray(v) - self.v)
        return float(np.max(error if self.all_live else error[self.live]))

    @cached_property
    def all_live(self) -> bool:
        """No terminal state (a continuing task): the errors need no mask."""
        return bool(self.live.all())

    def optimal_action_fraction(self, policy: np.ndarray) -> float:
        """Share of live states whose greedy action under ``policy`` is optimal."""
        if self.optimal_actions is None:
            raise ValueError("optimal actions are only known for a v* ground truth")
        actions = argmax_and_max(policy)[0]
        optimal = self.optimal_actions[np.arange(len(actions)), actions]
        return float((optimal if self.all_live else optimal[self.live]).mean())

    def scalars(self, policy: np.ndarray | None, v: np.ndarray | None, solve_policy: bool) -> dict[str, float]:
        """The ``truth/*`` figures of an agent's tables: its policy π (S, A) and state values ``v`` (S,), either
        may be None.

        - ``value_error`` = ‖v − v_target‖∞ (v* for control, v_π of the evaluated policy for evaluation);
        - for control: ``optimal_action_fraction`` of π's most probable actions and, with ``solve_policy``,
          ``policy_value_gap`` = ‖v_π − v*‖∞ (v_π solved exactly: one sparse solve) and ``critic_error`` =
          ‖v − v_π‖∞.
        """
        out: dict[str, float] = {}
        if v is not None:
            out["value_error"] = self.value_error(v)
        if policy is not None and self.optimal_actions is not None:
            out["optimal_action_fraction"] = self.optimal_action_fraction(policy)
        if policy is not None and self.optimal_actions is not None and solve_policy:
            v_pi = evaluate_exact(self.model, policy, self.gamma)
            out["policy_value_gap"] = float(np.max(np.abs(v_pi - self.v)[self.live]))
            if v is not None:
                out["critic_error"] = float(np.max(np.abs(np.asarray(v) - v_pi)[self.live]))
        return out


def live_states(model: TabularModel) -> np.ndarray:
    """States that are not terminal; terminal = absorbing with zero reward under every action."""
    stays = (model.next_states[..., 0] == np.arange(model.n_states)[:, None]) & (model.probs[..., 0] == 1.0)
    terminal = np.all(stays & (model.rewards == 0.0), axis=1)
    return ~terminal


def optimal_truth_and_states(env, gamma: float) -> tuple[GroundTruth | None, np.ndarray | None]:
    """For function-approximation agents: ``v*`` of the env's exact model and what the agent observes in every
    state (S, ...; vector observations flattened to float32 rows), or (None, None) when the env has no model
    or cannot render a state's observation."""
    from rlzoo.envs import model_of

    model = model_of(env)
    if model is None or not hasattr(env.unwrapped, "observation_of"):
        return None, None
    obs = np.asarray(env.unwrapped.observation_of(np.arange(model.n_states)))
    if obs.ndim > 1:
        obs = obs.reshape(model.n_states, -1).astype(np.float32)
    return GroundTruth.optimal(model, gamma), obs
