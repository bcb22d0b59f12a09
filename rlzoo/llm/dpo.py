"""DPO — direct preference optimisation (Rafailov et al., 2023), offline, on the shared language-model agent: after
the supervised warm start the model is frozen as the reference, and each step minimises :func:`rlzoo.llm.dpo_loss`
(sigmoid, IPO or hinge) on a batch of (prompt, chosen, rejected) pairs — from ``algo.data`` (JSONL), or built from
the warm-started model's own samples (:func:`rlzoo.llm.preferences.build_pairs`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlzoo.agents.registry import register_agent
from rlzoo.config import ConfigError, param
from rlzoo.llm import losses
from rlzoo.llm.decoding import completion_log_probs
from rlzoo.llm.lm_agent import LMAgent, LMAgentConfig
from rlzoo.llm.losses import DPO_LOSS_TYPES
from rlzoo.llm.preferences import Pair, build_pairs, read_pairs
from rlzoo.llm.prompts import encode_prompt, indices_by_length
from rlzoo.logging import RunLogger


@dataclass
class DPOConfig(LMAgentConfig):
    """DPO: β, the loss, the batch of pairs, and where the pairs come from."""

    beta: float = param(0.1, gt=0.0, help="strength of the implicit KL to the reference model")
    loss_type: str = param("sigmoid", choices=DPO_LOSS_TYPES)
    batch_size: int = param(32, ge=1, help="preference pairs per step")
    data: str | None = param(None, help="JSONL of prompt/chosen/rejected rows; null: built from own samples")
    n_pairs: int = param(2000, ge=1, help="pairs to build from the warm-started model's samples (data: null)")
    num_generations: int = param(8, ge=2, help="samples per prompt when building pairs")
    nll_weight: float = param(0.0, ge=0.0, help="RPO: + weight · token-mean NLL of the chosen completions")
    learning_rate: float = param(5e-5, gt=0.0)


@register_agent
class DPO(LMAgent):
    """Offline DPO on a text task env: the warm-started model against its frozen copy, on preference pairs."""

    name = "dpo"
    Config = DPOConfig

    def setup(self) -> None:
        self.pairs: list[Pair] = []
        self.buckets: list[list[int]] = []  # pair indices grouped by prompt length (a batch stacks its prompts)

    @property
    def uses_reference(self) -> bool:
        return True

    def begin(self, total_steps: int, logger: RunLogger) -> None:
        """The warm start and the reference model (once), then the pairs: read, or built from own samples."""
        super().begin(total_steps, logger)
        if not self.pairs:
            cfg = self.config
            self.pairs = read_pairs(cfg.data) if cfg.data else build_pairs(
                self.policy, self.task, self.prompts, n_pairs=cfg.n_pairs, num_generations=cfg.num_generations,
                temperature=cfg.temperature)  # fmt: skip
            if not self.pairs:
                raise ConfigError(
                    f"algo=dpo built no preference pair: every prompt's {cfg.num_generations} samples "
                    "scored alike; raise algo.temperature or algo.num_generations, or give algo.data"
                )
        encoded = [encode_prompt(self.tokenizer, p["prompt"]) for p in self.pairs]
        self.buckets = indices_by_length(encoded)

    def sample_pairs(self) -> list[Pair]:
        """``batch_size`` pairs (with replacement) whose prompts have one length, the length drawn ∝ its pairs."""
        sizes = np.array([len(b) for b in self.buckets], dtype=float)
        bucket = self.buckets[int(self.rng.choice(len(self.buckets), p=sizes / sizes.sum()))]
        return [self.pairs[bucket[i]] for i in self.rng.integers(len(bucket), size=self.config.batch_size)]

    def sequence_log_probs(self, model: torch.nn.Module, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probs (B,) of the chosen and of the rejected completions (+ EOS) given their prompts."""
        chosen, rejected, _ = self.pair_log_probs(model, pairs)
        return chosen, rejected

    def pair_log_probs(
        self, model: torch.nn.Module, pairs: list[Pair]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``sequence_log_probs`` and the token-mean NLL of the chosen completions."""
        tok = self.tokenizer
        targets = [[*tok.encode(p[key]), tok.eos_token_id] for key in ("chosen", "rejected") for p in pairs]
        width = max(len(t) for t in targets)
        ids = torch.tensor([t + [tok.pad_token_id] * (width - len(t)) for t in targets])
        mask = torch.tensor([[1.0] * len(t) + [0.0] * (width - len(t)) for t in targets])
        prompts = torch.tensor([encode_prompt(tok, p["prompt"]) for p in pairs]).repeat(2, 1)
        logp, _ = completion_log_probs(model, prompts, ids, self.config.temperature)
        total, n = (logp * mask).sum(1), len(pairs)
        return total[:n], total[n:], -(total[:n].sum() / mask[:n].sum())

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """One AdamW step on the DPO loss of a batch of pairs; returns the loss and the implicit rewards."""
        cfg = self.config
        pairs = self.sample_pairs()
        self.model.train()
        chosen, rejected, nll = self.pair_log_probs(self.model, pairs)
        with torch.no_grad():
            ref_chosen, ref_rejected = self.sequence_log_probs(self.ref_model, pairs)
        loss = losses.dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=cfg.beta, loss_type=cfg.loss_type)
        if cfg.nll_weight > 0.0:  # RPO (Pang et al., 2024): keep the chosen answers likely
            loss = loss + cfg.nll_weight * nll
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm))
        self.optimizer.step()
        self.num_timesteps += 1
        rewards = losses.dpo_rewards(chosen, rejected, ref_chosen, ref_rejected, beta=cfg.beta)
        return {"loss": loss.item(), "nll_chosen": nll.item(), "grad_norm": grad_norm,
                **{k: float(v) for k, v in rewards.items()}}  # fmt: skip

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "preference_pairs": len(self.pairs)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pairs": list(self.pairs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pairs = [dict(p) for p in state.get("pairs", [])]  # (begin groups them into buckets)
