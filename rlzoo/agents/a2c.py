"""A2C and REINFORCE: synchronous policy-gradient updates from on-policy rollouts of vector envs.

- ``a2c`` — advantage actor-critic (Mnih et al., 2016, synchronous form): every ``n_steps × n_envs``
  transitions, one step on −Â log π(a|s) with GAE(λ) advantages Â (λ = 0: the TD error
  r + γV(s') − V(s); λ = 1: the n-step return minus V(s)), a squared-error critic and an entropy bonus.
- ``reinforce`` — Monte-Carlo policy gradient (Williams, 1992): ∇J ≈ mean_t G_t ∇log π(a_t|s_t), with
  G_t − b(s_t) when a learned baseline b is on. Episodes cut by the end of a rollout (or by a time
  limit) are completed with the baseline's value (0 without one), as in Spinning Up's VPG; with
  ``n_steps`` at least an episode's length most returns are pure Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlzoo.agents.on_policy import (
    LR_SCHEDULES,
    ActorCriticConfig,
    GAEConfig,
    OnPolicyAgent,
    normalized_advantages,
    rollout_tensors,
)
from rlzoo.agents.registry import register_agent
from rlzoo.buffers import RolloutBuffer
from rlzoo.config import param


@dataclass
class A2CConfig(GAEConfig, ActorCriticConfig):
    lr_schedule: str = param("linear", choices=LR_SCHEDULES, help="linear: anneal to 0 at total_steps")
    gae_lambda: float = param(1.0, ge=0.0, le=1.0, help="GAE λ: 0 = TD-error advantages, 1 = n-step returns")
    normalize_advantage: bool = False


@dataclass
class ReinforceConfig(ActorCriticConfig):
    n_envs: int = param(4, ge=1)
    n_steps: int = param(500, ge=1)
    learning_rate: float = param(3e-3, gt=0.0)
    lr_schedule: str = param("linear", choices=LR_SCHEDULES, help="linear: anneal to 0 at total_steps")
    baseline: bool = param(True, help="learn a state-value baseline b(s) and use G_t − b(s_t)")
    normalize_advantage: bool = False


@register_agent
class A2C(OnPolicyAgent):
    """Synchronous advantage actor-critic on vector envs; categorical or Gaussian policies."""

    name = "a2c"
    Config = A2CConfig
    seed_batchable = True

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        obs, actions, advantages, returns = rollout_tensors(
            buffer, "obs", "actions", "advantages", "returns", device=self.device
        )
        if self.config.normalize_advantage and advantages.shape[-1] > 1:
            advantages = normalized_advantages(advantages)
        return self.gradient_step(obs, actions, advantages, returns)


@register_agent
class Reinforce(A2C):
    """REINFORCE with an optional learned baseline (Monte-Carlo returns: GAE with λ = 1)."""

    name = "reinforce"
    Config = ReinforceConfig

    def wants_critic(self) -> bool:
        return self.config.baseline
