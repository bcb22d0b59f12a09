"""DQN (Mnih et al., 2015) with Double DQN (van Hasselt et al., 2016), dueling heads (Wang et al.,
2016) and n-step returns as options, on the shared MLP approximator and replay buffer.

Loss: Huber(Q(s, a) − y) with y = R + d · Q_target(s', argmax_a' Q_•(s', a')), where R is the
(n-step) return, d = γ^k (0 after termination) and • is the target network (DQN) or the online
network (Double DQN). The target network follows the online one every ``target_update_interval``
env steps by θ⁻ ← τ θ + (1 − τ) θ⁻ (τ = 1: a hard copy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from rlzoo.agents.base import Agent, require_discrete_actions
from rlzoo.agents.off_policy import OffPolicyAgent
from rlzoo.agents.registry import register_agent
from rlzoo.approximators import ACTIVATIONS, polyak_update, q_network
from rlzoo.bellman import greedy
from rlzoo.buffers import ReplayBuffer, SeedBatchReplay
from rlzoo.config import ConfigError, DiscountedConfig, param
from rlzoo.logging import RunLogger
from rlzoo.schedules import LinearSchedule
from rlzoo.seed_stack import (
    clip_gradients,
    copy_optimizer_state,
    generators_of,
    load_optimizer_state,
    per_seed,
    stack_modules,
)
from rlzoo.seeding import seeded_torch
from rlzoo.truth import optimal_truth_and_states


@dataclass
class DQNConfig(DiscountedConfig):
    gamma: float = param(0.99, ge=0.0, lt=1.0)
    learning_rate: float = param(1e-4, gt=0.0)
    buffer_size: int = param(100_000, ge=1)
    learning_starts: int = param(1000, ge=0)
    batch_size: int = param(32, ge=1)
    train_freq: int = param(4, ge=1, help="env steps between training phases")
    gradient_steps: int = param(1, ge=1, help="gradient steps per training phase")
    target_update_interval: int = param(1000, ge=1, help="env steps between target updates")
    tau: float = param(1.0, gt=0.0, le=1.0, help="target update coefficient; 1 = hard copy")
    exploration_fraction: float = param(0.1, ge=0.0, le=1.0)
    exploration_initial_eps: float = param(1.0, ge=0.0, le=1.0)
    exploration_final_eps: float = param(0.05, ge=0.0, le=1.0)
    max_grad_norm: float = param(10.0, gt=0.0)
    double: bool = False
    dueling: bool = False
    n_step: int = param(1, ge=1)
    hidden: list[int] = param([64, 64])
    activation: str = param("relu", choices=ACTIVATIONS)
    log_every: int = param(1000, ge=1, help="env steps between loss / truth logs")


def td_targets(rewards, discounts, next_q_target, next_q_online=None):
    """y = R + d · Q_target(s', a*) with a* = argmax Q_target(s', ·) (DQN) or argmax Q_online(s', ·) (Double);
    actions on the last axis (a seed batch's leading seed axis passes through)."""
    if next_q_online is None:
        next_v = next_q_target.max(dim=-1).values
    else:
        next_v = next_q_target.gather(-1, next_q_online.argmax(dim=-1, keepdim=True)).squeeze(-1)
    return rewards + discounts * next_v


@register_agent
class DQN(OffPolicyAgent):
    """Deep Q-network agent for Box observations and Discrete actions."""

    name = "dqn"
    family = "value_approximation"
    Config = DQNConfig
    runs_on_device = True
    acts_in_batches = True
    seed_batchable = True
    saved_parts = ("q_net", "target_net", "optimizer")

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        require_discrete_actions(cls, env)
        obs = env.observation_space
        if not (isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1):
            hint = (
                " (for GridWorld use env.obs=onehot or env.obs=coords)" if isinstance(obs, gym.spaces.Discrete) else ""
            )
            raise ConfigError(f"algo=dqn needs flat Box observations; the env has {obs}{hint}")

    def setup(self) -> None:
        super().setup()
        env, cfg = self.env, self.config
        self.obs_dim = int(env.observation_space.shape[0])
        self.n_actions = int(env.action_space.n)
        with seeded_torch(self.seed):  # a seeded agent's initial weights are its own, in any process and device
            q_net = q_network(self.obs_dim, self.n_actions, list(cfg.hidden), cfg.activation, cfg.dueling)
        self.q_net = q_net.to(self.device)
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.optimizer = self.build_optimizer()
        self.buffer = ReplayBuffer(cfg.buffer_size, (self.obs_dim,), n_envs=1, n_step=cfg.n_step, gamma=cfg.gamma,
                                   device=self.storage_device)  # fmt: skip
        self.truth, self.states = optimal_truth_and_states(env, cfg.gamma)

    def build_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.q_net.parameters(), lr=self.config.learning_rate, fused=True)

    def begin(self, total_steps: int, logger: RunLogger) -> None:
        """Start a ``learn`` call: ε decays linearly over ``exploration_fraction`` of its ``total_steps``."""
        super().begin(total_steps, logger)
        self.begin_stacked(total_steps)

    def begin_stacked(self, total_steps: int) -> None:
        super().begin_stacked(total_steps)
        cfg = self.config
        steps = max(1, int(cfg.exploration_fraction * total_steps))
        self.epsilon = LinearSchedule(cfg.exploration_initial_eps, cfg.exploration_final_eps, steps)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q(s, ·) for a batch of observations (B, obs_dim) → (B, A)."""
        with torch.inference_mode():
            return self.q_net(self.tensor(np.asarray(obs, dtype=np.float32))).cpu().numpy()

    def _act(self, obs: Any, deterministic: bool = True) -> int:
        if not deterministic and self.rng.random() < self.config.exploration_final_eps:
            return int(self.rng.integers(self.n_actions))
        return int(self._act_batch(np.asarray(obs)[None])[0])

    def _act_batch(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(s, a) for a batch of observations, in one call."""
        return self.q_values(obs).argmax(axis=-1)

    def train_step(self) -> float | list[float]:
        """One gradient step on a uniform minibatch (a seed batch's: each seed's own, its loss the mean over its own
        minibatch); its Huber TD loss and mean Q into ``stats``; returns the loss (a seed batch's: one per seed)."""
        cfg = self.config
        batch = self.buffer.sample_tensors(cfg.batch_size, self.rng)
        with torch.no_grad():
            online = self.q_net(batch.next_obs) if cfg.double else None
            target = td_targets(batch.rewards, batch.discounts, self.target_net(batch.next_obs), online)
        q = self.q_net(batch.obs).gather(-1, batch.actions[..., None]).squeeze(-1)
        loss = F.smooth_l1_loss(q, target, reduction="none").mean(dim=-1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        clip_gradients(self.q_net.parameters(), cfg.max_grad_norm, self.n_seeds)
        self.optimizer.step()
        self.n_updates += 1
        self.stats = {"td_loss": per_seed(loss.detach()), "q_values": per_seed(q.detach().mean(dim=-1))}
        return self.stats["td_loss"]

    def update_target(self) -> None:
        """θ⁻ ← τ θ + (1 − τ) θ⁻ (τ = 1: a hard copy)."""
        polyak_update(list(self.target_net.parameters()), list(self.q_net.parameters()), self.config.tau)

    def behaviour_actions(self, obs: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """ε-greedy on Q for every lane's observation (K, obs_dim), each lane's draws from its own generator."""
        eps = self.epsilon(step)
        generators = generators_of(self.rng)
        explore = [g.random() < eps for g in generators]
        greedy_actions = None if all(explore) else self.greedy_actions(obs)
        actions = [g.integers(self.n_actions) if e else greedy_actions[k]
                   for k, (g, e) in enumerate(zip(generators, explore, strict=True))]  # fmt: skip
        actions = np.array(actions, dtype=np.int64)
        return actions, actions

    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(s, a) for each lane's observation (K, obs_dim) → (K,)."""
        x = self.tensor(np.asarray(obs, dtype=np.float32))
        with torch.inference_mode():
            q = self.q_net(x[:, None] if self.n_seeds > 1 else x)
        return q.reshape(len(obs), -1).argmax(dim=-1).cpu().numpy()

    # ---- seed batches (rlzoo.seed_batch) -----------------------------------------------------
    @classmethod
    def stacked(cls, lanes: list[DQN]) -> DQN:
        """A copy of the first lane whose online and target networks hold every lane's (``stack_modules``), whose
        optimizer steps them all, whose generator draws each lane's numbers and whose buffer samples each lane's
        own (``SeedBatchReplay``); the lanes' envs, buffers and episodes stay theirs (``OffPolicyAgent.advance``)."""
        stacked = super().stacked(lanes)
        stacked.q_net = stack_modules([lane.q_net for lane in lanes])
        stacked.target_net = stack_modules([lane.target_net for lane in lanes]).requires_grad_(False)
        stacked.optimizer = stacked.build_optimizer()
        load_optimizer_state(stacked.optimizer, [lane.optimizer for lane in lanes])
        stacked.buffer = SeedBatchReplay([lane.buffer for lane in lanes])
        return stacked

    def sync_lane(self, lane: Agent, k: int) -> None:
        super().sync_lane(lane, k)
        copy_optimizer_state(self.optimizer, lane.optimizer, k)

    def after_env_step(self, step: int) -> None:
        if step % self.config.target_update_interval == 0:
            self.update_target()

    def log_point(self, step: int) -> dict[str, float]:
        return {"charts/epsilon": self.epsilon(step)}

    def truth_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The greedy policy on Q and v = max_a Q(s, a) in every state."""
        q = self.q_values(self.states)
        return greedy(q), q.max(axis=1)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "gradient_steps": self.n_updates}
