"""GRPO — group-relative policy optimisation for language models (Shao et al., 2024, DeepSeekMath) — and the
family that shares its sampler as options: Dr. GRPO (Liu et al., 2025) and DAPO (Yu et al., 2025) reductions,
DAPO's overlong punishment, GSPO's sequence-level ratio (Zheng et al., 2025), CISPO's clipped-weight REINFORCE
(MiniMax, 2025), two-sided clipping, RLOO (Ahmadian et al., 2024) and REINFORCE++ (Hu, 2025) baselines, KL
estimators k1/k2/k3, in the loss or in the reward. After a supervised warm start, each step samples G completions
of ``prompts_per_step`` prompts, scores them, and takes ``num_iterations`` (μ) AdamW steps on
:func:`rlzoo.llm.losses.policy_loss` of their advantages (:func:`rlzoo.llm.losses.advantages`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlzoo import distributed
from rlzoo.agents.registry import register_agent
from rlzoo.config import ConfigError, param
from rlzoo.llm import losses
from rlzoo.llm.batches import GroupBatch, sample_groups
from rlzoo.llm.decoding import Completions, padding_share
from rlzoo.llm.lm_agent import LMAgent, LMAgentConfig
from rlzoo.llm.losses import (
    ADVANTAGE_ESTIMATORS,
    IMPORTANCE_SAMPLING_LEVELS,
    KL_ESTIMATORS,
    LOSS_TYPES,
    SCALE_REWARDS,
    TOKEN_MEAN_LOSSES,
)
from rlzoo.llm.reward_shaping import kl_reward_penalty, overlong_penalty
from rlzoo.logging import RunLogger
from rlzoo.objectives import clipped_surrogate


@dataclass
class LMPolicyConfig(LMAgentConfig):
    """What every member of GRPO's family shares besides the model and warm start: the sampler, reward shaping
    (KL, overlong) and the optimisation passes."""

    prompts_per_step: int = param(16, ge=1)
    num_generations: int = param(8, ge=2, help="G completions per prompt")
    top_k: int = param(0, ge=0, help="sample among the k likeliest tokens; 0: all")
    num_iterations: int = param(1, ge=1, help="mu: optimisation passes over each sampled batch")
    num_minibatches: int = param(1, ge=1, help="AdamW steps per pass, each on its share; >1: later ones off-policy")
    gradient_accumulation_steps: int = param(1, ge=1)
    beta: float = param(0.0, ge=0.0, help="KL to the frozen reference model (kl_estimator); 0: no reference model")
    kl_estimator: str = param("k3", choices=KL_ESTIMATORS)
    kl_in_reward: bool = param(False, help="subtract beta · Σ_t k1 from the reward instead of a KL term in the loss")
    overlong_buffer: int = param(0, ge=0, help="DAPO's soft overlong punishment over the last tokens; 0: off")
    overlong_penalty: float = param(1.0, ge=0.0, help="its largest punishment, at max_completion_length")
    mask_truncated_completions: bool = False
    data_parallel: str = param(
        "ddp",
        choices=distributed.STRATEGIES,
        help="under torchrun: ddp (each rank the whole model) or fsdp (FSDP2 shards it)",
    )
    dynamic_sampling: bool = param(True, help="drop groups whose rewards are all equal and sample new prompts")
    ent_coef: float = param(0.0, ge=0.0)

    def validate(self, prefix: str) -> None:
        batch = self.prompts_per_step * self.num_generations
        pieces = self.num_minibatches * self.gradient_accumulation_steps
        if batch % pieces:
            raise ConfigError(f"{prefix}.gradient_accumulation_steps={self.gradient_accumulation_steps} × "
                              f"num_minibatches={self.num_minibatches} must divide prompts_per_step × "
                              f"num_generations = {batch}")  # fmt: skip
        if self.kl_in_reward and self.beta == 0.0:
            raise ConfigError(f"{prefix}.kl_in_reward=true needs {prefix}.beta > 0 (the KL's weight in the reward)")


@dataclass
class GRPOConfig(LMPolicyConfig):
    """GRPO's advantages and clipped surrogate, with the variants of its family as options."""

    epsilon: float = param(0.2, gt=0.0)
    epsilon_high: float | None = param(None, gt=0.0, help="null: epsilon")
    loss_type: str = param("grpo", choices=LOSS_TYPES)
    importance_sampling_level: str = param("token", choices=IMPORTANCE_SAMPLING_LEVELS, help="sequence: GSPO")
    delta: float | None = param(None, gt=1.0, help="two-sided clipping: the ratio capped at delta; null: off")
    advantage_estimator: str = param("grpo", choices=ADVANTAGE_ESTIMATORS)
    scale_rewards: str = param("group", choices=SCALE_REWARDS, help="advantage_estimator=grpo: divide by which std")

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        if self.delta is not None and self.loss_type == "cispo":
            raise ConfigError(f"{prefix}.delta={self.delta} does not apply to loss_type=cispo, whose weight is already "
                              "capped at 1 + epsilon_high: set delta=null")  # fmt: skip
        if self.scale_rewards != "group" and self.advantage_estimator != "grpo":
            raise ConfigError(f"{prefix}.scale_rewards={self.scale_rewards!r} applies to advantage_estimator=grpo "
                              f"only, not {self.advantage_estimator!r}")  # fmt: skip


