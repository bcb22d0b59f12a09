"""Decoding a causal LM policy: ``sample_completions`` (G per prompt, with the key-value cache) into a
``Completions`` batch, and ``completion_log_probs``, the π_θ / π_old / π_ref terms of the GRPO ratio."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn as nn

from rlzoo.llm.models import extend, logits_of, prefill, supports_cache


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

    @staticmethod
    def concat(parts: Sequence[Completions], pad_id: int) -> Completions:
        """The rows of ``parts`` (whose prompts have one length) stacked, each padded to the longest completion:
        ids with ``pad_id``, the mask and old log-probs with 0."""
        width = max(p.ids.shape[1] for p in parts)

        def pad(t: torch.Tensor, value: float) -> torch.Tensor:
            return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

        return Completions(torch.cat([p.prompt_ids for p in parts]), torch.cat([pad(p.ids, pad_id) for p in parts]),
                           torch.cat([pad(p.mask, 0.0) for p in parts]),
                           torch.cat([pad(p.old_logp, 0.0) for p in parts]),
                           torch.cat([p.truncated for p in parts]))  # fmt: skip


@torch.no_grad()
def sample_completions(model: nn.Module, prompt_ids: torch.Tensor, num_generations: int, max_new_tokens: int,
                       eos_id: int, pad_id: int, *, temperature: float = 1.0, top_k: int = 0,
                       generator: torch.Generator | None = None,
                       feedback: Callable[[int, list[int]], list[int]] | None = None) -> Completions:  # fmt: skip
    """Sample ``num_generations`` completions of each prompt (P, T) — all prompts the same length — token by
    token from softmax(logits / temperature), restricted to the ``top_k`` likeliest tokens when ``top_k`` > 0
    (``temperature`` 0: greedy). A completion ends at EOS or after ``max_new_tokens`` (truncated). A model that
    :func:`supports_cache` computes each prompt once for its G completions; any other is re-run on the prefix.
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
            scaled, token = logits, logits.argmax(dim=-1)
        else:
            scaled = sampling = logits / temperature
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
