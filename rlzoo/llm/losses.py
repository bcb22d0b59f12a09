"""LLM RL objectives as pure functions over tensors: per-token log-probs, advantage estimators, KL penalties, the
clipped policy losses (GRPO, Dr. GRPO, DAPO, GSPO, CISPO), Kimi k1.5's mirror-descent loss and length reward, and DPO.

Shapes: per-token log-probs and the completion mask are (B, T) (mask 1 on completion tokens); rewards, advantages
and summed sequence log-probs are (B,), with consecutive groups of ``group_size`` completions sharing a prompt.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SCALE_REWARDS = ("group", "batch", "none")
ADVANTAGE_ESTIMATORS = ("grpo", "rloo", "reinforce_pp")
KL_ESTIMATORS = ("k1", "k2", "k3")
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "cispo")
TOKEN_MEAN_LOSSES = ("dapo", "cispo")  # loss types reduced by the batch's token mean
DPO_LOSS_TYPES = ("sigmoid", "ipo", "hinge")
STD_EPS = 1e-4  # added to the std before dividing, as TRL does


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {', '.join(allowed)}")


def _check_shape(name: str, tensor: torch.Tensor, shape: tuple[int, ...], like: str) -> None:
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {shape} (as {like})")


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) float rewards viewed as (B / group_size, group_size); ValueError when they do not split."""
    if rewards.ndim != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards of shape {tuple(rewards.shape)} do not split into groups of {group_size}")
    return rewards.view(-1, group_size)


