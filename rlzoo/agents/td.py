"""Temporal-difference learning on tables (S. Zhao, ch. 7; Sutton & Barto, ch. 6–7).

- TD(0) evaluation:  v(s) ← v(s) + α [r + γ v(s') − v(s)]  for a fixed policy π.
- Sarsa:             q(s,a) ← q(s,a) + α [r + γ q(s',a') − q(s,a)],  a' ~ π(s') (on-policy).
- Expected Sarsa:    target r + γ Σ_a' π(a'|s') q(s',a').
- Q-learning:        target r + γ max_a' q(s',a')  (off-policy: any behaviour, e.g. uniform).
- n-step Sarsa:      target Σ_{i<n} γ^i r_{t+i} + γ^n q(s_{t+n}, a_{t+n}).

Termination ends bootstrapping (q = 0 after a terminal state); truncation (time limit) bootstraps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rlzoo.agents.registry import register_agent
from rlzoo.agents.tabular import (
    ApproximatorConfig,
    ExplorationConfig,
    FixedPolicyEvaluation,
    QTableLearner,
    StepSizeConfig,
    TabularLearner,
    TabularLearnerConfig,
)
from rlzoo.bellman import greedy, q_from_v
from rlzoo.config import param
from rlzoo.features import FEATURES
from rlzoo.logging import RunLogger
from rlzoo.policies import TablePolicy


@dataclass
class TD0Config(ApproximatorConfig, StepSizeConfig, TabularLearnerConfig):
    policy: str = param("uniform", help="uniform | optimal | path to a tables.npz with a 'policy' array")


@dataclass
class TDLinearConfig(TD0Config):
    alpha: float = param(0.003, gt=0.0, le=1.0, help="small: the update scales with |φ(s)|²")
    approximator: str = param("linear", choices=("tabular", "linear"))
    features: str = param("fourier", choices=FEATURES)


@dataclass
class TDControlConfig(ApproximatorConfig, ExplorationConfig, StepSizeConfig, TabularLearnerConfig):
    """TD control's ε-greedy behaviour starts uniform (ε = 1) and decays linearly to ε = 0.1 over 50 000 steps
    (the DQN-style schedule): with a constant ε = 0.1 the GridWorld's continuing task spends most steps at the
    target and leaves many (s, a) pairs almost untried (README, "Benchmarks: every algorithm, three envs, five
    seeds")."""

    epsilon: float = param(1.0, ge=0.0, le=1.0, help="ε at step 0, decaying linearly to epsilon_final")
    epsilon_final: float | None = param(0.1, ge=0.0, le=1.0, help="ε after epsilon_decay_steps (None: constant ε)")
    epsilon_decay_steps: int = param(50_000, ge=0, help="steps of the linear decay (0: constant epsilon)")


@dataclass
class NStepSarsaConfig(TDControlConfig):
    n: int = param(3, ge=1)


@register_agent
class TD0(FixedPolicyEvaluation, TabularLearner):
    """TD(0) evaluation of the fixed policy ``algo.policy``; ``truth/value_error`` is to ``v_π``."""

    name = "td0"
    Config = TD0Config

    def setup(self) -> None:
        super().setup()
        self.table = self.make_approximator("v")
        self.sampler = TablePolicy(self.fixed_policy)
        self.policy = self.fixed_policy.copy()

    def _run(self, n_steps: int, logger: RunLogger) -> None:
        value, update, env, rng, gamma = self.table.value, self.table.update, self.env, self.py_rng, self.config.gamma
        sample, alpha = self.sampler.sample, self.step_size
        s, t, end = self._obs, self.num_timesteps, self.num_timesteps + n_steps
        ep_return, ep_length = self._episode
        while t < end:
            s2, r, term, trunc, _ = env.step(sample(s, rng))
            t += 1
            update(s, r if term else r + gamma * value(s2), alpha(s))
            ep_return += r
            ep_length += 1
            if term or trunc:
                logger.episode(ep_return, ep_length, t)
                ep_return, ep_length = 0.0, 0
                s = int(env.reset()[0])
            else:
                s = s2
        self._obs, self.num_timesteps, self._episode = s, t, (ep_return, ep_length)

    def sync_tables(self) -> None:
        self.v = self.table.array()
        self.q = q_from_v(self.model, self.v, self.config.gamma) if self.model is not None else self.q


@register_agent
class TDLinear(TD0):
    """TD-linear evaluation: v̂(s) = φ(s)ᵀw, w ← w + α [r + γ v̂(s') − v̂(s)] φ(s) (semi-gradient TD(0))."""

    name = "td_linear"
    Config = TDLinearConfig


class TDControl(QTableLearner):
    """TD control on the shared Q-table with an n-step return (one step unless ``algo.n``).

    q(s_t, a_t) moves toward ``Σ_{i<n} γ^i r_{t+i} + γ^n b(s_{t+n})``; subclasses choose the
    bootstrap value ``b`` of a state from its action values (Sarsa: q(s', a'), expected Sarsa:
    E_π q(s', ·), Q-learning: max q(s', ·)). At the end of an episode the pending updates are
    flushed with the shorter returns (no bootstrap after termination).
    """

    Config = TDControlConfig
    samples_next_action: ClassVar[bool] = False  # Sarsa draws a' before updating
    policy_is_behaviour: ClassVar[bool] = True  # on-policy: the learned policy is the behaviour
    live_parts = (*QTableLearner.live_parts, "_action")

    def setup(self) -> None:
        super().setup()
        self.n = self.config.n if isinstance(self.config, NStepSarsaConfig) else 1
        self._action: int | None = None
        self._pending: deque[tuple[int, int, float]] = deque()

    def bootstrap(self, row: list[float], next_action: int | None, t: int) -> float:
        """Estimate of the value of s' from its action values ``row``."""
        raise NotImplementedError

    def _update_oldest(self, tail: float) -> None:
        """Update the oldest pending (s, a) with the discounted rewards after it plus ``γ^k · tail``."""
        pending, gamma = self._pending, self.config.gamma
        g = tail
        for _, _, r in reversed(pending):
            g = r + gamma * g
        s, a, _ = pending.popleft()
        self.table.update(s, a, g, self.step_size(s * self.n_actions + a))

    def _run(self, n_steps: int, logger: RunLogger) -> None:
        row, env, rng, n, pending = self.table.row, self.env, self.py_rng, self.n, self._pending
        sample, bootstrap, flush, update = self.behaviour.sample, self.bootstrap, self._update_oldest, self.table.update
        alpha, gamma, n_actions = self.step_size, self.config.gamma, self.n_actions
        on_policy = self.samples_next_action
        s, a, t = self._obs, self._action, self.num_timesteps
        end = t + n_steps
        ep_return, ep_length = self._episode
        while t < end:
            if a is None:
                a = sample(row(s), t, rng)
            s2, r, term, trunc, _ = env.step(a)
            t += 1
            if term:
                a2, tail = None, 0.0
            else:
                next_row = row(s2)
                a2 = sample(next_row, t, rng) if on_policy else None
                tail = bootstrap(next_row, a2, t)
            if n == 1:  # one-step target r + γ·tail, without the queue
                update(s, a, r + gamma * tail, alpha(s * n_actions + a))
            else:
                pending.append((s, a, r))
                if len(pending) == n:
                    flush(tail)
            ep_return += r
            ep_length += 1
            if term or trunc:
                while pending:
                    flush(tail)
                logger.episode(ep_return, ep_length, t)
                ep_return, ep_length = 0.0, 0
                s, a = int(env.reset()[0]), None
            else:
                s, a = s2, a2
        self._obs, self._action, self.num_timesteps, self._episode = s, a, t, (ep_return, ep_length)

    def current_policy(self) -> np.ndarray:
        return self.behaviour.table(self.q, self.num_timesteps) if self.policy_is_behaviour else greedy(self.q)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pending": np.asarray(list(self._pending), dtype=float).reshape(-1, 3)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._pending = deque((int(s), int(a), float(r)) for s, a, r in state["pending"])

    def begin(self, total_steps: int, logger: RunLogger) -> None:
        if self._obs is None:  # the env restarts: the pending steps of its last episode have no continuation
            self._pending.clear()
        super().begin(total_steps, logger)


@register_agent
class Sarsa(TDControl):
    """Sarsa: on-policy TD control, target ``r + γ q(s', a')`` with ``a' ~ π(s')``."""

    name = "sarsa"
    samples_next_action = True

    def bootstrap(self, row: list[float], next_action: int | None, t: int) -> float:
        return row[next_action]


@register_agent
class ExpectedSarsa(TDControl):
    """Expected Sarsa: target ``r + γ Σ_a' π(a'|s') q(s', a')``."""

    name = "expected_sarsa"

    def bootstrap(self, row: list[float], next_action: int | None, t: int) -> float:
        return sum(p * q for p, q in zip(self.behaviour.probs(row, t), row, strict=True))


@register_agent
class QLearning(TDControl):
    """Q-learning: target ``r + γ max_a' q(s', a')``; learns q* under any behaviour (``algo.behavior``)."""

    name = "qlearning"
    policy_is_behaviour = False

    def bootstrap(self, row: list[float], next_action: int | None, t: int) -> float:
        return max(row)


@register_agent
class NStepSarsa(Sarsa):
    """n-step Sarsa: q(s_t, a_t) moves toward ``Σ_{i<n} γ^i r_{t+i} + γ^n q(s_{t+n}, a_{t+n})``."""

    name = "nstep_sarsa"
    Config = NStepSarsaConfig
