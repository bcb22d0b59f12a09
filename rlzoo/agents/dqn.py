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

from rlzoo.agents.base import require_discrete_actions
from rlzoo.agents.off_policy import OffPolicyAgent
from rlzoo.agents.registry import register_agent
from rlzoo.approximators import ACTIVATIONS, polyak_update, q_network
from rlzoo.bellman import greedy
from rlzoo.buffers import ReplayBuffer
from rlzoo.config import ConfigError, DiscountedConfig, param
from rlzoo.logging import RunLogger
from rlzoo.schedules import LinearSchedule
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
    """y = R + d · Q_target(s', a*) with a* = argmax Q_target(s', ·) (DQN) or argmax Q_online(s', ·) (Double)."""
    if next_q_online is None:
        next_v = next_q_target.max(dim=1).values
    else:
        next_v = next_q_target.gather(1, next_q_online.argmax(dim=1, keepdim=True)).squeeze(1)
    return rewards + discounts * next_v


@register_agent
class DQN(OffPolicyAgent):
    """Deep Q-network agent for Box observations and Discrete actions."""

    name = "dqn"
    family = "value_approximation"
    Config = DQNConfig
    runs_on_device = True
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
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.learning_rate, fused=True)
        self.buffer = ReplayBuffer(cfg.buffer_size, (self.obs_dim,), n_envs=1, n_step=cfg.n_step, gamma=cfg.gamma,
                                   device=self.storage_device)  # fmt: skip
        self.truth, self.states = optimal_truth_and_states(env, cfg.gamma)

    def begin(self, total_steps: int, logger: RunLogger) -> None:
        """Start a ``learn`` call: ε decays linearly over ``exploration_fraction`` of its ``total_steps``."""
        super().begin(total_steps, logger)
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
        with torch.inference_mode():
            return int(self.q_net(self.tensor(np.asarray(obs, dtype=np.float32)[None])).argmax())

    def train_step(self) -> float:
        """One gradient step on a uniform minibatch; returns the Huber TD loss."""
        cfg = self.config
        batch = self.buffer.sample_tensors(cfg.batch_size, self.rng)
        with torch.no_grad():
            online = self.q_net(batch.next_obs) if cfg.double else None
            target = td_targets(batch.rewards, batch.discounts, self.target_net(batch.next_obs), online)
        q = self.q_net(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.n_updates += 1
        self.stats = {"td_loss": loss.item(), "q_values": float(q.detach().mean())}
        return self.stats["td_loss"]

    def update_target(self) -> None:
        """θ⁻ ← τ θ + (1 − τ) θ⁻ (τ = 1: a hard copy)."""
        polyak_update(list(self.target_net.parameters()), list(self.q_net.parameters()), self.config.tau)

    def behaviour_action(self, obs: np.ndarray, step: int) -> tuple[int, int]:
        """ε-greedy on Q."""
        explore = self.rng.random() < self.epsilon(step)
        action = int(self.rng.integers(self.n_actions)) if explore else self._act(obs)
        return action, action

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