def token_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[t, tokens[t]] (B, T) for logits (B, T, V): the gathered logit minus logsumexp."""
    if logits.shape[:-1] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and tokens {tuple(tokens.shape)} do not align on (B, T)")
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).float()
    return picked - torch.logsumexp(logits.float(), dim=-1)


def advantages(
    rewards: torch.Tensor, group_size: int, *, estimator: str = "grpo", scale: str = "group"
) -> torch.Tensor:
    """Per-completion advantages (B,) of rewards (B,) whose consecutive ``group_size`` entries share a prompt.

    ``grpo`` (Shao et al., 2024): Â_i = r_i − mean_g(r), divided by std_g(r) + 1e-4 (``scale="group"``), by the
    batch std of the rewards + 1e-4 (``"batch"``) or not at all (``"none"``: Dr. GRPO, Liu et al., 2025).
    ``rloo`` (Ahmadian et al., 2024): Â_i = r_i − (Σ_{j≠i} r_j) / (G − 1), the leave-one-out baseline; needs G ≥ 2.
    ``reinforce_pp`` (REINFORCE++-baseline, Hu et al., 2025): c_i = r_i − mean_g(r), Â_i = c_i / (std_batch(c) + 1e-4).
    Stds are unbiased (n − 1), as in TRL. ``scale`` belongs to ``grpo`` only: the other estimators accept its
    default and raise on any other value rather than ignore it.
    """
    _check_choice("estimator", estimator, ADVANTAGE_ESTIMATORS)
    _check_choice("scale", scale, SCALE_REWARDS)
    if estimator != "grpo" and scale != "group":
        raise ValueError(f"scale={scale!r} applies only to estimator='grpo' (estimator={estimator!r} has its own)")
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    grouped = _grouped(rewards, group_size)
    # a group of equal rewards carries no signal: its advantages are exactly 0 (its float mean can miss the rewards
    # by a rounding, which a division by std + 1e-4 would blow up to an advantage of ~1e-3 for every completion)
    equal = (grouped == grouped[:, :1]).all(dim=1, keepdim=True)
    if estimator == "rloo":
        if group_size < 2:
            raise ValueError("estimator='rloo' needs group_size >= 2 (its baseline is the other completions' mean)")
        others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
        return (grouped - others).masked_fill(equal, 0.0).view(-1)
    centred = (grouped - grouped.mean(dim=1, keepdim=True)).masked_fill(equal, 0.0).view(-1)
    if estimator == "reinforce_pp":
        if centred.numel() < 2:
            return centred  # a single completion: its own baseline, advantage 0 (and no batch std)
        return centred / (centred.std() + STD_EPS)
    if scale == "none":
        return centred
    if scale == "batch":
        std = rewards.std()
    elif group_size == 1:  # a group of one has no spread (and no unbiased std): its advantage is 0 / 1e-4 = 0
        std = torch.zeros_like(centred)
    else:
        std = grouped.std(dim=1, keepdim=True).expand_as(grouped).reshape(-1)
    return centred / (std + STD_EPS)


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group") -> torch.Tensor:
    """GRPO's group-relative advantages: ``advantages(rewards, group_size, estimator="grpo", scale=scale)``."""
    return advantages(rewards, group_size, estimator="grpo", scale=scale)


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of KL(π_θ ‖ π_ref) from samples of π_θ (Schulman, "Approximating KL divergence", 2020).

    With x = ref_logp − logp: ``k1`` = −x, ``k2`` = x² / 2, ``k3`` = eˣ − x − 1 (unbiased and non-negative; GRPO's).
    """
    _check_choice("kl_estimator", estimator, KL_ESTIMATORS)
    if logp.shape != ref_logp.shape:
        raise ValueError(f"ref_logp {tuple(ref_logp.shape)} and logp {tuple(logp.shape)} do not align")
    log_ratio = ref_logp - logp
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio.square()
    return torch.expm1(log_ratio) - log_ratio


def importance_ratio(
    logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, level: str = "token"
) -> torch.Tensor:
    """ρ (B, T) = π_θ / π_old: per token exp(logp − old_logp) (``token``), or per completion (``sequence``, GSPO,
    Zheng et al., 2025) ρ_i = exp(Σ_t m (logp − old_logp) / Σ_t m), the length-normalised sequence ratio, on every
    token of completion i (tokens outside the mask do not enter it)."""
    _check_choice("importance_sampling_level", level, IMPORTANCE_SAMPLING_LEVELS)
    log_ratio = logp - old_logp
    if level == "sequence":
        mask = mask.to(logp.dtype)
        masked_log_ratio = torch.where(mask > 0, log_ratio, torch.zeros_like(log_ratio))
        seq_log_ratio = masked_log_ratio.sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        log_ratio = seq_log_ratio.expand_as(logp)
    return torch.exp(log_ratio)


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, advantages: torch.Tensor,
                mask: torch.Tensor, *, loss_type: str = "grpo", importance_sampling_level: str = "token",
                epsilon: float = 0.2, epsilon_high: float | None = None, delta: float | None = None,
                beta: float = 0.0, kl_estimator: str = "k3",
                max_completion_length: int | None = None) -> torch.Tensor:  # fmt: skip
    """The clipped policy loss to minimise from per-token log-probs (B, T) under π_θ, π_old and π_ref, advantages
    (B,) and a completion mask (B, T) (1 on completion tokens, 0 on prompt, padding and anything after EOS).
    ``ref_logp`` is only read when ``beta`` > 0.

    Ratio ρ = π_θ / π_old per token, or with ``importance_sampling_level="sequence"`` (GSPO, Zheng et al., 2025)
    ρ_i = exp(Σ_t m (logp − old_logp) / Σ_t m) for every token of completion i: GSPO's plain sequence-level ratio,
    gradient through every token's log-prob (not TRL's GSPO-token variant). ``delta`` (two-sided clipping,
    INTELLECT-2, 2025) caps the unclipped ratio, min(ρ, δ), so a negative advantage cannot make the loss unbounded;
    the clipped term keeps clip(ρ) (as TRL orders it). Per token, with ε_high defaulting to ε (> ε: DAPO's
    clip-higher):
      ``grpo``/``dr_grpo``/``dapo``: ℓ_t = −min(min(ρ, δ) Â, clip(ρ, 1 − ε, 1 + ε_high) Â) + β KL_t
      ``cispo`` (MiniMax-M1, 2025): ℓ_t = −sg(min(ρ, 1 + ε_high)) Â logp_t + β KL_t (gradient only through logp)
    with KL_t = ``kl_penalty(logp, ref_logp, kl_estimator)``. Reduced by ``loss_type``: ``grpo`` Σ_i (Σ_t m ℓ /
    Σ_t m) / B (Shao et al., 2024); ``dapo`` and ``cispo`` Σ m ℓ / Σ m, the token mean of the batch (Yu et al.,
    2025); ``dr_grpo`` Σ m ℓ / (B · max_completion_length), default T (Liu et al., 2025)."""
    _check_choice("loss_type", loss_type, LOSS_TYPES)
    _check_choice("importance_sampling_level", importance_sampling_level, IMPORTANCE_SAMPLING_LEVELS)
    _check_choice("kl_estimator", kl_estimator, KL_ESTIMATORS)
    if logp.ndim != 2:
        raise ValueError(f"logp has shape {tuple(logp.shape)}, expected (B, T)")
    _check_shape("old_logp", old_logp, tuple(logp.shape), "logp")
    _check_shape("mask", mask, tuple(logp.shape), "logp")
    _check_shape("advantages", advantages, (logp.shape[0],), "logp's batch (B,)")
    if delta is not None and loss_type == "cispo":
        raise ValueError("delta caps the ratio of the clipped loss types; loss_type='cispo' already caps at 1 + ε_high")
    if delta is not None and not delta > 1.0:
        raise ValueError(f"delta={delta!r} must be > 1 (the ratio is 1 on-policy; INTELLECT-2 uses δ > 1 + ε_high)")
    if max_completion_length is not None and max_completion_length < 1:
        raise ValueError(f"max_completion_length={max_completion_length!r} must be >= 1")
    eps_high = epsilon if epsilon_high is None else epsilon_high
    mask = mask.to(logp.dtype)
    ratio = importance_ratio(logp, old_logp, mask, importance_sampling_level)
    adv = advantages.unsqueeze(1)
    if loss_type == "cispo":
        per_token = -ratio.clamp(max=1.0 + eps_high).detach() * adv * logp
    else:
        clipped = ratio.clamp(1.0 - epsilon, 1.0 + eps_high)
        unclipped = ratio if delta is None else ratio.clamp(max=delta)
        per_token = -torch.minimum(unclipped * adv, clipped * adv)
    if beta > 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs the reference model's log-probs (ref_logp)")
        _check_shape("ref_logp", ref_logp, tuple(logp.shape), "logp")
        per_token = per_token + beta * kl_penalty(logp, ref_logp, kl_estimator)
    masked = per_token * mask
    if loss_type == "grpo":
        return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    if loss_type in TOKEN_MEAN_LOSSES:
        return masked.sum() / mask.sum().clamp(min=1.0)
    length = max_completion_length if max_completion_length is not None else mask.shape[1]
    return masked.sum() / (mask.shape[0] * length)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, advantages: torch.Tensor,
              mask: torch.Tensor, *, epsilon: float = 0.2, epsilon_high: float | None = None, beta: float = 0.0,
              loss_type: str = "grpo", max_completion_length: int | None = None) -> torch.Tensor:  # fmt: skip
    """GRPO's loss with token-level ratios and the k3 KL: ``policy_loss`` with those settings (see there)."""
    return policy_loss(logp, old_logp, ref_logp, advantages, mask, loss_type=loss_type, epsilon=epsilon,
                       epsilon_high=epsilon_high, beta=beta, max_completion_length=max_completion_length)  # fmt: skip