@register_agent
class GRPO(LMAgent):
    """GRPO on a text task env (``rlzoo/TextTask-v0``): a causal LM policy, G completions per prompt,
    group-relative advantages, the clipped token-level surrogate and an optional KL to a reference model."""

    name = "grpo"
    Config = GRPOConfig
    data_parallel = True  # under torchrun each rank samples prompts_per_step prompts: the global batch is W×

    def __init__(self, env: gym.Env, config: Any = None, *, seed: int | None = None, **hyperparams: Any) -> None:
        super().__init__(env, config, seed=seed, **hyperparams)
        if self.config.overlong_buffer >= self.max_new:
            raise ConfigError(f"algo.overlong_buffer={self.config.overlong_buffer} must be less than the completions' "
                              f"maximum length {self.max_new}")  # fmt: skip

    @property
    def uses_reference(self) -> bool:
        return self.config.beta > 0.0

    def parallel_strategy(self) -> str | None:
        return self.config.data_parallel if self.data_parallel else None

    # ---- the training loop's hooks ----------------------------------------------------------------------------
    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """One GRPO step: sample and score a batch, compute its advantages, optimise; returns the diagnostics."""
        cfg, t = self.config, self.num_timesteps + 1
        start = time.perf_counter()
        batch = self.sample_batch()
        gen_s = time.perf_counter() - start
        rewards, shaping = self.shaped_rewards(batch)
        advantages = self.advantages(rewards)
        start = time.perf_counter()
        stats = self.optimize(batch.completions, advantages)
        train_s = time.perf_counter() - start
        tokens = float(batch.completions.mask.sum())
        scalars = {**batch.scalars(cfg.prompts_per_step, self.task.reward_funcs), **shaping,
                   "charts/generation_tokens_per_s": tokens / gen_s,
                   "charts/training_tokens_per_s": tokens * cfg.num_iterations / train_s,
                   "tokens/padding_share": stats.pop("padding_share"),
                   **{f"losses/{key}": value for key, value in stats.items()}}  # fmt: skip
        if t % cfg.log_every == 0:
            logger.text("samples", batch.samples_text(self.tokenizer.decode, cfg.num_generations), t)
        self.num_timesteps = t
        return scalars

    # ---- the steps of a GRPO step -----------------------------------------------------------------------------
    def sample_batch(self) -> GroupBatch:
        """One step's prompts, completions and rewards (:func:`sample_groups`, with dynamic sampling if set)."""
        cfg = self.config
        with distributed.gathered(self.model):  # FSDP2: ranks may stop sampling after different numbers of tokens
            return sample_groups(self.policy, self.task, self.prompts, prompts_per_step=cfg.prompts_per_step,
                                 num_generations=cfg.num_generations, temperature=cfg.temperature,
                                 top_k=cfg.top_k, dynamic_sampling=cfg.dynamic_sampling)  # fmt: skip

    def shaped_rewards(self, batch: GroupBatch) -> tuple[np.ndarray, dict[str, float]]:
        """The task's rewards with DAPO's overlong punishment and, with ``kl_in_reward``, minus β · Σ_t k1 to the
        reference model; and the means of those terms (``reward/overlong_penalty``, ``reward/kl_penalty``). The
        shaping runs on the completions' device; the rewards come back to the host."""
        comp, total = batch.completions, batch.rewards
        cfg, terms = self.config, {}
        shaped = torch.as_tensor(total, dtype=torch.float32, device=comp.mask.device)
        if cfg.overlong_buffer > 0:
            punish = overlong_penalty(comp.mask.sum(1), self.max_new, cfg.overlong_buffer, cfg.overlong_penalty)
            shaped, terms["reward/overlong_penalty"] = shaped + punish, float(punish.mean())
        if cfg.kl_in_reward:
            with torch.no_grad():
                ref, _ = self.log_probs(self.ref_model, comp.prompt_ids, comp.ids)
            penalty = kl_reward_penalty(comp.old_logp, ref, comp.mask, cfg.beta)
            shaped, terms["reward/kl_penalty"] = shaped - penalty, float(penalty.mean())
        return shaped.cpu().numpy().astype(total.dtype, copy=False) if terms else total, terms

    def advantages(self, total: np.ndarray) -> torch.Tensor:
        """The advantages of this rank's rewards (``advantage_estimator``); under torchrun computed over the
        global batch (the batch-wide stds are every rank's) and sliced back; on the agent's device."""
        cfg, n = self.config, len(total)
        rewards = distributed.all_gather_cat(torch.as_tensor(total, dtype=torch.float32, device=self.device))
        start = distributed.rank() * n
        return losses.advantages(rewards, cfg.num_generations, estimator=cfg.advantage_estimator,
                                 scale=cfg.scale_rewards)[start : start + n]  # fmt: skip

    def completion_mask(self, comp: Completions) -> torch.Tensor:
        """The loss mask: completion tokens through EOS, all zero for truncated completions when
        ``mask_truncated_completions`` (a cut-off answer teaches nothing about its end)."""
        mask = comp.mask.clone()
        if self.config.mask_truncated_completions:
            mask[comp.truncated] = 0.0
        return mask

    def optimize(self, comp: Completions, advantages: torch.Tensor) -> dict[str, float]:
        """``num_iterations`` (μ) passes over the batch, each ``num_minibatches`` AdamW steps on consecutive shares
        of it (whole groups when the sizes allow), each step over ``gradient_accumulation_steps`` chunks. Every
        step's ratios are to the sampling policy: after the first step they differ from 1."""
        cfg = self.config
        mask = self.completion_mask(comp)
        stats: dict[str, list[float]] = {"grad_norm": []}
        size = mask.shape[0] // cfg.num_minibatches
        self.model.train()
        for _ in range(cfg.num_iterations):
            for start in range(0, mask.shape[0], size):
                rows = slice(start, start + size)
                self.optimizer.zero_grad(set_to_none=True)
                chunk_stats = self.accumulate_gradients(comp.select(rows), advantages[rows], mask[rows],
                                                        cfg.gradient_accumulation_steps)  # fmt: skip
                for key, values in chunk_stats.items():
                    stats.setdefault(key, []).extend(values)
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                stats["grad_norm"].append(float(grad_norm))
                self.optimizer.step()
        return {k: float(np.mean(v)) for k, v in stats.items() if v}

    def accumulate_gradients(self, comp: Completions, advantages: torch.Tensor, mask: torch.Tensor,
                             chunks: int) -> dict[str, list[float]]:  # fmt: skip
        """Backpropagate the (mini)batch's loss − ``ent_coef`` · token entropy in ``chunks`` pieces whose weights
        make the summed gradient that of the whole (global) batch: n_chunk / n for the per-completion means (grpo,
        dr_grpo), tokens_chunk / tokens for the token means (dapo, cispo). The reference model runs only for a KL
        in the loss (with ``kl_in_reward`` the reward holds it)."""
        cfg = self.config
        n = mask.shape[0]
        size = n // chunks
        # under torchrun the normalisers are the global batch's: every rank holds n completions
        n_global, total_tokens = n * distributed.world_size(), distributed.all_reduce_sum(mask.sum()).clamp(min=1.0)
        stats: dict[str, list[float]] = {"loss": [], "clip_low": [], "clip_high": [], "kl": [], "entropy": [],
                                         "padding_share": []}  # fmt: skip
        for c in range(chunks):
            sl = slice(c * size, (c + 1) * size)
            m = mask[sl]
            stats["padding_share"].append(
                padding_share(
                    self.model,
                    comp.prompt_ids[sl],
                    comp.ids[sl],
                    packing=cfg.packing,
                    eos_id=self.tokenizer.eos_token_id,
                )
            )
            ref = None
            if cfg.beta > 0.0 and not cfg.kl_in_reward:
                with torch.no_grad():
                    ref, _ = self.log_probs(self.ref_model, comp.prompt_ids[sl], comp.ids[sl])
            # under torchrun the wrapper reduces the ranks' gradients after the last chunk only
            with distributed.gradient_sync(self.train_model, c == chunks - 1):
                logp, entropy = self.log_probs(self.train_model, comp.prompt_ids[sl], comp.ids[sl])
                loss = self.objective(logp, comp.old_logp[sl], ref, advantages[sl], m)
                weight = (m.sum() / total_tokens) if self.token_mean_loss else m.shape[0] / n_global
                denom = m.sum().clamp(min=1.0)
                token_entropy = (entropy * m).sum() / denom
                ((loss - cfg.ent_coef * token_entropy) * weight * distributed.gradient_scale()).backward()
            with torch.no_grad():
                for key, value in self.clip_fractions(logp, comp.old_logp[sl], advantages[sl], m).items():
                    stats[key].append(value)
                stats["entropy"].append(float(token_entropy))
                if ref is not None:
                    stats["kl"].append(float((losses.kl_penalty(logp, ref, cfg.kl_estimator) * m).sum() / denom))
            stats["loss"].append(loss.item())
        return stats

    # ---- the objective of one chunk (a family member overrides these) -----------------------------------------
    @property
    def token_mean_loss(self) -> bool:
        """Whether ``objective`` is a mean over the chunk's tokens (else over its completions or prompts)."""
        return self.config.loss_type in TOKEN_MEAN_LOSSES

    def objective(self, logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None,
                  advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The loss of a chunk of completions (:func:`rlzoo.llm.losses.policy_loss`), with β times the KL to the
        reference when ``ref_logp`` is given (None without a reference, or with the KL in the reward)."""
        cfg = self.config
        return losses.policy_loss(logp, old_logp, ref_logp, advantages, mask, loss_type=cfg.loss_type,
                                  importance_sampling_level=cfg.importance_sampling_level, epsilon=cfg.epsilon,
                                  epsilon_high=cfg.epsilon_high, delta=cfg.delta,
                                  beta=0.0 if ref_logp is None else cfg.beta, kl_estimator=cfg.kl_estimator,
                                  max_completion_length=self.max_new)  # fmt: skip

    def clip_fractions(self, logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                       mask: torch.Tensor) -> dict[str, float]:  # fmt: skip
        """Shares of completion tokens whose ratio the clip held below 1 − ε / above 1 + ε_high (of the ratio the
        loss uses: GSPO's is its completion's)."""
        cfg = self.config
        log_ratio = logp - old_logp
        if cfg.importance_sampling_level == "sequence":
            log_ratio = losses.importance_ratio(logp, old_logp, mask, "sequence").log()
        _, info = clipped_surrogate(log_ratio, torch.zeros_like(log_ratio), advantages.unsqueeze(1), cfg.epsilon,
                                    cfg.epsilon_high, masks=True)  # fmt: skip
        denom = mask.sum().clamp(min=1.0)
        return {key: float((info[f"clipped_{key[5:]}"] * mask).sum() / denom) for key in ("clip_low", "clip_high")}
