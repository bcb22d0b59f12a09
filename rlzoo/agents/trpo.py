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

from dataclasses import dataclass

import torch

from rlzoo.agents.on_policy import GAEConfig, OnPolicyAgent, OnPolicyConfig, make_optimizer, rollout_tensors
from rlzoo.agents.registry import register_agent
from rlzoo.buffers import RolloutBuffer
from rlzoo.config import param
from rlzoo.distributions import Categorical, DiagGaussian
from rlzoo.objectives import conjugate_gradient
from rlzoo.seed_stack import assign_flat, dot, flat_per_seed, per_seed, take_rows


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
    seed_batchable = True

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
        if cfg.normalize_advantage and advantages.shape[-1] > 1:  # each seed's own, in a seed batch
            mean, std = advantages.mean(dim=-1, keepdim=True), advantages.std(dim=-1, keepdim=True)
            advantages = (advantages - mean) / (std + 1e-8)
        stats = self.policy_step(obs, actions, log_probs, advantages)
        stats.update(self.fit_value_function(obs, returns))
        return stats

    def surrogate(self, obs, actions, old_log_probs, advantages) -> tuple[torch.Tensor, object]:
        """L(θ) = mean ρ_θ Â (+ c_H · mean entropy) and the current distribution (one L per seed in a seed batch)."""
        dist = self.policy(obs)
        objective = (torch.exp(dist.log_prob(actions) - old_log_probs) * advantages).mean(dim=-1)
        if self.config.ent_coef:
            objective = objective + self.config.ent_coef * dist.entropy().mean(dim=-1)
        return objective, dist

    def fisher_vector_product(self, obs: torch.Tensor, old_dist, damping: float):
        """v ↦ (F + λI) v with F the Hessian of mean KL(π_old ‖ π_θ) at θ = θ_old, by double backprop (each seed's
        own F on its row of v, in a seed batch: the seeds' KLs are summed, and no parameter is shared)."""
        params = list(self.policy.parameters())
        kl = old_dist.kl(self.policy(obs)).mean(dim=-1).sum()
        grad_kl = flat_per_seed(torch.autograd.grad(kl, params, create_graph=True), self.n_seeds)

        def product(v: torch.Tensor) -> torch.Tensor:
            hv = torch.autograd.grad(dot(grad_kl, v).sum(), params, retain_graph=True)
            return flat_per_seed(hv, self.n_seeds) + damping * v

        return product

    def policy_step(self, obs, actions, old_log_probs, advantages) -> dict[str, float]:
        """The natural-gradient direction by conjugate gradient, scaled to the trust region, then the backtracking
        line search; in a seed batch each seed searches its own step (one surrogate pass per fraction for all)."""
        cfg = self.config
        params = list(self.policy.parameters())
        objective, dist = self.surrogate(obs, actions, old_log_probs, advantages)
        old_dist = detached(dist)
        g = flat_per_seed(torch.autograd.grad(objective.sum(), params), self.n_seeds)
        fvp = self.fisher_vector_product(obs, old_dist, cfg.cg_damping)
        direction = conjugate_gradient(fvp, g, cfg.cg_iters)
        curvature = dot(direction, fvp(direction)).detach()
        objective = objective.detach()
        stats = {"policy_objective": objective, "kl": torch.zeros_like(objective),
                 "line_search_success": torch.zeros_like(objective),
                 "line_search_steps": torch.full_like(objective, float(cfg.line_search_steps)),
                 "entropy": dist.entropy().mean(dim=-1).detach()}  # fmt: skip
        valid = (curvature > 0) & torch.isfinite(curvature)
        if bool(valid.any()):
            self.line_search(params, direction.detach(), curvature, valid, stats, obs, actions, old_log_probs,
                             advantages, old_dist)  # fmt: skip
        return {key: per_seed(value) for key, value in stats.items()}

    def line_search(self, params, direction, curvature, valid, stats, obs, actions, old_log_probs, advantages,
                    old_dist) -> None:  # fmt: skip
        """Try θ_old + decay^k · √(2δ / xᵀFx) · x for k = 0, 1, …; accept (per seed) the first that improves L with
        KL ≤ δ, recording its figures in ``stats``; a seed that accepts none keeps θ_old."""
        cfg = self.config
        scale = torch.where(valid, torch.sqrt(2.0 * cfg.max_kl / curvature.double()), 0.0).float()  # in float64
        full_step = torch.where(valid[..., None], scale[..., None] * direction, 0.0)  # no NaN from a seed left out
        old_params = flat_per_seed(params, self.n_seeds).detach()
        accepted = ~valid  # a seed without a usable direction searches nothing
        with torch.no_grad():
            for k in range(cfg.line_search_steps):
                assign_flat(old_params + cfg.line_search_decay**k * full_step, params, self.n_seeds)
                new_objective, new_dist = self.surrogate(obs, actions, old_log_probs, advantages)
                kl = old_dist.kl(new_dist).mean(dim=-1)
                now = ~accepted & (kl.double() <= cfg.max_kl) & (new_objective > stats["policy_objective"])
                for key, value in (("policy_objective", new_objective), ("kl", kl), ("line_search_success", 1.0),
                                   ("line_search_steps", float(k + 1)),
                                   ("entropy", new_dist.entropy().mean(dim=-1))):  # fmt: skip
                    stats[key] = torch.where(now, value, stats[key])
                if bool(now.any()):
                    old_params = torch.where(now[..., None], old_params + cfg.line_search_decay**k * full_step,
                                             old_params)  # fmt: skip
                    full_step = torch.where(now[..., None], 0.0, full_step)  # an accepted seed stays where it is
                accepted |= now
                if bool(accepted.all()):
                    break
            assign_flat(old_params, params, self.n_seeds)  # each seed's accepted step, or θ_old

    def fit_value_function(self, obs: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        """``vf_epochs`` passes of Adam minibatches on mean (V(s) − R)²; returns the mean value loss (each seed its own
        minibatch order and loss in a seed batch)."""
        cfg = self.config
        losses = []
        n = returns.shape[-1]
        for _ in range(cfg.vf_epochs):
            order = torch.from_numpy(self.rng.permutation(n)).to(obs.device)
            for start in range(0, n, cfg.vf_batch_size):
                mb = order[..., start : start + cfg.vf_batch_size]
                loss = (self.critic(take_rows(obs, mb)) - take_rows(returns, mb)).pow(2).mean(dim=-1)
                self.optimize(loss, list(self.critic.parameters()))
                losses.append(loss.detach())
        return {"value_loss": per_seed(torch.stack(losses).double().mean(dim=0))}  # one synchronisation per update