def kimi_loss(seq_logp: torch.Tensor, old_seq_logp: torch.Tensor, rewards: torch.Tensor, group_size: int, *,
              tau: float) -> torch.Tensor:  # fmt: skip
    """Kimi k1.5's online-mirror-descent loss (Kimi Team, 2025, §2.3.2) from summed completion log-probs (B,)
    under π_θ and π_old (the sampling policy π_θi) and rewards (B,) in groups of ``group_size`` = k:

      L = mean over prompts of (1/k) Σ_j (r_j − r̄ − τ (log π_θ(y_j) − log π_old(y_j)))², r̄ = the group's mean
      reward (the paper's estimate of τ log Z); τ > 0 weighs the KL to π_old."""
    if not tau > 0.0:
        raise ValueError(f"tau={tau!r} must be > 0")
    rewards = torch.as_tensor(rewards, dtype=seq_logp.dtype, device=seq_logp.device)
    if seq_logp.ndim != 1:
        raise ValueError(f"seq_logp has shape {tuple(seq_logp.shape)}, expected (B,)")
    _check_shape("old_seq_logp", old_seq_logp, tuple(seq_logp.shape), "seq_logp")
    _check_shape("rewards", rewards, tuple(seq_logp.shape), "seq_logp")
    grouped = _grouped(rewards, group_size)
    baseline = grouped.mean(dim=1, keepdim=True)
    log_ratio = (seq_logp - old_seq_logp).view(-1, group_size)
    return (grouped - baseline - tau * log_ratio).square().mean(dim=1).mean()


