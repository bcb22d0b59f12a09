"""Terms added to a completion's task reward before its advantage is computed."""

from __future__ import annotations

import torch


def overlong_penalty(lengths: torch.Tensor, max_length: int, buffer: int, penalty: float) -> torch.Tensor:
    """DAPO's soft overlong punishment (Yu et al., 2025, eq. 13) of completion lengths (N,), times ``penalty``:
    0 up to ``max_length − buffer`` tokens, then falling linearly to −``penalty`` at ``max_length`` (and beyond).
    ``buffer`` = 0 gives no punishment. On the device of ``lengths``."""
    if buffer < 0 or buffer >= max_length:
        raise ValueError(f"buffer={buffer} is not allowed: give 0 (off) up to max_length − 1 = {max_length - 1}")
    if buffer == 0:
        return torch.zeros(lengths.shape, dtype=torch.float32, device=lengths.device)
    over = (lengths.float() - (max_length - buffer)).clamp(min=0.0, max=float(buffer))
    return -penalty * over / buffer


def kl_reward_penalty(old_logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """β · Σ_t k1 = β · Σ_t (log π_old − log π_ref) over each completion's tokens (N,): the KL penalty subtracted
    from the reward instead of added to the loss (RLOO, Ahmadian et al., 2024; REINFORCE++, Hu, 2025)."""
    return beta * ((old_logp - ref_logp) * mask).sum(dim=1)
