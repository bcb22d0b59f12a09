"""GRPO: group-relative policy optimisation for language models (Shao et al., 2024, DeepSeekMath), with the
Dr. GRPO (Liu et al., 2025) and DAPO (Yu et al., 2025) normalisations as options.

The pieces, as functions users and tests call directly:

- ``token_log_probs(logits, tokens)``: log π(token_t | prefix) per position;
- ``group_advantages(rewards, group_size, scale)``: Â_i = r_i − mean(r_group), divided by the group's
  std (``group``), the batch's std (``batch``) or nothing (``none``, Dr. GRPO);
- ``grpo_loss(...)``: the per-token clipped surrogate −min(ρ Â, clip(ρ, 1 − ε, 1 + ε_high) Â) plus
  β·k3(π_ref ‖ π_θ), reduced per ``loss_type``: ``grpo`` (mean over each completion's tokens, then over
  completions), ``dr_grpo`` (sum over tokens / (B · max_completion_length)), ``dapo`` (mean over every
  completion token of the batch).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

from rlzoo import distributed
from rlzoo.agents.base import Agent
from rlzoo.agents.registry import register_agent
from rlzoo.config import AlgoConfig, ConfigError, param
from rlzoo.language_model import (
    CharTokenizer,
    TinyGPT,
    TinyGPTConfig,
    extend,
    load_pretrained,
    logits_of,
    prefill,
    supports_cache,
)
from rlzoo.logging import RunLogger
from rlzoo.objectives import approx_kl, clipped_surrogate
from rlzoo.seeding import seeded_torch

SCALE_REWARDS = ("group", "batch", "none")
LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
STD_EPS = 1e-4  # added to the std before dividing, as TRL does


def token_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[t, tokens[t]] for logits (B, T, V) aligned with tokens (B, T) → (B, T).

    Computed as the gathered logit minus logsumexp, without materialising the (B, T, V) log-softmax.
    """
    if logits.shape[:-1] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and tokens {tuple(tokens.shape)} do not align on (B, T)")
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).float()
    return picked - torch.logsumexp(logits.float(), dim=-1)


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group") -> torch.Tensor:
    """Group-relative advantages of rewards (B,) whose consecutive ``group_size`` entries share a prompt.

    Â_i = r_i − mean_g(r), divided by std_g(r) + 1e-4 (``group``), by the batch std + 1e-4 (``batch``) or
    not at all (``none``); stds are unbiased (n − 1), as in TRL.
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


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    loss_type: str = "grpo",
    max_completion_length: int | None = None,
) -> torch.Tensor:
    """The GRPO loss to minimise from per-token log-probs (B, T) under π_θ, π_old and π_ref, per-completion
    advantages (B,) and a completion mask (B, T) (1 on completion tokens, 0 on prompt, padding and anything
    after EOS). ``ref_logp`` is only read when ``beta`` > 0."""
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


# ---- sampling -------------------------------------------------------------------------------------------------


@dataclass
class Completions:
    """G sampled completions per prompt: token ids (N, L) padded after EOS, the completion mask (1 up to and
    including EOS), the old policy's per-token log-probs recorded while sampling, and the truncation flags."""

    prompt_ids: torch.Tensor
    ids: torch.Tensor
    mask: torch.Tensor
    old_logp: torch.Tensor
    truncated: torch.Tensor

    def select(self, index: torch.Tensor | slice) -> Completions:
        """The completions at ``index`` (a boolean mask, indices or a slice of rows)."""
        return Completions(*(getattr(self, f.name)[index] for f in fields(self)))


