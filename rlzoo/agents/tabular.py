"""Shared base of tabular agents and planners: the tables ``v`` (S,), ``q`` (S, A), ``policy`` (S, A)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import gymnasium as gym
import numpy as np

from rlzoo.agents.base import Agent, require_discrete
from rlzoo.bellman import uniform_policy
from rlzoo.envs import model_of
from rlzoo.envs.model import TabularModel
from rlzoo.logging import RunLogger
from rlzoo.truth import GroundTruth


class TabularAgent(Agent):
    """An agent whose knowledge is a value table and a (stochastic) policy table over states."""

    family = "tabular"

    def __init__(self, env: gym.Env, config: Any = None, *, seed: int | None = None, **hyperparams: Any) -> None:
        super().__init__(env, config, seed=seed, **hyperparams)
        self.n_states = int(env.observation_space.n)
        self.n_actions = int(env.action_space.n)
        self.v = np.zeros(self.n_states)
        self.q = np.zeros((self.n_states, self.n_actions))
        self.policy = uniform_policy(self.n_states, self.n_actions)

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        require_discrete(cls, env)

    @cached_property
    def model(self) -> TabularModel | None:
        """The env's exact model, if it exposes one."""
        return model_of(self.env)

    @cached_property
    def truth(self) -> GroundTruth | None:
        """Exact ``v*`` (control) to measure against; None when the env has no model."""
        return None if self.model is None else GroundTruth.optimal(self.model, self.config.gamma)

    def log_truth(self, logger: RunLogger, step: int) -> None:
        """Log ``truth/value_error`` (and ``truth/optimal_action_fraction`` for v*) at ``step``."""
        truth = self.truth
        if truth is None:
            return
        logger.scalar("truth/value_error", truth.value_error(self.v), step)
        if truth.optimal_actions is not None:
            logger.scalar("truth/optimal_action_fraction", truth.optimal_action_fraction(self.policy), step)

    def summary(self) -> dict[str, Any]:
        truth = self.truth
        if truth is None:
            return {}
        out: dict[str, Any] = {"value_error": truth.value_error(self.v), "value_error_target": truth.target}
        if truth.optimal_actions is not None:
            out["optimal_action_fraction"] = truth.optimal_action_fraction(self.policy)
        return out

    def act(self, obs: Any, deterministic: bool = True) -> int:
        """Greedy (first maximising) action of ``policy[s]``, or a sample from it."""
        probs = self.policy[int(obs)]
        if deterministic:
            return int(np.argmax(probs))
        return int(self.rng.choice(self.n_actions, p=probs))

    def tables(self) -> dict[str, np.ndarray]:
        """The arrays written to ``tables.npz``."""
        return {"v": self.v.copy(), "q": self.q.copy(), "policy": self.policy.copy()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.tables()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.v, self.q, self.policy = (np.asarray(state[k], dtype=float) for k in ("v", "q", "policy"))
