"""Monte Carlo control on tables (S. Zhao, ch. 5).

- MC Basic: policy iteration whose q_{π_k}(s, a) is the mean return of ``episodes_per_pair``
  episodes of length ``episode_length`` started from every (s, a), then π_{k+1} = greedy(q).
- MC Exploring Starts: episodes from uniformly random (s, a), greedy policy afterwards;
  q(s, a) moves toward the return G_t at first (or every) visits.
- MC ε-greedy: on-policy control; episodes from the env's start distribution under ε-greedy(q).

Returns: G_t = r_t + γ G_{t+1} within an episode of at most ``episode_length`` steps (ended early
by termination). With ``alpha=1, alpha_schedule=robbins_monro, alpha_power=1`` the update is the
running sample mean of returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rlzoo.agents.registry import register_agent
from rlzoo.agents.tabular import ExplorationConfig, QTableLearner, StepSizeConfig, TabularLearnerConfig
from rlzoo.buffers import EpisodeBuffer
from rlzoo.config import ConfigError, param
from rlzoo.envs import reset_to_state, supports_state_reset
from rlzoo.logging import RunLogger
from rlzoo.policies import greedy_action
from rlzoo.schedules import SCHEDULES


@dataclass
class MonteCarloConfig(TabularLearnerConfig):
    episode_length: int = param(100, ge=1)


@dataclass
class MCStepSizeConfig(StepSizeConfig):
    """Monte Carlo defaults to the sample mean of returns (α = 1/N)."""

    alpha: float = param(1.0, gt=0.0, le=1.0)
    alpha_schedule: str = param("robbins_monro", choices=SCHEDULES)


@dataclass
class MCBasicConfig(MonteCarloConfig):
    episodes_per_pair: int = param(1, ge=1)


@dataclass
class MCExploringStartsConfig(MCStepSizeConfig, MonteCarloConfig):
    visit: str = param("first", choices=("first", "every"))


@dataclass
class MCEpsilonGreedyConfig(ExplorationConfig, MCStepSizeConfig, MonteCarloConfig):
    visit: str = param("every", choices=("first", "every"))


class MonteCarlo(QTableLearner):
    """Shared episode generation and return updates of the Monte Carlo agents."""

    needs_state_reset = False

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        super().check_env(env)
        if cls.needs_state_reset and not supports_state_reset(env):
            raise ConfigError(f"algo={cls.name} starts episodes from chosen (s, a): {env} cannot be reset to a state")

    def setup(self) -> None:
        super().setup()
        self.buffer = EpisodeBuffer()

    def episode_start(self) -> tuple[int | None, int | None]:
        """First state and action of the next episode (None: the env's reset / the policy's choice)."""
        return None, None

    def choose(self, s: int) -> int:
        """The action taken in ``s`` after the first one."""
        return greedy_action(self.table.row(s))

    def _run(self, n_steps: int, logger: RunLogger) -> None:
        end = self.num_timesteps + n_steps
        while self.num_timesteps < end:
            self.update_from_returns(self.rollout(*self.episode_start(), self.choose, logger), self.config.visit)

    def rollout(self, state: int | None, action: int | None, choose: Callable[[int], int], logger: RunLogger):
        """One episode of at most ``episode_length`` steps from ``state`` (None: the env's reset) taking
        ``action`` first (None: ``choose``), then ``choose(s)``; the env's own time limit is bypassed."""
        env, buf = self.env.unwrapped, self.buffer
        buf.clear()
        s = int(env.reset()[0]) if state is None else reset_to_state(env, state)
        a = choose(s) if action is None else action
        for _ in range(self.config.episode_length):
            s2, r, term, _, _ = env.step(a)
            buf.add(s, a, float(r))
            if term:
                break
            s = int(s2)
            a = choose(s)
        self.num_timesteps += len(buf)
        logger.episode(sum(buf.rewards), len(buf), self.num_timesteps)
        return buf

    def update_from_returns(self, buf: EpisodeBuffer, visit: str) -> None:
        """q(s_t, a_t) += α (G_t − q(s_t, a_t)) at first or every visits."""
        update, n_actions = self.table.update, self.n_actions
        returns = buf.returns(self.config.gamma)
        take = buf.first_visits() if visit == "first" else [True] * len(buf)
        for s, a, g, use in zip(buf.states, buf.actions, returns, take, strict=True):
            if use:
                update(s, a, g, self.step_size(s * n_actions + a))


@register_agent
class MCBasic(MonteCarlo):
    """MC Basic: model-free policy iteration; stops when the greedy policy is stable."""

    name = "mc_basic"
    Config = MCBasicConfig
    needs_state_reset = True

    def _run(self, n_steps: int, logger: RunLogger) -> None:
        actions = [greedy_action(self.table.row(s)) for s in range(self.n_states)]  # π_k
        follow = actions.__getitem__
        new_q = []
        for s in range(self.n_states):
            row = []
            for a in range(self.n_actions):
                total = 0.0
                for _ in range(self.config.episodes_per_pair):
                    total += self.rollout(s, a, follow, logger).returns(self.config.gamma)[0]
                row.append(total / self.config.episodes_per_pair)
            new_q.append(row)
        self.table.load_state(new_q)
        self.finished = [greedy_action(row) for row in new_q] == actions


@register_agent
class MCExploringStarts(MonteCarlo):
    """MC Exploring Starts: each episode begins at a uniformly random (s, a), then acts greedily."""

    name = "mc_exploring_starts"
    Config = MCExploringStartsConfig
    needs_state_reset = True

    def episode_start(self) -> tuple[int | None, int | None]:
        return self.py_rng.randrange(self.n_states), self.py_rng.randrange(self.n_actions)


@register_agent
class MCEpsilonGreedy(MonteCarlo):
    """On-policy MC control with an ε-greedy (or softmax) policy on q."""

    name = "mc_epsilon_greedy"
    Config = MCEpsilonGreedyConfig

    def choose(self, s: int) -> int:
        return self.behaviour.sample(self.table.row(s), self.num_timesteps, self.py_rng)

    def current_policy(self) -> np.ndarray:
        return self.behaviour.table(self.q, self.num_timesteps)