@torch.no_grad()
def sample_completions(model: nn.Module, prompt_ids: torch.Tensor, num_generations: int, max_new_tokens: int,
                       eos_id: int, pad_id: int, *, temperature: float = 1.0, top_k: int = 0,
                       generator: torch.Generator | None = None,
                       feedback: Callable[[int, list[int]], list[int]] | None = None) -> Completions:  # fmt: skip
    """Sample ``num_generations`` completions of each prompt (P, T) — all prompts the same length — token by
    token from softmax(logits / temperature), restricted to the ``top_k`` likeliest tokens when ``top_k`` > 0
    (``temperature`` 0: greedy). A completion ends at EOS or after ``max_new_tokens`` (truncated). A Hugging
    Face model or a ``TinyGPT`` decodes with its key-value cache (each prompt computed once for its G
    completions); any other module is re-run on the whole prefix.

    ``feedback(row, generated_ids)``, when given, is called after row ``row`` samples a token and returns the
    token ids the environment writes next (an observation; ``[]`` for none): they enter the sequence as if
    sampled, but are not the policy's actions — their mask and old log-prob are 0, so the loss ignores them."""
    ids = prompt_ids.repeat_interleave(num_generations, dim=0)
    n = ids.shape[0]
    done = torch.zeros(n, dtype=torch.bool)
    new, logps, policy_made = [], [], []
    queues: list[list[int]] = [[] for _ in range(n)]  # environment tokens still to write, per row
    cache = None
    for step in range(max_new_tokens):
        if not supports_cache(model):
            logits = logits_of(model, ids)[:, -1].float()
        elif step == 0:  # each prompt once, its cache repeated for its G completions
            logits, cache = prefill(model, prompt_ids, num_generations)
            logits = logits.float()
        else:
            logits = extend(model, ids[:, -1:], cache)[:, -1].float()
        if temperature == 0.0:
            token = logits.argmax(dim=-1)
            logp = torch.log_softmax(logits, dim=-1).gather(1, token[:, None])[:, 0]
        else:
            scaled = logits / temperature
            sampling = scaled
            if top_k > 0:
                kth = scaled.topk(min(top_k, scaled.shape[-1]), dim=-1).values[:, -1:]
                sampling = scaled.masked_fill(scaled < kth, float("-inf"))
            token = torch.multinomial(torch.softmax(sampling, dim=-1), 1, generator=generator)[:, 0]
            logp = torch.log_softmax(scaled, dim=-1).gather(1, token[:, None])[:, 0]
        forced = torch.zeros(n, dtype=torch.bool)
        if feedback is not None and any(queues):
            rows_forced = [i for i in range(n) if queues[i]]  # a finished row never gets a queue
            forced[rows_forced] = True
            token[rows_forced] = torch.tensor([queues[i].pop(0) for i in rows_forced])
        token = torch.where(done, torch.full_like(token, pad_id), token)
        new.append(token)
        policy_made.append(~forced)
        logps.append(torch.where(done | forced, torch.zeros_like(logp), logp))
        ids = torch.cat([ids, token[:, None]], dim=1)
        done |= token == eos_id
        if feedback is not None:
            generated = ids[:, prompt_ids.shape[1] :].tolist()
            for i in (~done & ~forced).nonzero()[:, 0].tolist():
                queues[i] = list(feedback(i, generated[i]))
        if done.all():
            break
    out = torch.stack(new, dim=1)
    eos_seen = (out == eos_id).long().cumsum(dim=1)
    mask = ((eos_seen == 0) | ((eos_seen == 1) & (out == eos_id))).float()  # through the first EOS
    mask *= torch.stack(policy_made, dim=1)  # environment tokens are not actions
    return Completions(prompt_ids.repeat_interleave(num_generations, dim=0), out, mask, torch.stack(logps, 1), ~done)


