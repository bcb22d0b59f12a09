"""Policy-optimisation objectives shared by PPO, TRPO and GRPO.

- ``clipped_surrogate``: PPO's per-sample objective (Schulman et al., 2017)
  min(ρ Â, clip(ρ, 1 − ε_low, 1 + ε_high) Â) with ρ = π_θ(a|s) / π_old(a|s), and its diagnostics;
  ε_high ≠ ε_low is DAPO's asymmetric "clip-higher" (Yu et al., 2025).
- ``approx_kl``: the k3 estimator E[(ρ − 1) − log ρ] of KL(π_old ‖ π_θ) (Schulman, 2020), ≥ 0.
- ``conjugate_gradient``: solves A x = b for symmetric positive-definite A given only x ↦ A x
  (Hestenes & Stiefel, 1952), as TRPO's natural-gradient step needs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rlzoo.seed_stack import dot


def clipped_surrogate(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    epsilon: float,
    epsilon_high: float | None = None,
    masks: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sample clipped objective (to maximise) and detached stats: ``ratio`` and, with ``masks``, the
    ``clipped_low`` / ``clipped_high`` masks of samples whose gradient the clip removed."""
    eps_high = epsilon if epsilon_high is None else epsilon_high
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = ratio.clamp(1.0 - epsilon, 1.0 + eps_high)
    objective = torch.minimum(ratio * advantages, clipped * advantages)
    info = {"ratio": ratio.detach()}
    if masks:
        with torch.no_grad():
            info["clipped_low"] = (ratio < 1.0 - epsilon) & (advantages < 0)
            info["clipped_high"] = (ratio > 1.0 + eps_high) & (advantages > 0)
    return objective, info


def approx_kl(log_probs: torch.Tensor, old_log_probs: torch.Tensor) -> torch.Tensor:
    """k3 = (ρ − 1) − log ρ per sample, with log ρ = log π_θ − log π_old; an unbiased, non-negative KL estimate."""
    log_ratio = log_probs - old_log_probs
    return torch.expm1(log_ratio) - log_ratio


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int = 10, tol: float = 1e-10
) -> torch.Tensor:
    """Approximately solve A x = b, A symmetric positive definite, in at most ``iters`` A-products (Hestenes &
    Stiefel, 1952), stopping once r·r ≤ ``tol``. With b of shape (K, P) it solves K independent systems, one per row
    (a seed batch's; ``matvec`` maps rows to rows): each row stops at its own iteration, as alone."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = dot(r, r)
    for _ in range(iters):
        active = rr > tol
        if not bool(active.any()):
            break
        ap = matvec(p)
        alpha = torch.where(active, rr / dot(p, ap), 0.0)[..., None]
        x += alpha * p
        r -= alpha * ap
        rr_new = dot(r, r)
        p = torch.where(active[..., None], r + (rr_new / rr)[..., None] * p, p)
        rr = torch.where(active, rr_new, rr)
    return x
