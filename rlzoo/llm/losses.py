"""GRPO's objective as pure functions over tensors: per-token log-probs, group-relative advantages, the loss."""

from __future__ import annotations

import torch

from rlzoo.objectives import approx_kl, clipped_surrogate

SCALE_REWARDS = ("group", "batch", "none")
LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
STD_EPS = 1e-4  # added to the std before dividing, as TRL does


def token_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[t, tokens[t]] (B, T) for logits (B, T, V): the gathered logit minus logsumexp."""
    if logits.shape[:-1] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and tokens {tuple(tokens.shape)} do not align on (B, T)")
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).float()
    return picked - torch.logsumexp(logits.float(), dim=-1)


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group") -> torch.Tensor:
    """Group-relative advantages of rewards (B,) whose consecutive ``group_size`` entries share a prompt.

    Â_i = r_i − mean_g(r), divided by std_g(r) + 1e-4 (``group``: GRPO, Shao et al., 2024), by the batch std +
    1e-4 (``batch``) or not at all (``none``: Dr. GRPO, Liu et al., 2025); stds are unbiased (n − 1), as in TRL.
    """
    if scale not in SCALE_REWARDS:
        raise ValueError(f"scale={scale!r} is not allowed: choose one of {', '.join(SCALE_REWARDS)}")
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    if rewards.ndim != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards of shape {tuple(rewards.shape)} do not split into groups of {group_size}")
    grouped = rewards.view(-1, group_size)
    centred = (grouped - grouped.mean(dim=1, keepdim=True)).view(-1)
    if scale == "none":
        return centred
    std = grouped.std(dim=1, keepdim=True).expand_as(grouped).reshape(-1) if scale == "group" else rewards.std()
    if group_size == 1 and scale == "group":
        std = torch.zeros_like(centred)
    return centred / (std + STD_EPS)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, advantages: torch.Tensor,
              mask: torch.Tensor, *, epsilon: float = 0.2, epsilon_high: float | None = None, beta: float = 0.0,
              loss_type: str = "grpo", max_completion_length: int | None = None) -> torch.Tensor:  # fmt: skip
    """The GRPO loss to minimise from per-token log-probs (B, T) under π_θ, π_old and π_ref, per-completion
    advantages (B,) and a completion mask (B, T) (1 on completion tokens, 0 on prompt, padding and anything
    after EOS). ``ref_logp`` is only read when ``beta`` > 0.

    Per token: ℓ_t = −min(ρ_t Â, clip(ρ_t, 1 − ε, 1 + ε_high) Â) + β (e^(ref − logp) − (ref − logp) − 1),
    ρ_t = π_θ / π_old (Shao et al., 2024; ε_high > ε is DAPO's clip-higher). Reduced by ``loss_type``:
    ``grpo`` Σ_i (Σ_t m ℓ / Σ_t m) / B; ``dr_grpo`` Σ m ℓ / (B · max_completion_length) (Liu et al., 2025);
    ``dapo`` Σ m ℓ / Σ m, the token mean of the batch (Yu et al., 2025)."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type={loss_type!r} is not allowed: choose one of {', '.join(LOSS_TYPES)}")
    mask = mask.to(logp.dtype)
    objective, _ = clipped_surrogate(logp, old_logp, advantages.unsqueeze(1), epsilon, epsilon_high)
    per_token = -objective
    if beta > 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs the reference model's log-probs (ref_logp)")
        per_token = per_token + beta * approx_kl(ref_logp, logp)  # k3 = e^(ref − logp) − (ref − logp) − 1
    masked = per_token * mask
    if loss_type == "grpo":
        return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    if loss_type == "dapo":
        return masked.sum() / mask.sum().clamp(min=1.0)
    length = max_completion_length if max_completion_length is not None else mask.shape[1]
    return masked.sum() / (mask.shape[0] * length)
