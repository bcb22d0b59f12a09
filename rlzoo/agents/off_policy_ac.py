"""Off-policy actor-critic with importance sampling (Degris et al., 2012; S. Zhao, ch. 10.5).

Actions come from a behaviour policy β; with ρ = π(a|s) / β(a|s) and δ = r + γ v(s') − v(s):
critic w ← w + α_w ρ δ ∇_w v(s), actor θ ← θ + α_θ ρ δ ∇_θ log π(a|s). ``behavior``: ``uniform``
(fixed β(a|s) = 1/|A|) or ``mixture`` (β = (1 − ε) π + ε/|A|, which keeps ρ ≤ 1/(1 − ε)); the mixture's ε
decays linearly from ``behavior_epsilon`` to ``behavior_epsilon_final`` over ``behavior_epsilon_decay_steps`` (the
DQN-style schedule: wide exploration first, then behaviour episodes long enough to reach the states a good π visits).
``ratio_clip`` = c > 0 truncates ρ at c (as in ACER / Retrace), trading bias for variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rlzoo.agents.on_policy import OnPolicyAgent, rollout_tensors
from rlzoo.agents.qac import StepwiseActorCriticConfig
from rlzoo.agents.registry import register_agent
from rlzoo.buffers import RolloutBuffer
from rlzoo.config import param
from rlzoo.devices import to_host
from rlzoo.distributions import Categorical
from rlzoo.schedules import LinearSchedule
from rlzoo.seed_stack import per_seed

BEHAVIORS = ("uniform", "mixture")


@dataclass
class OffPolicyACConfig(StepwiseActorCriticConfig):
    """QAC's batch and plain gradient steps, plus the behaviour policy and ratio truncation."""

    behavior: str = param("mixture", choices=BEHAVIORS, help="behaviour policy β")
    behavior_epsilon: float = param(0.5, ge=0.0, le=1.0, help="mixture: weight of the uniform policy in β at step 0")
    behavior_epsilon_final: float | None = param(
        0.2, ge=0.0, le=1.0, help="mixture: ε after behavior_epsilon_decay_steps (None: constant behavior_epsilon)"
    )
    behavior_epsilon_decay_steps: int = param(50_000, ge=0, help="steps of the linear decay (0: constant ε)")
    ratio_clip: float = param(0.0, ge=0.0, help="truncate ρ at this value; 0: no truncation")


def behaviour_distribution(pi: Categorical, kind: str, epsilon: float) -> Categorical:
    """β(·|s): uniform, or the mixture (1 − ε) π(·|s) + ε/|A|."""
    n = pi.logits.shape[-1]
    if kind == "uniform":
        return Categorical(torch.full_like(pi.logits, -math.log(n)))
    return Categorical(torch.log((1.0 - epsilon) * pi.probs + epsilon / n))


@register_agent
class OffPolicyAC(OnPolicyAgent):
    """Actor-critic learning π from actions of a behaviour policy, with importance-sampling ratios."""

    name = "off_policy_ac"
    Config = OffPolicyACConfig
    discrete_actions_only = True
    seed_batchable = True

    @property
    def gae_lambda(self) -> float:
        return 0.0  # advantage = TD error δ, return = r + γ v(s')

    def setup(self) -> None:
        super().setup()
        cfg = self.config
        self.behaviour_epsilon = LinearSchedule(cfg.behavior_epsilon, cfg.behavior_epsilon_final,
                                                cfg.behavior_epsilon_decay_steps)  # fmt: skip

    def select_actions(self, obs: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """a ~ β(·|s) with the mixture's ε at the rollout's first step; the stored log-probability is log β(a|s)."""
        cfg = self.config
        epsilon = self.behaviour_epsilon(self.num_timesteps)
        behaviour = behaviour_distribution(self.policy(obs), cfg.behavior, epsilon)
        actions = behaviour.sample(self.rng)
        return to_host(actions, behaviour.log_prob(actions), self.critic(obs))

    def log_point(self, step: int) -> dict[str, float]:
        """The on-policy charts and, for the mixture, the behaviour policy's ε."""
        out = super().log_point(step)
        if self.config.behavior == "mixture":
            out["charts/behavior_epsilon"] = self.behaviour_epsilon(step)
        return out

    def importance_ratios(self, obs: torch.Tensor, actions: torch.Tensor, behaviour_log_probs: torch.Tensor):
        """ρ = π(a|s) / β(a|s), truncated at ``ratio_clip`` when it is positive."""
        with torch.no_grad():
            rho = torch.exp(self.policy(obs).log_prob(actions) - behaviour_log_probs)
        return rho.clamp_max(self.config.ratio_clip) if self.config.ratio_clip > 0 else rho

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        obs, actions, log_probs, td_errors, returns = rollout_tensors(
            buffer, "obs", "actions", "log_probs", "advantages", "returns", device=self.device
        )
        rho = self.importance_ratios(obs, actions, log_probs)
        stats = self.gradient_step(obs, actions, td_errors, returns, weights=rho)
        stats["importance_ratio"] = per_seed(rho.mean(dim=-1))
        return stats
