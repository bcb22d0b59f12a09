"""Critics of the on-policy actor-critic agents, as objects: none, a state-value V(s), or action values Q(s, ·).

Each answers the same three questions, so an agent never asks which kind it holds:

- ``state_values(obs, policy)``: V(s) to bootstrap returns from (Q critics: Σ_a π(a|s) Q(s, a); none: 0);
- ``prediction(obs, actions)``: what the critic predicts for the taken actions (V(s), or Q(s, a));
- ``value_loss(obs, actions, targets, weights)``: mean w · (target − prediction)², or None without a critic.

Means run over the last axis, the batch: with a leading seed axis (``rlzoo.seed_stack``) a loss is one per seed.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from gymnasium import spaces

from rlzoo.approximators import Critic


class NoCritic(torch.nn.Module):
    """No critic (REINFORCE without a baseline): values are 0 and nothing is learned."""

    estimates_values: ClassVar[bool] = False

    def __init__(self, obs_space: spaces.Space) -> None:
        super().__init__()
        self.obs_dims = len(obs_space.shape)  # trailing axes of one observation; the others are batch axes

    def state_values(self, obs: torch.Tensor, policy: torch.nn.Module) -> torch.Tensor:
        return torch.zeros(obs.shape[: obs.dim() - self.obs_dims], device=obs.device)

    def value_loss(self, obs, actions, targets, weights) -> torch.Tensor | None:
        return None


class StateValueCritic(Critic):
    """V(s) on an MLP; trained toward returns (A2C, REINFORCE's baseline, TRPO, PPO)."""

    estimates_values: ClassVar[bool] = True

    def __init__(self, obs_space: spaces.Space, action_space: spaces.Space, hidden: list[int], activation: str,
                 ortho: bool) -> None:  # fmt: skip
        super().__init__(obs_space, hidden, activation, 1, ortho=ortho)

    def state_values(self, obs: torch.Tensor, policy: torch.nn.Module) -> torch.Tensor:
        return self(obs)

    def prediction(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self(obs)

    def value_loss(self, obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor,
                   weights: torch.Tensor | float) -> torch.Tensor:  # fmt: skip
        return (weights * (targets - self.prediction(obs, actions)).pow(2)).mean(dim=-1)


class ActionValueTableCritic(StateValueCritic):
    """Q(s, ·) for every discrete action on an MLP (QAC's Sarsa critic); V(s) = Σ_a π(a|s) Q(s, a)."""

    def __init__(self, obs_space: spaces.Space, action_space: spaces.Space, hidden: list[int], activation: str,
                 ortho: bool) -> None:  # fmt: skip
        Critic.__init__(self, obs_space, hidden, activation, int(action_space.n), ortho=ortho)

    def state_values(self, obs: torch.Tensor, policy: torch.nn.Module) -> torch.Tensor:
        return (policy(obs).probs * self(obs)).sum(dim=-1)

    def prediction(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self(obs).gather(-1, actions.long()[..., None]).squeeze(-1)
