"""The off-policy actor-critics on a replay buffer — DDPG, TD3 (``ddpg.py``) and SAC (``sac.py``) — as one family.

Shared here: the replay loop (``OffPolicyAgent``), the critics Q_i and their Polyak targets, the critic step, the
cadence of actor and target updates, the action scaling onto the env's Box, ground truth and persistence. A member
supplies its actor (``build_actor``, ``greedy_actions``, ``behaviour_action``), its TD target and its actor step.

Critic step on a minibatch: minimise Σ_i mean_batch (Q_i(s, a) − y)², y = ``td_target`` (no gradient). Every
``actor_interval`` critic steps one step down ``actor_loss``; every ``target_interval`` critic steps the targets move
by Polyak averaging θ⁻ ← τ θ + (1 − τ) θ⁻ (Lillicrap et al., 2016). The two losses are pure functions of the
minibatch and of the random draws made before them (``target_noise``, ``actor_noise``), so that ``torch.compile``
can trace them and a compiled run draws the same numbers as an eager one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlzoo.action_scaling import ActionScaler
from rlzoo.agents.base import Agent, compiled
from rlzoo.agents.off_policy import OffPolicyAgent
from rlzoo.approximators import ACTIVATIONS, polyak_update
from rlzoo.buffers import ReplayBuffer, SeedBatchReplay
from rlzoo.config import ConfigError, DiscountedConfig, param
from rlzoo.devices import restore_generator
from rlzoo.live_state import joined_reasons
from rlzoo.seed_stack import (
    copy_optimizer_state,
    load_optimizer_state,
    per_seed,
    stack_modules,
)
from rlzoo.seeding import seeded_torch
from rlzoo.truth import optimal_truth_and_states

CONTINUOUS_ENVS = "env=pendulum, env=mountaincar_continuous, env=gridworld_continuous or a MuJoCo env"


@dataclass
class ReplayActorCriticConfig(DiscountedConfig):
    """Keys every replay actor-critic has (the values are DDPG's; SAC's schema sets its own)."""

    gamma: float = param(0.98, ge=0.0, lt=1.0)
    learning_rate: float = param(1e-3, gt=0.0, help="actor step size")
    critic_learning_rate: float | None = param(None, gt=0.0, help="null: learning_rate")
    buffer_size: int = param(200_000, ge=1)
    learning_starts: int = param(1000, ge=0, help="env steps of uniformly random actions before training")
    batch_size: int = param(256, ge=1)
    train_freq: int = param(1, ge=1, help="env steps between training phases")
    gradient_steps: int = param(1, ge=1, help="critic steps per training phase")
    tau: float = param(0.005, gt=0.0, le=1.0, help="Polyak coefficient of the target networks")
    hidden: list[int] = param([64, 64])
    critic_hidden: list[int] | None = param(None, help="null: same as hidden")
    activation: str = param("relu", choices=ACTIVATIONS)
    log_every: int = param(1000, ge=1, help="env steps between loss / truth logs")

    def validate(self, prefix: str) -> None:
        for key in ("hidden", "critic_hidden"):
            widths = getattr(self, key)
            if widths is not None and (not widths or min(widths) < 1):
                raise ConfigError(f"{prefix}.{key}={widths} is not allowed: give one or more positive widths")


def require_bounded_box(cls: type, env: gym.Env) -> None:
    """``ConfigError`` unless the action space is a 1-D Box with finite bounds (a tanh actor is scaled to them)."""
    space = env.action_space
    if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
        raise ConfigError(f"algo={cls.name} needs a continuous (1-D Box) action space; the env has {space} "
                          f"(continuous envs: {CONTINUOUS_ENVS})")  # fmt: skip
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ConfigError(f"algo={cls.name} needs finite action bounds (its tanh actor is scaled to them); "
                          f"the env has {space}")  # fmt: skip


@dataclass(frozen=True)
class LossFunctions:
    """The two loss computations of a training step (eager, or compiled by ``torch.compile``)."""

    critic: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    actor: Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


class ReplayActorCritic(OffPolicyAgent):
    """An actor μ or π, critics Q_1..Q_n with Polyak targets, one replay buffer (see the module docstring)."""

    family = "replay_actor_critic"
    solves_policy_truth = True
    has_compiled_update = True
    runs_on_device = True
    acts_in_batches = True
    discrete_actions = False  # True: a Discrete action space (integer actions, critics Q_i(s, ·))

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        require_bounded_box(cls, env)

    # ---- what a member supplies ---------------------------------------------------------
    n_critics: int = 1
    targeted: tuple[str, ...] = ("critic",)  # networks with a Polyak target network, ``<name>_target``
    actor_interval: int = 1  # critic steps per actor step
    target_interval: int = 1  # critic steps per Polyak update of the targets

    def build_actor(self) -> torch.nn.Module:
        raise NotImplementedError

    def build_critic(self, hidden: list[int]) -> torch.nn.Module:
        raise NotImplementedError

    def greedy_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic policy's actions for a batch (in [−1, 1]^d; integer actions when discrete)."""
        raise NotImplementedError

    def td_target(self, next_obs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor,
                  noise: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """The critics' regression target y, shape (B,) (called under ``torch.no_grad``); ``noise`` is
        ``target_noise``'s draw."""
        raise NotImplementedError

    def actor_loss(self, obs: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The actor's loss on the minibatch's observations and, for a stochastic actor, its mean entropy (detached);
        ``noise`` is ``actor_noise``'s draw."""
        raise NotImplementedError

    def target_noise(self, n: int) -> torch.Tensor | None:
        """The random draw ``td_target`` needs for ``n`` transitions (from ``generator``), or None."""
        return None

    def normal_draw(self, shape: tuple[int, ...]) -> torch.Tensor:
        """ε ~ N(0, I) of ``shape`` from ``generator`` — a stacked agent's: each lane's from its own, (K, *shape)."""
        if self.n_seeds == 1:
            return torch.randn(shape, generator=self.generator, device=self.device)
        return torch.stack([torch.randn(shape, generator=lane.generator, device=self.device) for lane in self.lanes])

    def actor_noise(self, n: int) -> torch.Tensor | None:
        """The random draw ``actor_loss`` needs for ``n`` observations (from ``generator``), or None."""
        return None

    def after_actor_step(self, entropy: torch.Tensor | None) -> None:
        """Called after each actor step with ``actor_loss``'s entropy (SAC: the temperature step)."""

    # ---- parts --------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        env, cfg = self.env, self.config
        space = env.action_space
        self.action_dim = 1 if self.discrete_actions else int(space.shape[0])
        self.scaler = None if self.discrete_actions else ActionScaler(space)
        critic_hidden = list(cfg.critic_hidden if cfg.critic_hidden is not None else cfg.hidden)
        with seeded_torch(self.seed):  # built on the CPU, then moved: the same initial weights on any device
            self.actor = self.build_actor().to(self.device)
            self.critic = self.build_critic(critic_hidden).to(self.device)
        for name in self.targeted:
            setattr(self, f"{name}_target", copy.deepcopy(getattr(self, name)).requires_grad_(False))
        self.build_optimizers()
        action_shape, action_dtype = ((), np.int64) if self.discrete_actions else ((self.action_dim,), np.float32)
        self.buffer = ReplayBuffer(cfg.buffer_size, env.observation_space.shape, action_shape,
                                   action_dtype=action_dtype, n_envs=1, n_step=1, gamma=cfg.gamma,
                                   device=self.storage_device)  # fmt: skip
        self.generator = torch.Generator(self.device).manual_seed(int(self.rng.integers(2**62)))  # the member's noise
        # ground truth where a discrete model stands behind the env (the GridWorld; continuous: its move_of)
        has_model = self.discrete_actions or hasattr(env.unwrapped, "move_of")
        self.truth, self.states = optimal_truth_and_states(env, cfg.gamma) if has_model else (None, None)
        self.n_critic_updates = 0
        self.bind_parts()

    def build_optimizers(self) -> None:
        """Adam for the actor and for the critics (the critics' own ``critic_learning_rate`` when set)."""
        cfg = self.config
        self.actor_params, self.critic_params = list(self.actor.parameters()), list(self.critic.parameters())
        critic_lr = cfg.critic_learning_rate if cfg.critic_learning_rate is not None else cfg.learning_rate
        self.actor_optimizer = torch.optim.Adam(self.actor_params, lr=cfg.learning_rate, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic_params, lr=critic_lr, fused=True)

    def bind_parts(self) -> None:
        """The parameter lists of the Polyak update and the loss and acting functions, of this agent's networks."""
        self.target_params = [p for name in self.targeted for p in getattr(self, f"{name}_target").parameters()]
        self.online_params = [p for name in self.targeted for p in getattr(self, name).parameters()]
        self.losses = LossFunctions(self.critic_loss, self.actor_loss)
        self.acting: Callable[[torch.Tensor], Any] = self.actor  # the actor's forward pass for behaviour actions

    # ---- learning -----------------------------------------------------------------------
    def compile(self, backend: str = "inductor") -> ReplayActorCritic:
        """Both loss computations, forward and backward, and the actor's forward pass that picks behaviour actions
        (``acting``) through ``torch.compile`` as whole graphs (TorchInductor: fused elementwise kernels around the
        matrix products; on a GPU replayed as CUDA graphs, LeanRL's recipe); the optimiser steps stay eager (fused
        Adam). Same draws, same numbers up to float rounding."""
        losses = (self.critic_loss, self.actor_loss)
        self.losses = LossFunctions(*(compiled(f, self.device, backend) for f in losses))
        self.acting = compiled(self.actor, self.device, backend)
        return self

    def critic_loss(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor,
                    discounts: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, ...]:  # fmt: skip
        """Σ_i mean_batch (Q_i(s, a) − y)², and each critic's loss and mean value (detached)."""
        with torch.no_grad():
            target = self.td_target(next_obs, rewards, discounts, noise)
        q = self.critic(obs, actions)
        per_critic = (q - target).square().mean(dim=-1)  # (n,), a seed batch's (n, K)
        return per_critic.sum(dim=0), per_critic.detach(), q.detach().mean(dim=-1)

    def train_step(self) -> float:
        """One critic step; an actor step every ``actor_interval`` and a target update every ``target_interval``."""
        cfg = self.config
        batch = self.buffer.sample_tensors(cfg.batch_size, self.rng)
        obs, noise = batch.obs, self.target_noise(cfg.batch_size)
        critic_loss, per_critic, q_means = self.losses.critic(obs, batch.actions, batch.next_obs, batch.rewards,
                                                              batch.discounts, noise)  # fmt: skip
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        self.critic_optimizer.step()
        self.n_critic_updates += 1
        self.stats.update(critic_loss=per_seed(critic_loss.detach()), q_values=per_seed(q_means[0]))
        if len(per_critic) > 1:  # each twin's loss and mean value (losses/qf1_loss, …)
            for i, (loss, value) in enumerate(zip(per_critic.tolist(), q_means.tolist(), strict=True)):
                self.stats.update({f"qf{i + 1}_loss": loss, f"qf{i + 1}_values": value})
        if self.n_critic_updates % self.actor_interval == 0:
            self.actor_step(obs, cfg.batch_size)
        if self.n_critic_updates % self.target_interval == 0:
            polyak_update(self.target_params, self.online_params, cfg.tau)
        return self.stats["critic_loss"]

    def actor_step(self, obs: torch.Tensor, n: int) -> None:
        """One step down ``actor_loss`` for the actor's weights only (the critics get no gradient) on the ``n``
        observations ``obs``."""
        actor_loss, entropy = self.losses.actor(obs, self.actor_noise(n))
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.sum().backward(inputs=self.actor_params)
        self.actor_optimizer.step()
        self.n_updates += 1
        self.stats["actor_loss"] = per_seed(actor_loss.detach())
        self.after_actor_step(entropy)

    # ---- seed batches (rlzoo.seed_batch) -----------------------------------------------------
    @classmethod
    def stacked(cls, lanes: list[ReplayActorCritic]) -> ReplayActorCritic:
        """A copy of the first lane whose actor, critics and targets hold every lane's (``stack_modules``), whose two
        optimizers step them all, whose generators draw each lane's numbers and whose buffer samples each lane's own
        (``SeedBatchReplay``); the lanes' envs, buffers, exploration noise and episodes stay theirs."""
        stacked = super().stacked(lanes)
        for name in ("actor", "critic", *(f"{t}_target" for t in cls.targeted)):
            module = stack_modules([getattr(lane, name) for lane in lanes])
            setattr(stacked, name, module.requires_grad_(False) if name.endswith("_target") else module)
        stacked.build_optimizers()
        load_optimizer_state(stacked.actor_optimizer, [lane.actor_optimizer for lane in lanes])
        load_optimizer_state(stacked.critic_optimizer, [lane.critic_optimizer for lane in lanes])
        stacked.bind_parts()
        stacked.buffer = SeedBatchReplay([lane.buffer for lane in lanes])
        return stacked

    def sync_lane(self, lane: Agent, k: int) -> None:
        super().sync_lane(lane, k)
        lane.n_critic_updates = self.n_critic_updates
        copy_optimizer_state(self.actor_optimizer, lane.actor_optimizer, k)
        copy_optimizer_state(self.critic_optimizer, lane.critic_optimizer, k)

    # ---- acting -------------------------------------------------------------------------
    def behaviour_action(self, obs: np.ndarray, step: int) -> tuple[Any, Any]:
        """The member's ``behaviour_actions`` for one observation."""
        stored, actions = self.behaviour_actions(np.asarray(obs)[None], step)
        return stored[0], actions[0]

    def _act(self, obs: Any, deterministic: bool = True) -> Any:
        """The greedy action (``deterministic``) or the behaviour policy's, in the env's units."""
        if not deterministic:
            return self.behaviour_action(np.asarray(obs, dtype=np.float32), self.config.learning_starts)[1]
        action = self._act_batch(np.asarray(obs)[None])[0]
        return int(action) if self.discrete_actions else action

    def _act_batch(self, obs: np.ndarray) -> np.ndarray:
        """The greedy actions for a batch of observations, in one call, in the env's units."""
        with torch.inference_mode():
            u = self.greedy_actions(self.tensor(np.asarray(obs, dtype=np.float32))).cpu().numpy()
        return u if self.discrete_actions else self.scaler.to_env(u)

    # ---- ground truth -------------------------------------------------------------------
    def truth_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The one-hot table (S, A) of the moves the greedy policy makes in every state (continuous: ``move_of`` its
        action), and the critic's Q_1(s, greedy(s))."""
        obs = self.tensor(self.states)
        with torch.inference_mode():
            u = self.greedy_actions(obs)
            v = self.critic(obs, u)[0].double().cpu().numpy()
            u = u.cpu().numpy()
        moves = u if self.discrete_actions else self.env.unwrapped.move_of(self.scaler.to_env(u))
        return np.eye(self.truth.model.n_actions)[moves], v

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "gradient_steps": self.n_critic_updates, "actor_updates": self.n_updates}

    # ---- persistence --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        own = {"generator": self.generator.get_state(), "generator_device": self.device.type,
               "n_critic_updates": self.n_critic_updates}  # fmt: skip
        return {**super().state_dict(), **own}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        noise = restore_generator(self.generator, state["generator"], state.get("generator_device", "cpu"), self.rng,
                                  "noise")  # fmt: skip
        self.state_inexact = joined_reasons(self.state_inexact, noise)  # after the replay buffer's own reason
        self.n_critic_updates = int(state["n_critic_updates"])
