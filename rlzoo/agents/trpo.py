"""TRPO — trust-region policy optimisation (Schulman et al., 2015), with GAE (Schulman et al., 2016).

Policy step: maximise the surrogate L(θ) = mean ρ_θ Â (ρ = π_θ(a|s)/π_old(a|s)) subject to
mean KL(π_old ‖ π_θ) ≤ δ (``max_kl``). With g = ∇L and F the Fisher matrix (the Hessian of the mean
KL at θ_old), conjugate gradient (``cg_iters``) solves (F + λI) x = g using only Fisher-vector products
— double backpropagation of the KL, never F itself; the full step is √(2δ / xᵀFx) · x. A backtracking
line search (``line_search_steps`` fractions ``line_search_decay``^k of it) accepts the first step that
improves L and keeps the KL ≤ δ; if none does the policy is left unchanged. The value function is a
separate network fitted by Adam (``learning_rate``) for ``vf_epochs`` passes over the returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rlzoo.agents.on_policy import GAEConfig, OnPolicyAgent, OnPolicyConfig, make_optimizer, rollout_tensors
from rlzoo.agents.registry import register_agent
from rlzoo.buffers import RolloutBuffer
from rlzoo.config import param
from rlzoo.distributions import Categorical, DiagGaussian
from rlzoo.objectives import conjugate_gradient


@dataclass
class TRPOConfig(GAEConfig, OnPolicyConfig):
    n_envs: int = param(4, ge=1)
    n_steps: int = param(256, ge=1)
    learning_rate: float = param(1e-3, gt=0.0, help="the value function's step size (the policy has none)")
    max_kl: float = param(0.01, gt=0.0, help="trust region δ: mean KL(π_old ‖ π_new) ≤ δ")
    cg_iters: int = param(10, ge=1, help="conjugate-gradient iterations")
    cg_damping: float = param(0.1, ge=0.0, help="λ in (F + λI) x = g")
    line_search_steps: int = param(10, ge=1)
    line_search_decay: float = param(0.8, gt=0.0, lt=1.0, help="backtracking factor")
    vf_epochs: int = param(5, ge=1, help="value-function passes over each rollout")
    vf_batch_size: int = param(64, ge=1)
    normalize_advantage: bool = True


def detached(dist):
    """A copy of a distribution that carries no gradient (π_old)."""
    if isinstance(dist, Categorical):
        return Categorical(dist.logits.detach())
    return DiagGaussian(dist.mean.detach(), dist.log_std.detach())


@register_agent
class TRPO(OnPolicyAgent):
    """Natural policy gradient inside a KL trust region, with a separately fitted value function."""

    name = "trpo"
    Config = TRPOConfig

    def build_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer of the value function only; the policy moves by the trust-region step."""
        cfg = self.config
        lr = cfg.learning_rate
        return make_optimizer(cfg.optimizer, [{"params": list(self.critic.parameters()), "lr": lr, "base_lr": lr}], lr)

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        cfg = self.config
        obs, actions, log_probs, advantages, returns = rollout_tensors(
            buffer, "obs", "actions", "log_probs", "advantages", "returns", device=self.device
        )
        if cfg.normalize_advantage and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        stats = self.policy_step(obs, actions, log_probs, advantages)
        stats.update(self.fit_value_function(obs, returns))
        return stats

    def surrogate(self, obs, actions, old_log_probs, advantages) -> tuple[torch.Tensor, object]:
        """L(θ) = mean ρ_θ Â (+ c_H · mean entropy) and the current distribution."""
        dist = self.policy(obs)
        objective = (torch.exp(dist.log_prob(actions) - old_log_probs) * advantages).mean()
        if self.config.ent_coef:
            objective = objective + self.config.ent_coef * dist.entropy().mean()
        return objective, dist

    def fisher_vector_product(self, obs: torch.Tensor, old_dist, damping: float):
        """v ↦ (F + λI) v with F the Hessian of mean KL(π_old ‖ π_θ) at θ = θ_old, by double backprop."""
        params = list(self.policy.parameters())
        kl = old_dist.kl(self.policy(obs)).mean()
        grad_kl = parameters_to_vector(torch.autograd.grad(kl, params, create_graph=True))

        def product(v: torch.Tensor) -> torch.Tensor:
            hv = torch.autograd.grad(grad_kl @ v, params, retain_graph=True)
            return parameters_to_vector(hv) + damping * v

        return product

    def policy_step(self, obs, actions, old_log_probs, advantages) -> dict[str, float]:
        cfg = self.config
        params = list(self.policy.parameters())
        objective, dist = self.surrogate(obs, actions, old_log_probs, advantages)
        old_dist = detached(dist)
        g = parameters_to_vector(torch.autograd.grad(objective, params))
        fvp = self.fisher_vector_product(obs, old_dist, cfg.cg_damping)
        direction = conjugate_gradient(fvp, g, cfg.cg_iters)
        curvature = float(direction @ fvp(direction))
        stats = {"policy_objective": objective.item(), "kl": 0.0, "line_search_success": 0.0,
                 "line_search_steps": float(cfg.line_search_steps),
                 "entropy": dist.entropy().mean().item()}  # fmt: skip
        if not (curvature > 0 and math.isfinite(curvature)):
            return stats
        full_step = math.sqrt(2.0 * cfg.max_kl / curvature) * direction
        old_params = parameters_to_vector(params).detach()
        with torch.no_grad():
            for k in range(cfg.line_search_steps):
                vector_to_parameters(old_params + cfg.line_search_decay**k * full_step, params)
                new_objective, new_dist = self.surrogate(obs, actions, old_log_probs, advantages)
                kl = old_dist.kl(new_dist).mean().item()
                if kl <= cfg.max_kl and new_objective.item() > objective.item():
                    stats.update(policy_objective=new_objective.item(), kl=kl, line_search_success=1.0,
                                 line_search_steps=float(k + 1), entropy=new_dist.entropy().mean().item())  # fmt: skip
                    return stats
            vector_to_parameters(old_params, params)  # no acceptable step: keep π_old
        return stats

    def fit_value_function(self, obs: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        """``vf_epochs`` passes of Adam minibatches on mean (V(s) − R)²; returns the mean value loss."""
        cfg = self.config
        losses = []
        n = obs.shape[0]
        for _ in range(cfg.vf_epochs):
            order = torch.from_numpy(self.rng.permutation(n)).to(obs.device)
            for start in range(0, n, cfg.vf_batch_size):
                mb = order[start : start + cfg.vf_batch_size]
                loss = (self.critic(obs[mb]) - returns[mb]).pow(2).mean()
                self.optimize(loss, list(self.critic.parameters()))
                losses.append(loss.detach())
        return {"value_loss": torch.stack(losses).double().mean().item()}  # one synchronisation per update
