"""Soft actor-critic: SAC (Haarnoja et al., 2018) with the learned temperature of its follow-up (Haarnoja et al.,
2018b, "SAC algorithms and applications"), for a bounded Box action space and, after Christodoulou (2019), for a
Discrete one — one member of the replay actor-critic family (``replay_actor_critic.py``: replay loop, twin critics,
Polyak targets, action scaling).

Soft state value under the policy:  V(s) = E_{a~π(·|s)}[min_i Q_i(s, a) − α log π(a|s)]
  - Box: a = tanh(μ + σ ε) drawn once (reparameterised, ``SquashedGaussianActor``);
  - Discrete: the exact sum Σ_a π(a|s)(min_i Q_i(s, a) − α log π(a|s)).
Critics: y = R + d · V⁻(s') with the target critics Q⁻ (d = γ, or 0 after a termination).
Actor, every ``actor_update_interval`` critic steps: maximise V(s) through π, i.e. minimise E[α log π − min_i Q_i].
Temperature (unless ``alpha`` fixes it): minimise log α · (H(π(·|s)) − H̄), H̄ = ``target_entropy``
(null: −dim(A) for a Box, ``target_entropy_scale`` · log|A| for a Discrete space).
Targets: Q⁻ ← τ Q + (1 − τ) Q⁻ every ``target_update_interval`` critic steps. There is no target actor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlzoo.agents.registry import register_agent
from rlzoo.agents.replay_actor_critic import ReplayActorCritic, ReplayActorCriticConfig, require_bounded_box
from rlzoo.approximators import ActionValueCritic, DiscreteActionValueCritic
from rlzoo.config import ConfigError, param
from rlzoo.policy_networks import PolicyNetwork, SquashedGaussianActor


@dataclass
class SACConfig(ReplayActorCriticConfig):
    """SAC's keys; the values are stable-baselines3's SAC defaults."""

    gamma: float = param(0.99, ge=0.0, lt=1.0)
    learning_rate: float = param(3e-4, gt=0.0, help="actor step size")
    buffer_size: int = param(1_000_000, ge=1)
    learning_starts: int = param(100, ge=0, help="env steps of uniformly random actions before training")
    hidden: list[int] = param([256, 256])
    alpha: float | None = param(None, gt=0.0, help="a fixed temperature; null: learned (log alpha by Adam)")
    alpha_init: float = param(1.0, gt=0.0, help="the learned temperature's first value")
    alpha_learning_rate: float | None = param(None, gt=0.0, help="null: learning_rate")
    target_entropy: float | None = param(None, help="entropy the temperature steers to; null: the action space's")
    target_entropy_scale: float = param(0.89, gt=0.0, le=1.0, help="Discrete: null target_entropy = scale*log|A|")
    actor_update_interval: int = param(1, ge=1, help="critic steps per actor (and temperature) step")
    target_update_interval: int = param(1, ge=1, help="critic steps per Polyak update of the target critics")


@register_agent
class SAC(ReplayActorCritic):
    """SAC for a bounded 1-D Box action space (squashed Gaussian actor) or a Discrete one (categorical actor)."""

    name = "sac"
    family = "soft_actor_critic"
    Config = SACConfig
    n_critics = 2
    saved_parts = ("actor", "critic", "critic_target", "actor_optimizer", "critic_optimizer")

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            require_bounded_box(cls, env)

    def setup(self) -> None:
        cfg = self.config
        self.discrete_actions = isinstance(self.env.action_space, gym.spaces.Discrete)
        self.actor_interval, self.target_interval = cfg.actor_update_interval, cfg.target_update_interval
        super().setup()
        if cfg.target_entropy is not None:
            self.target_entropy = float(cfg.target_entropy)
        elif self.discrete_actions:
            self.target_entropy = cfg.target_entropy_scale * math.log(self.env.action_space.n)
        else:
            self.target_entropy = -float(self.action_dim)
        self.log_alpha = torch.tensor(math.log(cfg.alpha if cfg.alpha is not None else cfg.alpha_init),
                                      device=self.device, requires_grad=cfg.alpha is None)  # fmt: skip
        alpha_lr = cfg.alpha_learning_rate if cfg.alpha_learning_rate is not None else cfg.learning_rate
        self.alpha_optimizer = None if cfg.alpha is not None else torch.optim.Adam([self.log_alpha], lr=alpha_lr,
                                                                                   fused=True)  # fmt: skip

    def build_actor(self) -> torch.nn.Module:
        cfg, env = self.config, self.env
        if self.discrete_actions:
            return PolicyNetwork(env.observation_space, env.action_space, list(cfg.hidden), cfg.activation,
                                 ortho=False, log_std_init=0.0, state_dependent_std=False,
                                 state_dependent_exploration=False)  # fmt: skip
        return SquashedGaussianActor(env.observation_space, self.action_dim, list(cfg.hidden), cfg.activation)

    def build_critic(self, hidden: list[int]) -> torch.nn.Module:
        space, activation = self.env.observation_space, self.config.activation
        if self.discrete_actions:
            return DiscreteActionValueCritic(space, int(self.env.action_space.n), hidden, activation, self.n_critics)
        return ActionValueCritic(space, self.action_dim, hidden, activation, n_critics=self.n_critics)

    @property
    def alpha(self) -> torch.Tensor:
        """The temperature α = exp(log α), without gradient."""
        return self.log_alpha.detach().exp()

    # ---- acting -------------------------------------------------------------------------
    def greedy_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """The most probable action (Discrete) or tanh(μ(s)) (Box)."""
        return self.actor(obs).mode() if self.discrete_actions else self.actor.mode(obs)

    def behaviour_action(self, obs: np.ndarray, step: int) -> tuple[Any, Any]:
        """Uniformly random for the first ``learning_starts`` steps, then a draw from π(·|s)."""
        if self.discrete_actions:
            if step < self.config.learning_starts:
                a = int(self.rng.integers(self.env.action_space.n))
            else:
                with torch.inference_mode():
                    a = int(self.acting(self.tensor(obs[None])).sample(self.rng)[0])
            return a, a
        if step < self.config.learning_starts:
            u = self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
        else:
            with torch.inference_mode():
                mean, log_std = (x[0].cpu().numpy() for x in self.acting(self.tensor(obs[None])))
            noise = self.rng.standard_normal(self.action_dim).astype(np.float32)
            u = np.tanh(mean + np.exp(log_std) * noise)
        return u, self.scaler.to_env(u)

    # ---- learning -----------------------------------------------------------------------
    def actor_noise(self, n: int) -> torch.Tensor | None:
        """ε ~ N(0, I) of the reparameterised draw a = tanh(μ + σ ε) (Box); None for a Discrete space."""
        if self.discrete_actions:
            return None
        return torch.randn((n, self.action_dim), generator=self.generator, device=self.device)

    target_noise = actor_noise  # the draw at s' in the target

    def soft_value(self, obs: torch.Tensor, critic: torch.nn.Module, noise: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """V(s) = E_{a~π}[min_i Q_i(s, a) − α log π(a|s)] under ``critic`` and the entropy of π(·|s), each (B,):
        exact over a Discrete space; over a Box one reparameterised draw with ``noise`` (−log π its entropy's
        estimate)."""
        alpha = self.alpha
        if self.discrete_actions:
            log_probs = self.actor(obs).logits
            probs = log_probs.exp()
            q = critic.all_actions(obs).amin(dim=0)
            return (probs * (q - alpha * log_probs)).sum(dim=-1), -(probs * log_probs).sum(dim=-1)
        actions, log_prob = self.actor.sample(obs, noise)
        return critic(obs, actions).amin(dim=0) - alpha * log_prob, -log_prob

    def td_target(self, next_obs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor,
                  noise: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """y = R + d · V⁻(s'), the soft value under the target critics."""
        return rewards + discounts * self.soft_value(next_obs, self.critic_target, noise)[0]

    def actor_loss(self, obs: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """−E[V(s)] for the actor's weights, and the policy's mean entropy."""
        value, entropy = self.soft_value(obs, self.critic, noise)
        return -value.mean(), entropy.detach().mean()

    def after_actor_step(self, entropy: torch.Tensor | None) -> None:
        """One step of log α down log α · (H − H̄): α falls while the entropy is above its target, rises below it."""
        self.stats["entropy"] = entropy.item()
        if self.alpha_optimizer is not None:
            gap = entropy - self.target_entropy
            self.stats["alpha_loss"] = (self.log_alpha.detach() * gap).item()
            self.log_alpha.grad = gap.reshape(())  # d/d log α of log α · (H − H̄), exactly what backward would give
            self.alpha_optimizer.step()
        self.stats["alpha"] = self.alpha.item()

    # ---- persistence --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        own: dict[str, Any] = {"log_alpha": self.log_alpha.detach().clone()}
        if self.alpha_optimizer is not None:
            own["alpha_optimizer"] = self.alpha_optimizer.state_dict()
        return {**super().state_dict(), **own}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if self.alpha_optimizer is not None:
            if "alpha_optimizer" not in state:
                raise ConfigError("the checkpoint was saved with a fixed algo.alpha: resume it with the same alpha")
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