def length_reward(lengths: torch.Tensor, correct: torch.Tensor, group_size: int) -> torch.Tensor:
    """Kimi k1.5's length reward (Kimi Team, 2025, §2.3.3), per completion (B,) float:
    λ_j = 0.5 − (len_j − min_len) / (max_len − min_len) within the group (0 when max_len = min_len);
    λ_j for a correct answer, min(0, λ_j) for a wrong one (a short wrong answer earns nothing)."""
    lengths = torch.as_tensor(lengths).to(torch.float32)
    correct = torch.as_tensor(correct, device=lengths.device)
    _check_shape("correct", correct, tuple(lengths.shape), "lengths")
    grouped = _grouped(lengths, group_size)
    shortest = grouped.min(dim=1, keepdim=True).values
    spread = grouped.max(dim=1, keepdim=True).values - shortest
    lam = torch.where(spread > 0, 0.5 - (grouped - shortest) / spread.clamp(min=1e-12), torch.zeros_like(grouped))
    lam = lam.view(-1)
    return torch.where(correct.to(torch.bool).view(-1), lam, lam.clamp(max=0.0))


def _dpo_margin(chosen_logp: torch.Tensor, rejected_logp: torch.Tensor, ref_chosen_logp: torch.Tensor,
                ref_rejected_logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    if chosen_logp.ndim != 1:
        raise ValueError(f"chosen_logp has shape {tuple(chosen_logp.shape)}, expected (B,)")
    shape = tuple(chosen_logp.shape)
    _check_shape("rejected_logp", rejected_logp, shape, "chosen_logp")
    _check_shape("ref_chosen_logp", ref_chosen_logp, shape, "chosen_logp")
    _check_shape("ref_rejected_logp", ref_rejected_logp, shape, "chosen_logp")
    return chosen_logp - ref_chosen_logp, rejected_logp - ref_rejected_logp


def dpo_loss(chosen_logp: torch.Tensor, rejected_logp: torch.Tensor, ref_chosen_logp: torch.Tensor,
             ref_rejected_logp: torch.Tensor, *, beta: float, loss_type: str = "sigmoid") -> torch.Tensor:  # fmt: skip
    """Preference loss over pairs from summed sequence log-probs (B,) of the chosen and rejected completions under
    π_θ and π_ref; h = (chosen − ref_chosen) − (rejected − ref_rejected), mean over pairs of:
    ``sigmoid`` −log σ(β h) (DPO, Rafailov et al., 2023); ``ipo`` (h − 1/(2β))² (IPO, Azar et al., 2023);
    ``hinge`` max(0, 1 − β h) (SLiC, Zhao et al., 2023)."""
    _check_choice("loss_type", loss_type, DPO_LOSS_TYPES)
    if not beta > 0.0:
        raise ValueError(f"beta={beta!r} must be > 0")
    chosen, rejected = _dpo_margin(chosen_logp, rejected_logp, ref_chosen_logp, ref_rejected_logp)
    h = chosen - rejected
    if loss_type == "sigmoid":
        return -F.logsigmoid(beta * h).mean()
    if loss_type == "ipo":
        return (h - 1.0 / (2.0 * beta)).square().mean()
    return torch.relu(1.0 - beta * h).mean()


def dpo_rewards(chosen_logp: torch.Tensor, rejected_logp: torch.Tensor, ref_chosen_logp: torch.Tensor,
                ref_rejected_logp: torch.Tensor, *, beta: float) -> dict[str, torch.Tensor]:  # fmt: skip
    """DPO's implicit rewards for logging, detached scalars: ``rewards/chosen`` mean β (chosen − ref_chosen),
    ``rewards/rejected`` mean β (rejected − ref_rejected), ``rewards/accuracy`` the fraction of pairs with
    chosen > rejected reward, ``rewards/margin`` the mean chosen − rejected reward (as TRL logs them)."""
    chosen, rejected = _dpo_margin(chosen_logp, rejected_logp, ref_chosen_logp, ref_rejected_logp)
    with torch.no_grad():
        r_chosen, r_rejected = beta * chosen.detach(), beta * rejected.detach()
        return {"rewards/chosen": r_chosen.mean(), "rewards/rejected": r_rejected.mean(),
                "rewards/accuracy": (r_chosen > r_rejected).float().mean(),
                "rewards/margin": (r_chosen - r_rejected).mean()}  # fmt: skip
