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

from rlzoo.agents.base import Agent
from rlzoo.agents.registry import register_agent
from rlzoo.agents.replay_actor_critic import ReplayActorCritic, ReplayActorCriticConfig, require_bounded_box
from rlzoo.approximators import ActionValueCritic, DiscreteActionValueCritic
from rlzoo.config import ConfigError, param
from rlzoo.policy_networks import PolicyNetwork, SquashedGaussianActor
from rlzoo.seed_stack import copy_optimizer_state, generators_of, load_optimizer_state, per_seed


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
    seed_batchable = True
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
        self.build_alpha_optimizer()

    def build_alpha_optimizer(self) -> None:
        """Adam on log α at ``alpha_learning_rate`` (default: ``learning_rate``); none for a fixed ``alpha``."""
        cfg = self.config
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

    def behaviour_actions(self, obs: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Uniformly random for the first ``learning_starts`` steps, then a draw from π(·|s), for every lane's
        observation (K, …), each lane's draws from its own generator."""
        generators, warm_up = generators_of(self.rng), step < self.config.learning_starts
        x = None if warm_up else self.tensor(obs)
        x = x[:, None] if x is not None and self.n_seeds > 1 else x
        if self.discrete_actions:
            if warm_up:
                actions = np.array([g.integers(self.env.action_space.n) for g in generators], dtype=np.int64)
            else:
                with torch.inference_mode():
                    actions = self.acting(x).sample(self.rng).reshape(-1).cpu().numpy().astype(np.int64)
            return actions, actions
        if warm_up:
            us = np.stack([g.uniform(-1.0, 1.0, self.action_dim).astype(np.float32) for g in generators])
        else:
            with torch.inference_mode():
                mean, log_std = (t.reshape(len(generators), -1).cpu().numpy() for t in self.acting(x))
            noise = np.stack([g.standard_normal(self.action_dim).astype(np.float32) for g in generators])
            us = np.tanh(mean + np.exp(log_std) * noise)
        return us, self.scaler.to_env(us)

    # ---- learning -----------------------------------------------------------------------
    def actor_noise(self, n: int) -> torch.Tensor | None:
        """ε ~ N(0, I) of the reparameterised draw a = tanh(μ + σ ε) (Box); None for a Discrete space."""
        if self.discrete_actions:
            return None
        return self.normal_draw((n, self.action_dim))

    target_noise = actor_noise  # the draw at s' in the target

    def soft_value(self, obs: torch.Tensor, critic: torch.nn.Module, noise: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """V(s) = E_{a~π}[min_i Q_i(s, a) − α log π(a|s)] under ``critic`` and the entropy of π(·|s), each (B,):
        exact over a Discrete space; over a Box one reparameterised draw with ``noise`` (−log π its entropy's
        estimate)."""
        if self.discrete_actions:
            log_probs = self.actor(obs).logits
            probs = log_probs.exp()
            q = critic.all_actions(obs).amin(dim=0)
            alpha = self.temperature_for(log_probs)
            return (probs * (q - alpha * log_probs)).sum(dim=-1), -(probs * log_probs).sum(dim=-1)
        actions, log_prob = self.actor.sample(obs, noise)
        return critic(obs, actions).amin(dim=0) - self.temperature_for(log_prob) * log_prob, -log_prob

    def temperature_for(self, x: torch.Tensor) -> torch.Tensor:
        """α to multiply ``x`` by: the scalar, or a stacked agent's (K,) shaped to broadcast over x's batch axes."""
        alpha = self.alpha
        return alpha if self.n_seeds == 1 else alpha.reshape(-1, *([1] * (x.dim() - 1)))

    def td_target(self, next_obs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor,
                  noise: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """y = R + d · V⁻(s'), the soft value under the target critics."""
        return rewards + discounts * self.soft_value(next_obs, self.critic_target, noise)[0]

    def actor_loss(self, obs: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """−E[V(s)] for the actor's weights, and the policy's mean entropy."""
        value, entropy = self.soft_value(obs, self.critic, noise)
        return -value.mean(dim=-1), entropy.detach().mean(dim=-1)

    def after_actor_step(self, entropy: torch.Tensor | None) -> None:
        """One step of log α down log α · (H − H̄): α falls while the entropy is above its target, rises below it."""
        self.stats["entropy"] = per_seed(entropy)
        if self.alpha_optimizer is not None:
            gap = entropy - self.target_entropy
            self.stats["alpha_loss"] = per_seed(self.log_alpha.detach() * gap)
            self.log_alpha.grad = gap.reshape(self.log_alpha.shape)  # d/d log α of log α · (H − H̄), as backward gives
            self.alpha_optimizer.step()
        self.stats["alpha"] = per_seed(self.alpha)

    # ---- seed batches (rlzoo.seed_batch) -----------------------------------------------------
    @classmethod
    def stacked(cls, lanes: list[SAC]) -> SAC:
        """``ReplayActorCritic.stacked`` and every lane's temperature log α stacked (K,), the lanes' own its views,
        with its optimizer's state."""
        stacked = super().stacked(lanes)
        learned = lanes[0].log_alpha.requires_grad
        log_alpha = torch.stack([lane.log_alpha.detach() for lane in lanes]).requires_grad_(learned)
        for k, lane in enumerate(lanes):
            lane.log_alpha.data = log_alpha.data[k]
        stacked.log_alpha = log_alpha
        stacked.build_alpha_optimizer()
        if stacked.alpha_optimizer is not None:
            load_optimizer_state(stacked.alpha_optimizer, [lane.alpha_optimizer for lane in lanes])
        return stacked

    def sync_lane(self, lane: Agent, k: int) -> None:
        super().sync_lane(lane, k)
        if self.alpha_optimizer is not None:
            copy_optimizer_state(self.alpha_optimizer, lane.alpha_optimizer, k)

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
