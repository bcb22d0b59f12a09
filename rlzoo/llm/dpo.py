"""DPO — direct preference optimisation (Rafailov et al., 2023), offline, on the shared language-model agent: after
the supervised warm start the model is frozen as the reference, and each step minimises :func:`rlzoo.llm.dpo_loss`
(sigmoid, IPO or hinge) on a batch of (prompt, chosen, rejected) pairs — from ``algo.data`` (JSONL), or built from
the warm-started model's own samples (:func:`rlzoo.llm.preference_data.build_pairs`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from rlzoo.agents.registry import register_agent
from rlzoo.config import ConfigError, param
from rlzoo.llm import losses
from rlzoo.llm.lm_agent import LMAgent, LMAgentConfig
from rlzoo.llm.losses import DPO_LOSS_TYPES
from rlzoo.llm.preference_data import Pair, build_pairs, read_pairs
from rlzoo.llm.prompts import encode_prompt, indices_by_length, right_padded
from rlzoo.logging import RunLogger


class EncodedPair(NamedTuple):
    """A pair's prompt ids, and its chosen and rejected completions as (token ids, action mask)."""

    prompt: list[int]
    completions: list[tuple[list[int], list[float]]]


@dataclass
class DPOConfig(LMAgentConfig):
    """DPO: β, the loss, the batch of pairs, and where the pairs come from. Defaults for the tiny model on
    arithmetic (seed 0 of the README's calibration): β 1 and lr 1e-5 on 8 000 pairs; the paper's β 0.1 at lr 5e-5
    on 2 000 pairs lowers its held-out accuracy (the chosen answers become less likely too)."""

    beta: float = param(1.0, gt=0.0, help="strength of the implicit KL to the reference model")
    loss_type: str = param("sigmoid", choices=DPO_LOSS_TYPES)
    batch_size: int = param(32, ge=1, help="preference pairs per step")
    data: str | None = param(None, help="JSONL of prompt/chosen/rejected rows; null: built from own samples")
    n_pairs: int = param(8000, ge=1, help="pairs to build from the warm-started model's samples (data: null)")
    num_generations: int = param(8, ge=2, help="samples per prompt when building pairs")
    nll_weight: float = param(0.0, ge=0.0, help="RPO: + weight · token-mean NLL of the chosen completions")
    learning_rate: float = param(1e-5, gt=0.0)


@register_agent
class DPO(LMAgent):
    """Offline DPO on a text task env: the warm-started model against its frozen copy, on preference pairs."""

    name = "dpo"
    Config = DPOConfig

    def setup(self) -> None:
        self.pairs: list[Pair] = []
        self.encoded: list[EncodedPair] = []  # encode_pair of each pair
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
        self.encoded = [self.encode_pair(k, pair) for k, pair in enumerate(self.pairs)]
        self.buckets = indices_by_length([encoded.prompt for encoded in self.encoded])

    def encode_pair(self, k: int, pair: Pair) -> EncodedPair:
        """A pair's prompt ids, and its chosen and rejected completions as (ids + EOS, action mask): the mask is 0
        on the tokens the task's feedback writes (gridworld_text's cells), which are no choice of the policy. A
        completion of the maximum length was cut off there (truncated), so it gets no EOS."""
        tok, completions = self.tokenizer, []
        for key in ("chosen", "rejected"):
            ids = tok.encode(pair[key])
            ids += [tok.eos_token_id] if len(ids) < self.max_new else []
            try:
                completions.append((ids, self.policy.action_mask(pair["prompt"], ids)))
            except ValueError as err:
                raise ConfigError(f"preference pair {k} ({key}): {err}") from None
        return EncodedPair(encode_prompt(tok, pair["prompt"]), completions)

    def sample_pairs(self) -> list[int]:
        """The indices of ``batch_size`` pairs (with replacement) whose prompts have one length, the length drawn
        ∝ its pairs."""
        sizes = np.array([len(b) for b in self.buckets], dtype=float)
        bucket = self.buckets[int(self.rng.choice(len(self.buckets), p=sizes / sizes.sum()))]
        return [bucket[i] for i in self.rng.integers(len(bucket), size=self.config.batch_size)]

    def sequence_log_probs(self, model: torch.nn.Module, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probs (B,) of the policy's tokens of the chosen and of the rejected completions (+ EOS) of
        pairs ``batch`` given their prompts."""
        chosen, rejected, _ = self.pair_log_probs(model, batch)
        return chosen, rejected

    def pair_log_probs(
        self, model: torch.nn.Module, batch: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``sequence_log_probs`` and the token-mean NLL of the chosen completions."""
        rows = [self.encoded[k].completions[side] for side in (0, 1) for k in batch]  # the chosen, then the rejected
        ids = right_padded([t for t, _ in rows], self.tokenizer.pad_token_id, self.device)
        mask = right_padded([m for _, m in rows], 0.0, self.device)  # each as long as its ids
        prompts = torch.tensor([self.encoded[k].prompt for k in batch], device=self.device).repeat(2, 1)
        logp, _ = self.log_probs(model, prompts, ids)
        total, n = (logp * mask).sum(1), len(batch)
        return total[:n], total[n:], -(total[:n].sum() / mask[:n].sum())

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """One AdamW step on the DPO loss of a batch of pairs; returns the loss and the implicit rewards."""
        cfg = self.config
        batch = self.sample_pairs()
        self.model.train()
        chosen, rejected, nll = self.pair_log_probs(self.model, batch)
        with torch.no_grad():
            ref_chosen, ref_rejected = self.sequence_log_probs(self.ref_model, batch)
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
