"""Deterministic policy gradient: DDPG (Lillicrap et al., 2016) and TD3 (Fujimoto et al., 2018) as one
member of the replay actor-critic family (``replay_actor_critic.py``: replay loop, critics, targets, scaling).

Critic: minimise Σ_i (Q_i(s, a) − y)² with y = R + d · min_i Q⁻_i(s', ã'), ã' = clip(μ⁻(s') + ε, −1, 1),
ε = clip(N(0, σ̃²), −c, c) (target policy smoothing; ε = 0 when ``target_policy_noise`` = 0), d = γ or
0 after a termination, and i over one critic (DDPG) or two (``twin_critics``: clipped double Q).
Actor, every ``policy_delay`` critic steps: ascend the deterministic policy gradient
∇_θ E[Q_1(s, μ_θ(s))] (Silver et al., 2014) — with ``spg_samples`` M > 0 also descend the sampled policy
gradient's pull E[1[Q_1(s, a*) > Q_1(s, μ(s))] ‖μ_θ(s) − a*‖²] toward the best a* of M candidates
clip(μ(s) + σ ε_j, −1, 1) (Wiehe et al., 2018), which crosses regions where Q_1 is flat in a (a piecewise-constant
action map: the continuous GridWorld's moves) and ∇_a Q_1 is zero; then both target networks move by Polyak averaging
θ⁻ ← τ θ + (1 − τ) θ⁻. DDPG is this with one critic, ``policy_delay`` 1 and no smoothing; TD3 turns
the three on. Actions live in [−1, 1]^d (tanh actor) and are mapped affinely onto the env's Box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rlzoo.agents.registry import register_agent
from rlzoo.agents.replay_actor_critic import ReplayActorCritic, ReplayActorCriticConfig
from rlzoo.approximators import ActionValueCritic
from rlzoo.config import param
from rlzoo.noise import NOISE_KINDS, make_noise
from rlzoo.policy_networks import DeterministicActor
from rlzoo.seed_stack import generators_of


@dataclass
class DDPGConfig(ReplayActorCriticConfig):
    noise: str = param("gaussian", choices=NOISE_KINDS, help="exploration noise")
    noise_std: float = param(0.1, ge=0.0, help="sigma of the exploration noise, in [-1, 1] action units")
    ou_theta: float = param(0.15, ge=0.0, help="Ornstein-Uhlenbeck mean reversion")
    ou_dt: float = param(1e-2, gt=0.0, help="Ornstein-Uhlenbeck time step")
    twin_critics: bool = param(False, help="TD3: two critics, target min_i Q_i")
    policy_delay: int = param(1, ge=1, help="TD3: critic steps per actor (and target) update")
    target_policy_noise: float = param(0.0, ge=0.0, help="TD3: sigma of the target smoothing noise; 0: off")
    target_noise_clip: float = param(0.5, ge=0.0, help="TD3: the smoothing noise is clipped to [-c, c]")
    spg_samples: int = param(0, ge=0, help="sampled policy gradient: candidate actions per state; 0: off")
    spg_std: float = param(0.5, gt=0.0, help="sampled policy gradient: sigma of the candidates around mu(s)")


@dataclass
class TD3Config(DDPGConfig):
    twin_critics: bool = param(True, help="TD3: two critics, target min_i Q_i")
    policy_delay: int = param(2, ge=1, help="TD3: critic steps per actor (and target) update")
    target_policy_noise: float = param(0.2, ge=0.0, help="TD3: sigma of the target smoothing noise; 0: off")


def smoothed_target_actions(actions: torch.Tensor, noise: torch.Tensor | None, sigma: float, clip: float
                            ) -> torch.Tensor:  # fmt: skip
    """TD3 target policy smoothing: clip(a + clip(σ ε, −c, c), −1, 1) with ε ~ N(0, I) given as ``noise``; ``a``
    itself when there is no noise (σ = 0)."""
    if noise is None:
        return actions
    return (actions + (noise * sigma).clamp(-clip, clip)).clamp(-1.0, 1.0)


@register_agent
class DDPG(ReplayActorCritic):
    """DDPG / TD3 agent for a bounded 1-D Box action space (any Box or Discrete observations)."""

    name = "ddpg"
    family = "deterministic_policy_gradient"
    Config = DDPGConfig
    seed_batchable = True
    targeted = ("actor", "critic")
    saved_parts = ("actor", "critic", "actor_target", "critic_target", "actor_optimizer", "critic_optimizer", "noise")

    def setup(self) -> None:
        cfg = self.config
        self.n_critics = 2 if cfg.twin_critics else 1
        self.actor_interval = self.target_interval = cfg.policy_delay  # TD3's delayed actor and target updates
        super().setup()
        self.noise = make_noise(cfg.noise, self.action_dim, cfg.noise_std, self.rng, theta=cfg.ou_theta, dt=cfg.ou_dt)

    def build_actor(self) -> torch.nn.Module:
        cfg = self.config
        return DeterministicActor(self.env.observation_space, self.action_dim, list(cfg.hidden), cfg.activation)

    def build_critic(self, hidden: list[int]) -> torch.nn.Module:
        return ActionValueCritic(self.env.observation_space, self.action_dim, hidden, self.config.activation,
                                 n_critics=self.n_critics)  # fmt: skip

    # ---- acting -------------------------------------------------------------------------
    def greedy_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """μ(s) ∈ [−1, 1]^d."""
        return self.actor(obs)

    def behaviour_actions(self, obs: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Uniform in [−1, 1]^d for the first ``learning_starts`` steps, then clip(μ(s) + noise, −1, 1), for every
        lane's observation (K, obs_dim), each lane's draws from its own generator and noise process."""
        lanes = self.lanes
        if step < self.config.learning_starts:
            us = np.stack([g.uniform(-1.0, 1.0, self.action_dim) for g in generators_of(self.rng)])
        else:
            x = self.tensor(obs)
            with torch.inference_mode():
                mu = self.acting(x[:, None] if self.n_seeds > 1 else x).reshape(len(lanes), -1).cpu().numpy()
            us = np.clip(mu + np.stack([lane.noise.sample() for lane in lanes]), -1.0, 1.0)
        stored = us.astype(np.float32)
        return stored, self.scaler.to_env(stored)

    def on_episode_end(self) -> None:
        self.noise.reset()

    # ---- learning -----------------------------------------------------------------------
    def target_noise(self, n: int) -> torch.Tensor | None:
        """ε ~ N(0, I) for TD3's target smoothing (None when ``target_policy_noise`` = 0)."""
        if self.config.target_policy_noise == 0.0:
            return None
        return self.normal_draw((n, self.action_dim))

    def td_target(self, next_obs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor,
                  noise: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """y = R + d · min_i Q⁻_i(s', ã') with ã' the (smoothed) target actor's action."""
        cfg = self.config
        next_actions = smoothed_target_actions(self.actor_target(next_obs), noise, cfg.target_policy_noise,
                                               cfg.target_noise_clip)  # fmt: skip
        return rewards + discounts * self.critic_target(next_obs, next_actions).amin(dim=0)

    def actor_noise(self, n: int) -> torch.Tensor | None:
        """ε ~ N(0, I), (``spg_samples``, n, d), for the sampled policy gradient's candidates (None when off)."""
        m = self.config.spg_samples
        return self.normal_draw((m, n, self.action_dim)) if m else None

    def actor_loss(self, obs: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, None]:
        """−E[Q_1(s, μ_θ(s))]: its gradient is the deterministic policy gradient (Silver et al., 2014); with
        ``spg_samples`` candidates per state, plus the sampled policy gradient's pull E[1_better ‖μ_θ(s) − a*‖²]."""
        mu = self.actor(obs)
        q_mu = self.critic.first(obs, mu)
        loss = -q_mu.mean(dim=-1)
        if noise is None:
            return loss, None
        best, better = best_sampled_actions(self.critic.first_candidates, obs, mu, q_mu, noise, self.config.spg_std)
        return loss + (better * (mu - best).square().sum(dim=-1)).mean(dim=-1), None


@torch.no_grad()
def best_sampled_actions(q_candidates: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], obs: torch.Tensor,
                         mu: torch.Tensor, q_mu: torch.Tensor, noise: torch.Tensor, sigma: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The sampled policy gradient's target (Wiehe et al., 2018, arXiv:1809.05763): for each state s, the best of the
    M candidates a_j = clip(μ(s) + σ ε_j, −1, 1) under the critic, a* = argmax_j q(s, a_j), and whether it beats μ(s):
    1[q(s, a*) > q(s, μ(s))].

    Shapes: ``mu`` (..., B, d) and ``q_mu`` (..., B) for the B states ``obs`` (..., B, *obs_shape); ``noise``
    (..., M, B, d); ``q_candidates(obs, candidates)`` scores candidates (..., M, B, d) as (..., M, B)
    (``ActionValueCritic.first_candidates``). Returns a* (..., B, d) and the indicator (..., B) as ``mu``'s dtype.
    """
    candidates = (mu.unsqueeze(-3) + sigma * noise).clamp(-1.0, 1.0)  # (..., M, B, d)
    top, index = q_candidates(obs, candidates).max(dim=-2)  # (..., B)
    best = torch.take_along_dim(candidates, index[..., None, :, None], dim=-3).squeeze(-3)
    return best, (top > q_mu).to(mu.dtype)


@register_agent
class TD3(DDPG):
    """TD3: DDPG with twin critics, delayed actor updates and target policy smoothing switched on."""

    name = "td3"
    Config = TD3Config
