"""Planners: dynamic programming on the env's exact model (S. Zhao, ch. 4).

One loop serves all of them. Each iteration improves the policy greedily on the current
``q`` (except policy evaluation, whose policy is fixed) and then evaluates it:

- value iteration: one Bellman sweep, ``v ← max_a q`` (truncated PI with one sweep);
- truncated policy iteration: ``eval_sweeps`` sweeps of ``v ← r_π + γ P_π v``;
- policy iteration: exact evaluation (sparse linear solve) or iterative to ``eval_tol``;
- policy evaluation: ``v_π`` of a fixed policy, exactly or by sweeps.

Iteration stops when ``‖v_k − v_{k−1}‖∞ < tol`` or after ``total_steps`` iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlzoo.agents.registry import register_agent
from rlzoo.agents.tabular import FixedPolicyEvaluation, TabularAgent
from rlzoo.bellman import (
    bellman_expectation,
    evaluate_exact,
    evaluate_iterative,
    greedy,
    q_from_v,
    uniform_policy,
)
from rlzoo.config import ConfigError, DiscountedConfig, param
from rlzoo.envs import model_of
from rlzoo.logging import RunLogger


@dataclass
class PlannerConfig(DiscountedConfig):
    """Planners: stop when the max-norm value change is below ``tol``; ``total_steps`` caps iterations."""

    tol: float = param(1e-8, gt=0.0)


@dataclass
class PolicyIterationConfig(PlannerConfig):
    eval_method: str = param("exact", choices=("exact", "iterative"))
    eval_tol: float = param(1e-10, gt=0.0)
    eval_max_sweeps: int = param(100_000, ge=1)


@dataclass
class TruncatedPolicyIterationConfig(PlannerConfig):
    eval_sweeps: int = param(5, ge=1)


@dataclass
class PolicyEvaluationConfig(PlannerConfig):
    policy: str = param("uniform", help="uniform | optimal | path to a tables.npz with a 'policy' array")
    method: str = param("exact", choices=("exact", "iterative"))


class Planner(TabularAgent):
    """Base of the dynamic-programming planners; needs an env that exposes ``model()``."""

    family = "planning"

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        if model_of(env) is None:
            raise ConfigError(
                f"algo={cls.name} plans on the env's exact model, but {env.spec.id if env.spec else env} "
                "exposes none (model() or tabular_model()); use a model-free algorithm"
            )
        super().check_env(env)

    def setup(self) -> None:
        super().setup()
        self.q = self.model.rewards.copy()
        self.policy = self.initial_policy()

    def initial_policy(self) -> np.ndarray:
        return uniform_policy(self.n_states, self.n_actions)

    def improve(self, q: np.ndarray) -> np.ndarray:
        """Policy improvement: greedy on ``q``."""
        return greedy(q)

    def evaluate(self, policy: np.ndarray, v: np.ndarray, q: np.ndarray) -> np.ndarray:
        """(Partial) policy evaluation of ``policy`` starting from ``v`` (whose action values are ``q``)."""
        raise NotImplementedError

    def is_converged(self, delta: float) -> bool:
        return delta < self.config.tol

    log_every = 1  # every iteration is a log point

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """One iteration: improve greedily on q (not for policy evaluation), evaluate, and stop once
        ‖v_k − v_{k−1}‖∞ < tol."""
        policy = self.improve(self.q)
        v = self.evaluate(policy, self.v, self.q)
        delta = float(np.max(np.abs(v - self.v)))
        self.v, self.q = v, q_from_v(self.model, v, self.config.gamma)
        self.policy = self.improve(self.q)
        self.num_timesteps += 1
        self.finished = self.is_converged(delta)
        return {"value_change": delta}

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "converged": self.finished, "iterations": self.num_timesteps}


@register_agent
class ValueIteration(Planner):
    """Value iteration: ``v_{k+1}(s) = max_a [R(s,a) + γ Σ_s' P(s'|s,a) v_k(s')]`` (Bellman optimality)."""

    name = "value_iteration"
    Config = PlannerConfig

    def evaluate(self, policy: np.ndarray, v: np.ndarray, q: np.ndarray) -> np.ndarray:
        return (policy * q).sum(axis=1)  # = max_a q for the greedy policy


@register_agent
class TruncatedPolicyIteration(Planner):
    """Truncated policy iteration: greedy improvement, then ``eval_sweeps`` sweeps of ``v ← r_π + γ P_π v``."""

    name = "truncated_policy_iteration"
    Config = TruncatedPolicyIterationConfig

    def evaluate(self, policy: np.ndarray, v: np.ndarray, q: np.ndarray) -> np.ndarray:
        v = (policy * q).sum(axis=1)
        for _ in range(self.config.eval_sweeps - 1):
            v = bellman_expectation(self.model, policy, v, self.config.gamma)
        return v


@register_agent
class PolicyIteration(Planner):
    """Policy iteration: exact ``v_π = (I − γ P_π)⁻¹ r_π`` (or iterative) then greedy improvement."""

    name = "policy_iteration"
    Config = PolicyIterationConfig

    def evaluate(self, policy: np.ndarray, v: np.ndarray, q: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.eval_method == "exact":
            return evaluate_exact(self.model, policy, cfg.gamma)
        return evaluate_iterative(self.model, policy, cfg.gamma, cfg.eval_tol, cfg.eval_max_sweeps, v0=v)[0]


@register_agent
class PolicyEvaluation(FixedPolicyEvaluation, Planner):
    """Policy evaluation of a fixed policy: solve ``v = r_π + γ P_π v`` exactly, or by sweeps."""

    name = "policy_evaluation"
    Config = PolicyEvaluationConfig

    def initial_policy(self) -> np.ndarray:
        return self.fixed_policy

    def improve(self, q: np.ndarray) -> np.ndarray:
        return self.fixed_policy

    def evaluate(self, policy: np.ndarray, v: np.ndarray, q: np.ndarray) -> np.ndarray:
        if self.config.method == "exact":
            return evaluate_exact(self.model, policy, self.config.gamma)
        return (policy * q).sum(axis=1)

    def is_converged(self, delta: float) -> bool:
        return self.config.method == "exact" or super().is_converged(delta)
