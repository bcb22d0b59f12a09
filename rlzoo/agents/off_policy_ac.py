"""Off-policy actor-critic with importance sampling (Degris et al., 2012; S. Zhao, ch. 10.5).

Actions come from a behaviour policy β; with ρ = π(a|s) / β(a|s) and δ = r + γ v(s') − v(s):
critic w ← w + α_w ρ δ ∇_w v(s), actor θ ← θ + α_θ ρ δ ∇_θ log π(a|s). ``behavior``: ``uniform``
(fixed β(a|s) = 1/|A|) or ``mixture`` (β = (1 − ε) π + ε/|A|, which keeps ρ ≤ 1/(1 − ε)).
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
from rlzoo.seed_stack import per_seed

BEHAVIORS = ("uniform", "mixture")


@dataclass
class OffPolicyACConfig(StepwiseActorCriticConfig):
    """QAC's batch and plain gradient steps, plus the behaviour policy and ratio truncation."""

    behavior: str = param("mixture", choices=BEHAVIORS, help="behaviour policy β")
    behavior_epsilon: float = param(0.5, ge=0.0, le=1.0, help="mixture: weight of the uniform policy in β")
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

    def select_actions(self, obs: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """a ~ β(·|s); the stored log-probability is log β(a|s)."""
        cfg = self.config
        behaviour = behaviour_distribution(self.policy(obs), cfg.behavior, cfg.behavior_epsilon)
        actions = behaviour.sample(self.rng)
        return to_host(actions, behaviour.log_prob(actions), self.critic(obs))

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