def completion_log_probs(model: nn.Module, prompt_ids: torch.Tensor, ids: torch.Tensor,
                         temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Per-token log-probs (N, L) of completion ``ids`` after ``prompt_ids`` under ``model`` at ``temperature``,
    and the per-token entropies of the same distributions. With a model that :func:`supports_cache`, runs of
    identical adjacent prompt rows (a group's G completions) are computed once and their keys/values shared
    (the same numbers and gradients as running every row whole, with fewer tokens)."""
    if supports_cache(model):
        unique, counts = torch.unique_consecutive(prompt_ids, dim=0, return_counts=True)
        first, cache = prefill(model, unique, counts)
        steps = [first[:, None]]
        if ids.shape[1] > 1:
            steps.append(extend(model, ids[:, :-1], cache))
        logits = torch.cat(steps, dim=1).float()
    else:
        full = torch.cat([prompt_ids, ids], dim=1)
        logits = logits_of(model, full[:, :-1])[:, prompt_ids.shape[1] - 1 :].float()
    if temperature not in (0.0, 1.0):
        logits = logits / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp_all.gather(-1, ids.unsqueeze(-1)).squeeze(-1), entropy


# ---- the trainer -------------------------------------------------------------------------------------------------


@dataclass
class LMConfig:
    """The policy model: a local directory (``path``: a saved TinyGPT or any Hugging Face causal LM) or a
    ``TinyGPT`` of this size built with random init."""

    path: str | None = None
    n_layer: int = param(2, ge=1)
    d_model: int = param(128, ge=8)
    n_head: int = param(4, ge=1)
    max_len: int = param(32, ge=4)


@dataclass
class GRPOConfig(AlgoConfig):
    model: LMConfig = field(default_factory=LMConfig)
    prompts_per_step: int = param(16, ge=1)
    num_generations: int = param(8, ge=2, help="G completions per prompt")
    temperature: float = param(1.0, gt=0.0)
    top_k: int = param(0, ge=0, help="sample among the k likeliest tokens; 0: all")
    max_completion_length: int | None = param(None, ge=1, help="null: the task's")
    learning_rate: float = param(1e-4, gt=0.0)
    weight_decay: float = param(0.0, ge=0.0)
    max_grad_norm: float = param(1.0, gt=0.0)
    num_iterations: int = param(1, ge=1, help="mu: optimisation passes over each sampled batch")
    gradient_accumulation_steps: int = param(1, ge=1)
    epsilon: float = param(0.2, gt=0.0)
    epsilon_high: float | None = param(None, gt=0.0, help="null: epsilon")
    beta: float = param(0.0, ge=0.0, help="k3 KL to the frozen reference model; 0: no reference model")
    loss_type: str = param("grpo", choices=LOSS_TYPES)
    scale_rewards: str = param("group", choices=SCALE_REWARDS)
    mask_truncated_completions: bool = False
    dynamic_sampling: bool = param(True, help="drop groups whose rewards are all equal and sample new prompts")
    ent_coef: float = param(0.0, ge=0.0)
    sft_steps: int = param(4000, ge=0, help="most supervised warm-start steps on the task's demonstrations")
    sft_batch_size: int = param(64, ge=1)
    sft_learning_rate: float = param(1e-3, gt=0.0)
    sft_target: float | None = param(
        0.25,
        gt=0.0,
        help="stop the warm start once the greedy first-reward mean "
        "on eval_prompts validation prompts (set aside) reaches this",
    )
    eval_prompts: int = param(200, ge=1, help="held-out prompts for greedy evaluation")
    log_every: int = param(50, ge=1, help="GRPO steps between held-out evaluations")

    def validate(self, prefix: str) -> None:
        if self.prompts_per_step * self.num_generations % self.gradient_accumulation_steps:
            batch = self.prompts_per_step * self.num_generations
            raise ConfigError(f"{prefix}.gradient_accumulation_steps={self.gradient_accumulation_steps} must divide "
                              f"prompts_per_step × num_generations = {batch}")  # fmt: skip


@register_agent
class GRPO(Agent):
    """GRPO on a text task env (``rlzoo/TextTask-v0``): a causal LM policy, G completions per prompt,
    group-relative advantages, the clipped token-level surrogate and an optional KL to a reference model."""

    name = "grpo"
    family = "llm_policy_optimization"
    Config = GRPOConfig
    data_parallel = True  # under torchrun each rank samples prompts_per_step prompts: the global batch is W×

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        if not hasattr(env.unwrapped, "task"):
            raise ConfigError(f"algo=grpo needs a text task env (env=arithmetic or env=gridworld_text); got {env}")

    def __init__(self, env: gym.Env, config: Any = None, *, seed: int | None = None, **hyperparams: Any) -> None:
        super().__init__(env, config, seed=seed, **hyperparams)
        cfg = self.config
        self.task = env.unwrapped.task
        with seeded_torch(seed):
            if cfg.model.path:
                self.model, self.tokenizer = load_pretrained(cfg.model.path)
            else:
                self.tokenizer = CharTokenizer()
                self.model = TinyGPT(TinyGPTConfig(self.tokenizer.vocab_size, cfg.model.max_len, cfg.model.n_layer,
                                                   cfg.model.d_model, cfg.model.n_head))  # fmt: skip
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        self.max_new = cfg.max_completion_length or self.task.max_completion_length
        self.ref_model: nn.Module | None = None
        # with a target-stopped warm start, eval_prompts training rows are set aside (never trained on) to
        # measure it: training rows memorised by the warm start would overstate its accuracy
        order = self.rng.permutation(len(self.task.train))
        held = cfg.eval_prompts if cfg.sft_target is not None and len(order) > 2 * cfg.eval_prompts else 0
        self.validation = [self.task.train[i] for i in order[:held]]
        self.buckets = self._bucket([self.task.train[i] for i in sorted(order[held:])])
        self.sft_done = False
        self.results: dict[str, dict[str, float]] = {}

    # ---- prompts ---------------------------------------------------------------------------------------------
    def _bucket(self, rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Prompt rows grouped by token length, so every batch stacks without padding."""
        groups = self.indices_by_length([self.encode_prompt(row["prompt"]) for row in rows])
        return [[rows[i] for i in idx] for idx in groups]

    @staticmethod
    def indices_by_length(encoded: list[list[int]]) -> list[list[int]]:
        """Indices of ``encoded`` prompts grouped by token length (first-seen order)."""
        by_len: dict[int, list[int]] = {}
        for i, ids in enumerate(encoded):
            by_len.setdefault(len(ids), []).append(i)
        return list(by_len.values())

    def encode_prompt(self, prompt: str) -> list[int]:
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        return bos + self.tokenizer.encode(prompt)

    def prompt_tensor(self, rows: list[dict[str, Any]]) -> torch.Tensor:
        """(P, T) token ids of same-length prompt rows."""
        return torch.tensor([self.encode_prompt(r["prompt"]) for r in rows])

    def draw_bucket(self) -> int:
        """A prompt-length bucket, chosen with probability proportional to its size."""
        sizes = np.array([len(b) for b in self.buckets], dtype=float)
        return int(self.rng.choice(len(self.buckets), p=sizes / sizes.sum()))

    def sample_prompts(self, n: int, bucket: int | None = None) -> list[dict[str, Any]]:
        """``n`` training prompt rows of one length (from ``bucket``, or a drawn one), with replacement."""
        rows = self.buckets[self.draw_bucket() if bucket is None else bucket]
        return [rows[i] for i in self.rng.integers(len(rows), size=n)]

    # ---- acting and evaluation ---------------------------------------------------------------------------------
    def feedback(self, prompts: list[str], repeats: int) -> Callable[[int, list[int]], list[int]] | None:
        """The task's environment feedback as :func:`sample_completions` calls it: row i is a completion of
        ``prompts[i // repeats]``; None when the task has none."""
        task_feedback = self.task.feedback
        if task_feedback is None:
            return None

        def tokens(row: int, generated: list[int]) -> list[int]:
            return self.tokenizer.encode(task_feedback(prompts[row // repeats], self.tokenizer.decode(generated)))

        return tokens

    def complete(self, prompts: list[str], temperature: float = 0.0) -> list[str]:
        """Completions of prompts (greedy at temperature 0), grouped by prompt length."""
        out: dict[int, str] = {}
        encoded = [self.encode_prompt(p) for p in prompts]
        self.model.eval()
        for idx in self.indices_by_length(encoded):
            ids = torch.tensor([encoded[i] for i in idx])
            comp = sample_completions(self.model, ids, 1, self.max_new, self.tokenizer.eos_token_id,
                                      self.tokenizer.pad_token_id, temperature=temperature,
                                      generator=self.generator,
                                      feedback=self.feedback([prompts[i] for i in idx], 1))  # fmt: skip
            for i, row in zip(idx, comp.ids, strict=True):
                out[i] = self.tokenizer.decode(row)
        return [out[i] for i in range(len(prompts))]

    def act(self, obs: Any, deterministic: bool = True) -> str:
        return self.complete([str(obs)], temperature=0.0 if deterministic else self.config.temperature)[0]

    def evaluate_heldout(self) -> dict[str, float]:
        """Greedy evaluation (:meth:`evaluate`) on the first ``eval_prompts`` held-out prompts."""
        return self.evaluate(self.task.test[: self.config.eval_prompts])

    def evaluate(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        """Greedy completions of prompt rows: mean total reward and mean of each reward function; with an
        ``optimal`` column also its mean and the share of it the first reward function reaches."""
        total, per = self.task.rewards(rows, self.complete([r["prompt"] for r in rows]))
        out = {"reward": float(total.mean())}
        for f, values in zip(self.task.reward_funcs, per, strict=True):
            out[f.__name__] = float(np.nanmean(values))
        if "optimal" in rows[0]:  # the task's first reward function is the return whose optimum is known
            optimal = float(np.mean([r["optimal"] for r in rows]))
            out.update(optimal=optimal, fraction_of_optimal=float(np.nanmean(per[0])) / optimal)
        return out

    # ---- supervised warm start ---------------------------------------------------------------------------------
    def warm_start(self, logger: RunLogger) -> int:
        """At most ``sft_steps`` of cross-entropy on the task's demonstrations (prompt → demonstration + EOS);
        with ``sft_target``, stops at the first check (every 100 steps) where the greedy first-reward mean on
        ``eval_prompts`` validation prompts (set aside from the training rows) reaches it — the held-out test
        prompts are never looked at."""
        cfg = self.config
        if cfg.sft_steps == 0 or self.task.demonstration is None:
            return 0
        key = self.task.reward_funcs[0].__name__
        validation = self.validation or self.task.train[: cfg.eval_prompts]
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.sft_learning_rate)
        self.model.train()
        for step in range(cfg.sft_steps):
            rows = self.sample_prompts(cfg.sft_batch_size)
            targets = [[*self.tokenizer.encode(self.task.demonstration(r, self.rng)), self.tokenizer.eos_token_id]
                       for r in rows]  # fmt: skip
            width = max(len(t) for t in targets)
            ids = torch.tensor([t + [self.tokenizer.pad_token_id] * (width - len(t)) for t in targets])
            mask = torch.tensor([[1.0] * len(t) + [0.0] * (width - len(t)) for t in targets])
            prompt_ids = self.prompt_tensor(rows)
            logp, _ = completion_log_probs(self.model, prompt_ids, ids)
            loss = -(logp * mask).sum() / distributed.all_reduce_sum(mask.sum())  # token mean of the global batch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            distributed.sum_gradients(self.model.parameters())
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            opt.step()
            if (step + 1) % 100 == 0:
                logger.scalar("sft/loss", loss.item(), step + 1)
                if cfg.sft_target is not None:
                    # the ranks' mean: one stopping decision for every rank
                    score = float(distributed.all_reduce_mean(torch.tensor(self.evaluate(validation)[key])))
                    self.model.train()
                    logger.scalar(f"sft/validation_{key}", score, step + 1)
                    if score >= cfg.sft_target:
                        break
        return step + 1

    # ---- one GRPO step ----------------------------------------------------------------------------------------
    def sample_batch(self) -> tuple[list[dict[str, Any]], Completions, np.ndarray, np.ndarray, dict[str, float]]:
        """Prompts, completions and rewards for one step; with ``dynamic_sampling`` groups whose G rewards are
        all equal are dropped and replaced by fresh prompts of the same length (up to 4 rounds, DAPO). The info
        dict has the first round's zero-std group count, the mean reward of every completion sampled (kept or
        not: an unbiased estimate of the policy's reward) and the number of rounds."""
        cfg, G = self.config, self.config.num_generations
        rows: list[dict[str, Any]] = []
        parts: list[tuple[Completions, np.ndarray, np.ndarray]] = []
        zero_std, sampled, bucket = 0, [], self.draw_bucket()
        for round_ in range(4 if cfg.dynamic_sampling else 1):
            batch_rows = self.sample_prompts(cfg.prompts_per_step - len(rows), bucket)
            prompt_ids = self.prompt_tensor(batch_rows)
            self.model.eval()
            comp = sample_completions(self.model, prompt_ids, G, self.max_new, self.tokenizer.eos_token_id,
                                      self.tokenizer.pad_token_id, temperature=cfg.temperature, top_k=cfg.top_k,
                                      generator=self.generator,
                                      feedback=self.feedback([r["prompt"] for r in batch_rows], G))  # fmt: skip
            texts = [self.tokenizer.decode(row) for row in comp.ids]
            expanded = [r for r in batch_rows for _ in range(G)]
            total, per = self.task.rewards(expanded, texts)
            sampled.append(total)
            flat = total.reshape(-1, G).std(axis=1) == 0
            if round_ == 0:
                zero_std = int(flat.sum())
            keep = ~flat if cfg.dynamic_sampling else np.ones(len(batch_rows), dtype=bool)
            if cfg.dynamic_sampling and round_ == 3:
                keep = np.ones(len(batch_rows), dtype=bool)  # out of rounds: fill the batch as it is
            kept = np.repeat(keep, G)
            sel = torch.from_numpy(kept)
            rows += [r for r, k in zip(batch_rows, keep, strict=True) if k]
            parts.append((comp.select(sel), total[kept], per[:, kept]))
            if len(rows) >= cfg.prompts_per_step:
                break
        width = max(p[0].ids.shape[1] for p in parts)

        def pad(t: torch.Tensor, value: float) -> torch.Tensor:
            return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

        comp = Completions(torch.cat([p[0].prompt_ids for p in parts]),
                           torch.cat([pad(p[0].ids, self.tokenizer.pad_token_id) for p in parts]),
                           torch.cat([pad(p[0].mask, 0.0) for p in parts]),
                           torch.cat([pad(p[0].old_logp, 0.0) for p in parts]),
                           torch.cat([p[0].truncated for p in parts]))  # fmt: skip
        return (
            rows,
            comp,
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts], axis=1),
            {
                "zero_std_groups": zero_std,
                "sampled_reward_mean": float(np.concatenate(sampled).mean()),
                "rounds": len(sampled),
            },
        )

    def completion_mask(self, comp: Completions) -> torch.Tensor:
        """The loss mask: completion tokens through EOS, all zero for truncated completions when
        ``mask_truncated_completions`` (a cut-off answer teaches nothing about its end)."""
        mask = comp.mask.clone()
        if self.config.mask_truncated_completions:
            mask[comp.truncated] = 0.0
        return mask

    def accumulate_gradients(self, comp: Completions, advantages: torch.Tensor, mask: torch.Tensor,
                             chunks: int) -> dict[str, list[float]]:  # fmt: skip
        """Backpropagate the batch's loss in ``chunks`` pieces whose weights make the summed gradient that of
        the whole batch: n_chunk / n for the per-completion means (grpo, dr_grpo), tokens_chunk / tokens for
        dapo's token mean."""
        cfg = self.config
        n = mask.shape[0]
        size = n // chunks
        # under torchrun the normalisers are the global batch's: every rank holds n completions
        n_global, total_tokens = n * distributed.world_size(), distributed.all_reduce_sum(mask.sum()).clamp(min=1.0)
        stats: dict[str, list[float]] = {"loss": [], "clip_low": [], "clip_high": [], "kl": [], "entropy": []}
        for c in range(chunks):
            sl = slice(c * size, (c + 1) * size)
            m = mask[sl]
            logp, entropy = completion_log_probs(self.model, comp.prompt_ids[sl], comp.ids[sl], cfg.temperature)
            ref = None
            if cfg.beta > 0.0:
                with torch.no_grad():
                    ref, _ = completion_log_probs(self.ref_model, comp.prompt_ids[sl], comp.ids[sl], cfg.temperature)
            loss = grpo_loss(logp, comp.old_logp[sl], ref, advantages[sl], m, epsilon=cfg.epsilon,
                             epsilon_high=cfg.epsilon_high, beta=cfg.beta, loss_type=cfg.loss_type,
                             max_completion_length=self.max_new)  # fmt: skip
            weight = (m.sum() / total_tokens) if cfg.loss_type == "dapo" else m.shape[0] / n_global
            denom = m.sum().clamp(min=1.0)
            token_entropy = (entropy * m).sum() / denom
            ((loss - cfg.ent_coef * token_entropy) * weight).backward()
            with torch.no_grad():
                _, info = clipped_surrogate(logp, comp.old_logp[sl], advantages[sl].unsqueeze(1), cfg.epsilon,
                                            cfg.epsilon_high, masks=True)  # fmt: skip
                stats["clip_low"].append(float((info["clipped_low"] * m).sum() / denom))
                stats["clip_high"].append(float((info["clipped_high"] * m).sum() / denom))
                stats["entropy"].append(float(token_entropy))
                if ref is not None:
                    stats["kl"].append(float((approx_kl(ref, logp) * m).sum() / denom))
            stats["loss"].append(loss.item())
        return stats

    def advantages(self, total: np.ndarray) -> torch.Tensor:
        """Group-relative advantages of this rank's rewards; under torchrun computed over the global batch
        (``scale_rewards=batch`` divides by the std of every rank's rewards) and sliced back."""
        cfg, n = self.config, len(total)
        rewards = distributed.all_gather_cat(torch.from_numpy(total).float())
        start = distributed.rank() * n
        return group_advantages(rewards, cfg.num_generations, cfg.scale_rewards)[start : start + n]

    def networks(self) -> list[nn.Module]:
        return [self.model]

    def frozen_copy(self) -> nn.Module:
        """A frozen copy of the policy (the KL reference model, taken after the warm start)."""
        return copy.deepcopy(self.model).requires_grad_(False).eval()

    def optimize(self, comp: Completions, advantages: torch.Tensor) -> dict[str, float]:
        """``num_iterations`` (μ) AdamW steps on the batch, each over ``gradient_accumulation_steps`` chunks."""
        cfg = self.config
        mask = self.completion_mask(comp)
        stats: dict[str, list[float]] = {"grad_norm": []}
        self.model.train()
        for _ in range(cfg.num_iterations):
            self.optimizer.zero_grad(set_to_none=True)
            chunk_stats = self.accumulate_gradients(comp, advantages, mask, cfg.gradient_accumulation_steps)
            distributed.sum_gradients(self.model.parameters())
            for key, values in chunk_stats.items():
                stats.setdefault(key, []).extend(values)
            stats["grad_norm"].append(float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)))
            self.optimizer.step()
        return {k: float(np.mean(v)) for k, v in stats.items() if v}

    def step(self, logger: RunLogger, t: int) -> dict[str, float]:
        """Sample, score, compute advantages and optimise once; returns the step's diagnostics (text samples
        are logged at ``t``)."""
        cfg = self.config
        start = time.perf_counter()
        rows, comp, total, per, info = self.sample_batch()
        gen_s = time.perf_counter() - start
        advantages = self.advantages(total)
        start = time.perf_counter()
        stats = self.optimize(comp, advantages)
        train_s = time.perf_counter() - start
        lengths = comp.mask.sum(1)
        tokens = float(lengths.sum())
        zero_std_share = info["zero_std_groups"] / cfg.prompts_per_step
        scalars = {"reward/mean": info["sampled_reward_mean"], "reward/kept_mean": total.mean(),
                   "reward/std": total.std(), "reward/sampling_rounds": info["rounds"],
                   "reward/frac_reward_zero_std": zero_std_share, "completions/length_mean": float(lengths.mean()),
                   "completions/length_max": float(lengths.max()),
                   "completions/truncated_ratio": float(comp.truncated.float().mean()),
                   "charts/generation_tokens_per_s": tokens / gen_s,
                   "charts/training_tokens_per_s": tokens * cfg.num_iterations / train_s}  # fmt: skip
        for f, values in zip(self.task.reward_funcs, per, strict=True):
            scalars[f"reward/{f.__name__}_mean"] = float(np.nanmean(values))
            scalars[f"reward/{f.__name__}_std"] = float(np.nanstd(values))
        for key, value in stats.items():
            scalars[f"losses/{key}"] = value
        if t % cfg.log_every == 0:
            firsts = comp.ids[:: cfg.num_generations][:4]
            samples = [f"{r['prompt']} → {self.tokenizer.decode(c)!r}" for r, c in zip(rows[:4], firsts, strict=False)]
            logger.text("samples", "\n\n".join(samples), t)
        return scalars

    log_every = 1  # every GRPO step's diagnostics are logged; held-out evaluation every config.log_every

    def begin(self, total_steps: int, logger: RunLogger) -> None:
        """The supervised warm start (once) with held-out evaluations before and after it."""
        super().begin(total_steps, logger)
        if not self.sft_done:
            self.results["initial"] = self.evaluate_heldout()
            sft_steps = self.warm_start(logger)
            self.sft_done = True
            after = self.evaluate_heldout()
            for key, value in after.items():
                logger.scalar(f"heldout/{key}", value, 0)
            self.results["after_warm_start"] = {**after, "sft_steps": float(sft_steps)}
            if self.config.beta > 0.0:
                self.ref_model = self.frozen_copy()

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """One GRPO step."""
        scalars = self.step(logger, self.num_timesteps + 1)
        self.num_timesteps += 1
        return scalars

    def log_point(self, step: int) -> dict[str, float]:
        """Held-out evaluation every ``config.log_every`` steps and at the end."""
        if step % self.config.log_every and step != self.total_steps:
            return {}
        self.results["final"] = self.evaluate_heldout()
        return {f"heldout/{key}": value for key, value in self.results["final"].items()}

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"heldout": self.results}
        final = self.results.get("final") or self.results.get("after_warm_start") or {}
        first = self.results.get("after_warm_start", {})
        key = self.task.reward_funcs[0].__name__
        if key in final and key in first:
            out[f"heldout_{key}_after_warm_start"] = first[key]
            out[f"heldout_{key}_final"] = final[key]
        return out

    # ---- persistence ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "generator": self.generator.get_state(), "sft_done": self.sft_done,
                 "results": self.results}  # fmt: skip
        if self.ref_model is not None:
            state["ref_model"] = self.ref_model.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.sft_done, self.results = bool(state["sft_done"]), dict(state["results"])
        if "ref_model" in state:
            self.ref_model = self.frozen_copy()
            self.ref_model.load_state_dict(state["ref_model"])
