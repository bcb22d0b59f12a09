"""Shared base of tabular agents and planners: the tables ``v`` (S,), ``q`` (S, A), ``policy`` (S, A)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import gymnasium as gym
import numpy as np

from rlzoo.agents.base import Agent, require_discrete
from rlzoo.approximators import LinearQ, LinearV, TabularQ, TabularV
from rlzoo.bellman import greedy, uniform_policy
from rlzoo.config import ConfigError, DiscountedConfig, param
from rlzoo.envs import model_of
from rlzoo.envs.model import TabularModel
from rlzoo.features import FEATURES, state_feature_table
from rlzoo.logging import RunLogger
from rlzoo.policies import BEHAVIOURS, Behaviour, load_policy
from rlzoo.schedules import SCHEDULES, LinearSchedule, StepSize
from rlzoo.truth import GroundTruth


class TabularAgent(Agent):
    """An agent whose knowledge is a value table and a (stochastic) policy table over states."""

    family = "tabular"

    def setup(self) -> None:
        self.n_states = int(self.env.observation_space.n)
        self.n_actions = int(self.env.action_space.n)
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
        if self.model is None:
            return None
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing world is reported by the NaN/inf guard
            return GroundTruth.optimal(self.model, self.config.gamma)

    def truth_tables(self) -> tuple[np.ndarray, np.ndarray]:
        return self.policy, self.v

    def watched(self) -> dict[str, Any]:
        return {"tables/v": self.v, "tables/q": self.q}

    def _act(self, obs: Any, deterministic: bool = True) -> int:
        """Greedy (first maximising) action of ``policy[s]``, or a sample from it."""
        probs = self.policy[int(obs)]
        if deterministic:
            return int(np.argmax(probs))
        return int(self.rng.choice(self.n_actions, p=probs))

    def tables(self) -> dict[str, np.ndarray]:
        """The arrays written to ``tables.npz``."""
        return {"v": self.v.copy(), "q": self.q.copy(), "policy": self.policy.copy()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.tables(), "converged": self.finished}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.v, self.q, self.policy = (np.asarray(state[k], dtype=float) for k in ("v", "q", "policy"))
        self.finished = bool(state["converged"])


@dataclass
class TabularLearnerConfig(DiscountedConfig):
    """Model-free tabular learners: how often (env steps) ground truth is logged."""

    log_every: int = param(1000, ge=1)


@dataclass
class StepSizeConfig:
    """Step size: constant ``alpha`` or Robbins–Monro ``alpha / N(s, a)^alpha_power``."""

    alpha: float = param(0.1, gt=0.0, le=1.0)
    alpha_schedule: str = param("constant", choices=SCHEDULES)
    alpha_power: float = param(1.0, gt=0.5, le=1.0)


@dataclass
class ApproximatorConfig:
    """Value function: a table, or linear in features of the state (one-hot = tabular)."""

    approximator: str = param("tabular", choices=("tabular", "linear"))
    features: str = param("onehot", choices=FEATURES)
    feature_order: int = param(3, ge=1, help="polynomial degree / Fourier order")
    tilings: int = param(8, ge=1)
    tiles: int = param(4, ge=1)


@dataclass
class ExplorationConfig:
    """Behaviour policy: ε-greedy (ε decays linearly to ``epsilon_final`` over ``epsilon_decay_steps``),
    softmax with ``temperature``, or uniform."""

    behavior: str = param("epsilon_greedy", choices=BEHAVIOURS)
    epsilon: float = param(0.1, ge=0.0, le=1.0)
    epsilon_final: float | None = param(None, ge=0.0, le=1.0)
    epsilon_decay_steps: int = param(0, ge=0)
    temperature: float = param(1.0, gt=0.0)


class TabularLearner(TabularAgent):
    """Base of model-free tabular agents: ``advance`` runs ``_run(n_steps, logger)`` then ``sync_tables``.

    Subclasses set ``table`` (their approximator, saved in checkpoints), implement ``_run`` (advance
    ``num_timesteps`` by about ``n_steps`` env steps) and ``sync_tables`` (refresh the numpy ``v``, ``q``,
    ``policy`` from ``table``). The config's mixins add a ``step_size`` (``StepSizeConfig``; else None) and a
    ``behaviour`` policy (``ExplorationConfig``).
    """

    live_parts = ("env", "_obs", "_episode")

    def setup(self) -> None:
        super().setup()
        cfg = self.config
        self.py_rng = random.Random(self.seed)
        size = self.n_states * self.n_actions
        self.step_size = (
            StepSize(cfg.alpha, cfg.alpha_schedule, cfg.alpha_power, size) if isinstance(cfg, StepSizeConfig) else None
        )
        if isinstance(cfg, ExplorationConfig):
            eps = LinearSchedule(cfg.epsilon, cfg.epsilon_final, cfg.epsilon_decay_steps)
            self.behaviour = Behaviour(cfg.behavior, self.n_actions, eps, cfg.temperature)
        self._obs: int | None = None  # the env's current state (None: reset it before the next step)
        self._episode = (0.0, 0)  # return and length of the running episode

    def make_approximator(self, kind: str = "q"):
        """The Q (or V) approximator named by ``algo.approximator`` (tabular when the config has none)."""
        cfg = self.config
        if not isinstance(cfg, ApproximatorConfig) or cfg.approximator == "tabular":
            return TabularQ(self.n_states, self.n_actions) if kind == "q" else TabularV(self.n_states)
        try:
            phi = state_feature_table(self.env, cfg.features, order=cfg.feature_order, tilings=cfg.tilings,
                                      tiles=cfg.tiles)  # fmt: skip
        except ValueError as err:
            raise ConfigError(f"algo.features={cfg.features!r}: {err}") from None
        return LinearQ(phi, self.n_actions) if kind == "q" else LinearV(phi)

    def begin(self, total_steps: int, logger: RunLogger) -> None:
        super().begin(total_steps, logger)
        if self._obs is None:  # a fresh start, or a resume that could not restore the env (env_seed: not episode 1)
            self._obs = int(self.env.reset(seed=self.env_seed())[0])

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        self._run(n_steps, logger)
        self.sync_tables()
        return {}

    def _run(self, n_steps: int, logger: RunLogger) -> None:
        raise NotImplementedError

    def sync_tables(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "py_rng": self.py_rng.getstate(),
            "step_counts": np.asarray(self.step_size.counts if self.step_size else [], dtype=np.int64),
            "approximator": self.table.state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.table.load_state(state["approximator"])
        self.py_rng.setstate(state["py_rng"])
        if self.step_size is not None:
            self.step_size.counts = [int(c) for c in state["step_counts"]]


class QTableLearner(TabularLearner):
    """A tabular learner whose working table is Q(s, a) (``TabularQ``); ``v = max_a q``."""

    def setup(self) -> None:
        super().setup()
        self.table = self.make_approximator("q")

    def current_policy(self) -> np.ndarray:
        """The policy table reported as ``policy``: greedy on q unless a subclass learns its behaviour."""
        return greedy(self.q)

    def sync_tables(self) -> None:
        self.q = self.table.array()
        self.v = self.q.max(axis=1)
        self.policy = self.current_policy()


class FixedPolicyEvaluation:
    """Mixin for evaluation algorithms: the policy named by ``algo.policy`` and its exact ``v_π`` as truth."""

    @cached_property
    def fixed_policy(self) -> np.ndarray:
        return load_policy(self.config.policy, self.model, self.n_states, self.n_actions, self.config.gamma)

    @cached_property
    def truth(self) -> GroundTruth | None:
        return None if self.model is None else GroundTruth.of_policy(self.model, self.fixed_policy, self.config.gamma)
