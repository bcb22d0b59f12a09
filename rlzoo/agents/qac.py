"""QAC — the simplest actor-critic (S. Zhao, *Mathematical Foundations of RL*, ch. 10.1).

Critic: Sarsa on Q(s, a; w): w ← w + α_w [r + γ q(s', a') − q(s, a)] ∇_w q(s, a), with a' ~ π(·|s')
the action actually taken next. Actor: θ ← θ + α_θ Σ_a ∇_θ π(a|s; θ) q(s, a) over every action (``all_actions``, the
default: mean actor-critic, Allen et al., 2017), or the book's sampled step θ ← θ + α_θ ∇_θ log π(a|s; θ) q(s, a) whose
expectation it is (``all_actions=false``). Plain gradient steps (SGD), annealed to 0 by default. Updates are made every
``n_steps`` steps of ``n_envs`` envs (default: every step, a batch of ``n_envs`` transitions); with
``hidden=[]`` on a Discrete observation both π and q are tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rlzoo.agents.base import Agent
from rlzoo.agents.on_policy import LR_SCHEDULES, OPTIMIZERS, ActorCriticConfig, OnPolicyAgent, rollout_tensors
from rlzoo.agents.registry import register_agent
from rlzoo.buffers import RolloutBuffer
from rlzoo.config import param
from rlzoo.critics import ActionValueTableCritic
from rlzoo.devices import to_host


@dataclass
class StepwiseActorCriticConfig(ActorCriticConfig):
    """QAC's and the off-policy actor-critic's batch and step sizes: an update every step of ``n_envs`` envs, the book's
    plain gradient steps annealed to 0. Adam's per-parameter normalisation turns the vanishing gradients of a nearly
    deterministic softmax into full-size steps; on CartPole that drift ended seeds of both on a deterministic policy
    that always pushes one way (README, "Cells still short of their threshold")."""

    n_steps: int = param(1, ge=1)
    optimizer: str = param("sgd", choices=OPTIMIZERS)
    lr_schedule: str = param("linear", choices=LR_SCHEDULES, help="linear: anneal to 0 at total_steps")
    learning_rate: float = param(0.3, gt=0.0, help="actor step size α_θ")
    critic_learning_rate: float | None = param(0.3, gt=0.0, help="critic step size α_w (null: learning_rate)")


@dataclass
class QACConfig(StepwiseActorCriticConfig):
    all_actions: bool = param(True, help="actor ascends Σ_a π(a|s) q(s,a) over every action (mean actor-critic); "
                              "false: the book's sampled step q(s,a) ∇log π(a|s)")  # fmt: skip


@register_agent
class QAC(OnPolicyAgent):
    """Q actor-critic: Sarsa critic Q(s, a), actor ascending q(s, a) ∇ log π(a|s)."""

    name = "qac"
    Config = QACConfig
    critic_class = ActionValueTableCritic
    discrete_actions_only = True
    seed_batchable = True
    _next_actions: np.ndarray | None = None  # a' drawn for the bootstrap, taken at the next step
    live_parts = (*OnPolicyAgent.live_parts, "_next_actions")

    @property
    def gae_lambda(self) -> float:
        return 0.0  # advantage = Sarsa TD error, return = r + γ q(s', a')

    def select_actions(self, obs: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dist = self.policy(obs)
        if self._next_actions is not None:
            actions, self._next_actions = torch.from_numpy(self._next_actions).to(obs.device), None
        else:
            actions = dist.sample(self.rng)
        return to_host(actions, dist.log_prob(actions), self.critic.prediction(obs, actions))

    def bootstrap_values(self, obs: torch.Tensor, last: bool) -> np.ndarray:
        actions = self.policy(obs).sample(self.rng)
        if last:
            self._next_actions = actions.cpu().numpy()
        return self.critic.prediction(obs, actions).cpu().numpy()

    @classmethod
    def stacked(cls, lanes: Sequence[QAC]) -> QAC:
        """The on-policy stacked agent, holding the lanes' next actions a' stacked (K, n_envs) while they are drawn."""
        stacked = super().stacked(lanes)
        pending = [lane._next_actions for lane in lanes]
        stacked._next_actions = None if pending[0] is None else np.stack(pending)
        return stacked

    def sync_lane(self, lane: Agent, k: int) -> None:
        super().sync_lane(lane, k)
        lane._next_actions = None if self._next_actions is None else self._next_actions[k].copy()

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        obs, actions, q_taken, returns = rollout_tensors(
            buffer, "obs", "actions", "values", "returns", device=self.device
        )
        if not self.config.all_actions:
            return self.gradient_step(obs, actions, q_taken, returns)
        with torch.no_grad():
            q_all = self.critic(obs)  # q(s, ·) before this step's critic update
        return self.gradient_step(obs, actions, q_all, returns, all_actions=True)
