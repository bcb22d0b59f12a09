"""Kimi k1.5's policy optimisation (Kimi Team, 2025, §2.3.2–2.3.3) on GRPO's sampler, warm start and evaluation:
the mirror-descent loss (1/k) Σ_j (r_j − r̄ − τ log(π_θ(y_j|x) / π_old(y_j|x)))² (:func:`rlzoo.llm.kimi_loss`),
whose rewards include the length reward (:func:`rlzoo.llm.length_reward`) with weight ``length_reward_weight``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rlzoo.agents.registry import register_agent
from rlzoo.config import ConfigError, param
from rlzoo.llm import losses
from rlzoo.llm.batches import GroupBatch
from rlzoo.llm.grpo import GRPO, LMPolicyConfig


@dataclass
class KimiConfig(LMPolicyConfig):
    """Kimi k1.5: the mirror-descent regulariser τ and the length reward's weight."""

    tau: float = param(0.5, gt=0.0, help="mirror-descent regularisation toward the sampling policy")
    length_reward_weight: float = param(0.1, ge=0.0, help="weight of the length reward in the reward; 0: off")

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        pieces = self.num_minibatches * self.gradient_accumulation_steps
        chunk = self.prompts_per_step * self.num_generations // pieces
        if chunk % self.num_generations:
            raise ConfigError(f"{prefix}.gradient_accumulation_steps={self.gradient_accumulation_steps} × "
                              f"num_minibatches={self.num_minibatches} splits groups: "
                              f"each chunk of {chunk} completions must hold whole groups "
                              f"(num_generations={self.num_generations}): its loss centres them")  # fmt: skip


@register_agent
class Kimi(GRPO):
    """Kimi k1.5's RL on a text task env: GRPO's sampler with the mirror-descent loss on (length-shaped) rewards."""

    name = "kimi"
    Config = KimiConfig
    data_parallel = False  # (GRPO's all-reduce would serve, but no torchrun test covers Kimi yet)

    def shaped_rewards(self, batch: GroupBatch) -> tuple[np.ndarray, dict[str, float]]:
        """GRPO's shaping plus ``length_reward_weight`` · λ: shorter correct answers (first reward ≥ 1) earn more,
        longer wrong ones are punished (:func:`rlzoo.llm.length_reward`)."""
        shaped, terms = super().shaped_rewards(batch)
        weight = self.config.length_reward_weight
        if weight == 0.0:
            return shaped, terms
        lengths = batch.completions.mask.sum(1)
        correct = torch.as_tensor(np.nan_to_num(batch.function_rewards[0]) >= 1.0, device=lengths.device)
        bonus = weight * losses.length_reward(lengths, correct, self.config.num_generations)
        terms["reward/length_reward"] = float(bonus.mean())
        total = torch.as_tensor(shaped, dtype=torch.float32, device=lengths.device) + bonus
        return total.cpu().numpy().astype(shaped.dtype, copy=False), terms

    def advantages(self, total: np.ndarray) -> torch.Tensor:
        """The rewards themselves (on the agent's device): the loss centres them per group (r_j − r̄)."""
        return torch.as_tensor(total, dtype=torch.float32, device=self.device)

    @property
    def token_mean_loss(self) -> bool:
        return False  # a mean over prompts

    def objective(self, logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None,
                  advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """:func:`kimi_loss` of the completions' summed log-probs and rewards, plus β times the KL to the reference
        model (token mean per completion, then mean) unless the KL is in the reward."""
        cfg = self.config
        loss = losses.kimi_loss((logp * mask).sum(1), (old_logp * mask).sum(1), advantages, cfg.num_generations,
                                tau=cfg.tau)  # fmt: skip
        if ref_logp is not None:  # (None with kl_in_reward: the reward holds the KL)
            kl = (losses.kl_penalty(logp, ref_logp, cfg.kl_estimator) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            loss = loss + cfg.beta * kl.mean()
        return loss

    def clip_fractions(self, logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                       mask: torch.Tensor) -> dict[str, float]:  # fmt: skip
        return {}  # nothing is clipped
