"""Deterministic policy gradient: DDPG (Lillicrap et al., 2016) and TD3 (Fujimoto et al., 2018) as one
implementation on the shared replay buffer, MLP approximators and off-policy loop.

Critic: minimise Σ_i (Q_i(s, a) − y)² with y = R + d · min_i Q⁻_i(s', ã'), ã' = clip(μ⁻(s') + ε, −1, 1),
ε = clip(N(0, σ̃²), −c, c) (target policy smoothing; ε = 0 when ``target_policy_noise`` = 0), d = γ or
0 after a termination, and i over one critic (DDPG) or two (``twin_critics``: clipped double Q).
Actor, every ``policy_delay`` critic steps: ascend the deterministic policy gradient
∇_θ E[Q_1(s, μ_θ(s))] (Silver et al., 2014); then both target networks move by Polyak averaging
θ⁻ ← τ θ + (1 − τ) θ⁻. DDPG is this with one critic, ``policy_delay`` 1 and no smoothing; TD3 turns
the three on. Actions live in [−1, 1]^d (tanh actor) and are mapped affinely onto the env's Box.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from rlzoo.action_scaling import ActionScaler
from rlzoo.agents.off_policy import OffPolicyAgent
from rlzoo.agents.registry import register_agent
from rlzoo.approximators import ACTIVATIONS, ActionValueCritic, polyak_update
from rlzoo.buffers import ReplayBuffer, TransitionBatch
from rlzoo.config import ConfigError, DiscountedConfig, param
from rlzoo.noise import NOISE_KINDS, make_noise
from rlzoo.policy_networks import DeterministicActor
from rlzoo.seeding import seeded_torch
from rlzoo.truth import optimal_truth_and_states

CONTINUOUS_ENVS = "env=pendulum, env=mountaincar_continuous or env=gridworld_continuous"


@dataclass
class DDPGConfig(DiscountedConfig):
    gamma: float = param(0.98, ge=0.0, lt=1.0)
    learning_rate: float = param(1e-3, gt=0.0, help="actor step size")
    critic_learning_rate: float | None = param(None, gt=0.0, help="null: learning_rate")
    buffer_size: int = param(200_000, ge=1)
    learning_starts: int = param(1000, ge=0, help="env steps of uniformly random actions before training")
    batch_size: int = param(256, ge=1)
    train_freq: int = param(1, ge=1, help="env steps between training phases")
    gradient_steps: int = param(1, ge=1, help="critic steps per training phase")
    tau: float = param(0.005, gt=0.0, le=1.0, help="Polyak coefficient of the target networks")
    noise: str = param("gaussian", choices=NOISE_KINDS, help="exploration noise")
    noise_std: float = param(0.1, ge=0.0, help="sigma of the exploration noise, in [-1, 1] action units")
    ou_theta: float = param(0.15, ge=0.0, help="Ornstein-Uhlenbeck mean reversion")
    ou_dt: float = param(1e-2, gt=0.0, help="Ornstein-Uhlenbeck time step")
    twin_critics: bool = param(False, help="TD3: two critics, target min_i Q_i")
    policy_delay: int = param(1, ge=1, help="TD3: critic steps per actor (and target) update")
    target_policy_noise: float = param(0.0, ge=0.0, help="TD3: sigma of the target smoothing noise; 0: off")
    target_noise_clip: float = param(0.5, ge=0.0, help="TD3: the smoothing noise is clipped to [-c, c]")
    hidden: list[int] = param([64, 64])
    critic_hidden: list[int] | None = param(None, help="null: same as hidden")
    activation: str = param("relu", choices=ACTIVATIONS)
    log_every: int = param(1000, ge=1, help="env steps between loss / truth logs")

    def validate(self, prefix: str) -> None:
        for key in ("hidden", "critic_hidden"):
            widths = getattr(self, key)
            if widths is not None and (not widths or min(widths) < 1):
                raise ConfigError(f"{prefix}.{key}={widths} is not allowed: give one or more positive widths")


@dataclass
class TD3Config(DDPGConfig):
    twin_critics: bool = param(True, help="TD3: two critics, target min_i Q_i")
    policy_delay: int = param(2, ge=1, help="TD3: critic steps per actor (and target) update")
    target_policy_noise: float = param(0.2, ge=0.0, help="TD3: sigma of the target smoothing noise; 0: off")


def smoothed_target_actions(actions: torch.Tensor, sigma: float, clip: float, generator: torch.Generator | None
                            ) -> torch.Tensor:  # fmt: skip
    """TD3 target policy smoothing: clip(a + clip(N(0, σ²), −c, c), −1, 1); ``a`` itself when σ = 0."""
    if sigma == 0.0:
        return actions
    noise = torch.randn(actions.shape, generator=generator).mul_(sigma).clamp_(-clip, clip)
    return (actions + noise).clamp_(-1.0, 1.0)


@register_agent
class DDPG(OffPolicyAgent):
    """DDPG / TD3 agent for a bounded 1-D Box action space (any Box or Discrete observations)."""

    name = "ddpg"
    family = "deterministic_policy_gradient"
    solves_policy_truth = True
    Config = DDPGConfig
    saved_parts = ("actor", "critic", "actor_target", "critic_target", "actor_optimizer", "critic_optimizer", "noise")

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        space = env.action_space
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise ConfigError(f"algo={cls.name} needs a continuous (1-D Box) action space; the env has {space} "
                              f"(continuous envs: {CONTINUOUS_ENVS})")  # fmt: skip
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ConfigError(f"algo={cls.name} needs finite action bounds (its tanh actor is scaled to them); "
                              f"the env has {space}")  # fmt: skip

    def setup(self) -> None:
        super().setup()
        env, cfg = self.env, self.config
        self.scaler = ActionScaler(env.action_space)
        self.action_dim = int(env.action_space.shape[0])
        critic_hidden = list(cfg.critic_hidden if cfg.critic_hidden is not None else cfg.hidden)
        with seeded_torch(self.seed):
            self.actor = DeterministicActor(env.observation_space, self.action_dim, list(cfg.hidden), cfg.activation)
            self.critic = ActionValueCritic(env.observation_space, self.action_dim, critic_hidden, cfg.activation,
                                            n_critics=2 if cfg.twin_critics else 1)  # fmt: skip
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_params, self.critic_params = list(self.actor.parameters()), list(self.critic.parameters())
        self.target_params = [*self.actor_target.parameters(), *self.critic_target.parameters()]
        self.online_params = [*self.actor_params, *self.critic_params]
        critic_lr = cfg.critic_learning_rate if cfg.critic_learning_rate is not None else cfg.learning_rate
        self.actor_optimizer = torch.optim.Adam(self.actor_params, lr=cfg.learning_rate, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic_params, lr=critic_lr, fused=True)
        self.buffer = ReplayBuffer(cfg.buffer_size, env.observation_space.shape, (self.action_dim,),
                                   action_dtype=np.float32, n_envs=1, n_step=1, gamma=cfg.gamma)  # fmt: skip
        self.noise = make_noise(cfg.noise, self.action_dim, cfg.noise_std, self.rng, theta=cfg.ou_theta, dt=cfg.ou_dt)
        self.generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))  # target smoothing noise
        # ground truth where a discrete model stands behind the continuous action (the continuous GridWorld)
        self.truth, self.states = optimal_truth_and_states(env, cfg.gamma) if hasattr(env.unwrapped, "move_of") \
            else (None, None)  # fmt: skip
        self.n_critic_updates = 0

    # ---- acting -------------------------------------------------------------------------
    def actor_actions(self, obs: np.ndarray) -> np.ndarray:
        """μ(s) ∈ [−1, 1]^d for a batch of observations."""
        with torch.inference_mode():
            return self.actor(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()

    def _act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """The env action scaler(μ(s)), plus exploration noise when not ``deterministic``."""
        u = self.actor_actions(np.asarray(obs, dtype=np.float32)[None])[0]
        if not deterministic:
            u = np.clip(u + self.noise.sample(), -1.0, 1.0)
        return self.scaler.to_env(u)

    def behaviour_action(self, obs: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Uniform in [−1, 1]^d for the first ``learning_starts`` steps, then clip(μ(s) + noise, −1, 1)."""
        if step < self.config.learning_starts:
            u = self.rng.uniform(-1.0, 1.0, self.action_dim)
        else:
            u = np.clip(self.actor_actions(obs[None])[0] + self.noise.sample(), -1.0, 1.0)
        u = u.astype(np.float32)
        return u, self.scaler.to_env(u)

    def on_episode_end(self) -> None:
        self.noise.reset()

    # ---- learning -----------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: TransitionBatch) -> torch.Tensor:
        """y = R + d · min_i Q⁻_i(s', ã') with ã' the (smoothed) target actor's action."""
        cfg = self.config
        next_obs = torch.from_numpy(batch.next_obs)
        next_actions = smoothed_target_actions(self.actor_target(next_obs), cfg.target_policy_noise,
                                               cfg.target_noise_clip, self.generator)  # fmt: skip
        next_q = self.critic_target(next_obs, next_actions).amin(dim=0)
        return torch.from_numpy(batch.rewards) + torch.from_numpy(batch.discounts) * next_q

    def train_step(self) -> float:
        """One critic step and, every ``policy_delay`` of them, one actor step and the target updates."""
        cfg = self.config
        batch = self.buffer.sample(cfg.batch_size, self.rng)
        obs, actions = torch.from_numpy(batch.obs), torch.from_numpy(batch.actions)
        target = self.td_target(batch)
        q = self.critic(obs, actions)
        critic_loss = F.mse_loss(q, target.expand_as(q), reduction="none").mean(dim=1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self.n_critic_updates += 1
        self.stats.update(critic_loss=critic_loss.item(), q_values=float(q[0].detach().mean()))
        if self.n_critic_updates % cfg.policy_delay == 0:
            actor_loss = -self.critic.first(obs, self.actor(obs)).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward(inputs=self.actor_params)  # no gradients for the critic's weights
            self.actor_optimizer.step()
            polyak_update(self.target_params, self.online_params, cfg.tau)
            self.n_updates += 1
            self.stats["actor_loss"] = actor_loss.item()
        return self.stats["critic_loss"]

    # ---- ground truth -------------------------------------------------------------------
    def truth_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The one-hot table (S, A) of the moves μ picks in every state (``move_of`` its action), and the
        critic's Q_1(s, μ(s))."""
        obs = torch.as_tensor(self.states)
        with torch.inference_mode():
            u = self.actor(obs)
            v = self.critic.first(obs, u).double().numpy()
        moves = self.env.unwrapped.move_of(self.scaler.to_env(u.numpy()))
        return np.eye(self.truth.model.n_actions)[moves], v

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "gradient_steps": self.n_critic_updates, "actor_updates": self.n_updates}

    # ---- persistence --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        own = {"generator": self.generator.get_state(), "n_critic_updates": self.n_critic_updates}
        return {**super().state_dict(), **own}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
        self.n_critic_updates = int(state["n_critic_updates"])


@register_agent
class TD3(DDPG):
    """TD3: DDPG with twin critics, delayed actor updates and target policy smoothing switched on."""

    name = "td3"
    Config = TD3Config
