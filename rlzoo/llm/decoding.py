"""Decoding a causal LM policy: ``sample_completions`` (G per prompt, with the key-value cache) into a
``Completions`` batch, and ``completion_log_probs``, the π_θ / π_old / π_ref terms of the GRPO ratio (padded, or
packed without padding: :mod:`rlzoo.llm.packing`), with ``padding_share``, the share of its computed positions
that are padding."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn as nn

from rlzoo.host_memory import release_after_pass
from rlzoo.llm.lora import fused_for_sampling
from rlzoo.llm.models import (
    TinyGPT,
    base_model,
    decoding_cache,
    extend,
    logits_of,
    model_uses_checkpointing,
    prefill,
    supports_cache,
)
from rlzoo.llm.packing import DEFAULT_CAPACITY, PackedBatch, completion_lengths, pack
from rlzoo.llm.precision import cached_weight_casts


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


@contextlib.contextmanager
def decoding_attention(model: nn.Module) -> Iterator[None]:
    """Inside, a Hugging Face model on the CPU with SDPA attention decodes with its eager attention, restored after:
    for one new token per row against the cache of :func:`decoding_cache`, SDPA's CPU kernel was 2× the slower (a
    19M-parameter Qwen2 sampling 64 × 256 tokens in bf16 with LoRA: 22.6 s with SDPA, 11.1 s eager, one thread)."""
    inner = base_model(model)
    impl = getattr(getattr(inner, "config", None), "_attn_implementation", None)
    if impl != "sdpa" or next(inner.parameters()).device.type != "cpu" or isinstance(inner, TinyGPT):
        yield
        return
    inner.set_attn_implementation("eager")
    try:
        yield
    finally:
        inner.set_attn_implementation(impl)


@torch.no_grad()
def sample_completions(model: nn.Module, prompt_ids: torch.Tensor, num_generations: int, max_new_tokens: int,
                       eos_id: int, pad_id: int, *, temperature: float = 1.0, top_k: int = 0,
                       generator: torch.Generator | None = None,
                       feedback: Callable[[int, list[int]], list[int]] | None = None) -> Completions:  # fmt: skip
    """Sample ``num_generations`` completions of each prompt (P, T) — all prompts the same length — token by
    token from softmax(logits / temperature), restricted to the ``top_k`` likeliest tokens when ``top_k`` > 0
    (``temperature`` 0: greedy), drawn with ``generator`` (on the device of the model and ``prompt_ids``). A
    completion ends at EOS or after ``max_new_tokens`` (truncated). A model that
    :func:`supports_cache` computes each prompt once for its G completions; any other is re-run on the prefix.
    ``feedback(row, generated_ids)``, when given, is called after row ``row`` samples a token and returns the
    token ids the environment writes next (an observation; ``[]`` for none): they enter the sequence as if
    sampled, but are not the policy's actions — their mask and old log-prob are 0, so the loss ignores them. The
    memory of the key-value cache goes back to the operating system after a large batch on the CPU
    (:func:`rlzoo.host_memory.release_after_pass`)."""
    with decoding_attention(model), cached_weight_casts(model), fused_for_sampling(model):
        completions = _sample(model, prompt_ids, num_generations, max_new_tokens, eos_id, pad_id, temperature,
                              top_k, generator, feedback)  # fmt: skip
    release_after_pass(completions.ids.numel(), completions.ids.device.type)
    return completions


def _sample(model: nn.Module, prompt_ids: torch.Tensor, num_generations: int, max_new_tokens: int, eos_id: int,
            pad_id: int, temperature: float, top_k: int, generator: torch.Generator | None,
            feedback: Callable[[int, list[int]], list[int]] | None) -> Completions:  # fmt: skip
    """:func:`sample_completions`' loop."""
    ids = prompt_ids.repeat_interleave(num_generations, dim=0)
    n = ids.shape[0]
    done = torch.zeros(n, dtype=torch.bool, device=ids.device)
    new, logps, policy_made = [], [], []
    queues: list[list[int]] = [[] for _ in range(n)]  # environment tokens still to write, per row
    cache = None
    for step in range(max_new_tokens):
        if not supports_cache(model):
            logits = logits_of(model, ids)[:, -1].float()
        elif step == 0:  # each prompt once, its cache repeated for its G completions
            logits, cache = prefill(model, prompt_ids, num_generations)
            cache = decoding_cache(model, cache)
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
        forced = torch.zeros(n, dtype=torch.bool, device=ids.device)
        if feedback is not None and any(queues):
            rows_forced = [i for i in range(n) if queues[i]]  # a finished row never gets a queue
            forced[rows_forced] = True
            token[rows_forced] = torch.tensor([queues[i].pop(0) for i in rows_forced], device=token.device)
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


def completion_log_probs(model: nn.Module, prompt_ids: torch.Tensor, ids: torch.Tensor, temperature: float = 1.0, *,
                         packing: bool = False, lengths: torch.Tensor | None = None, eos_id: int | None = None,
                         capacity: int = DEFAULT_CAPACITY) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Per-token log-probs (N, L) of completion ``ids`` after ``prompt_ids`` under ``model`` at ``temperature``,
    and the per-token entropies of the same distributions. With a model that :func:`supports_cache` (and does not
    checkpoint now, :func:`model_uses_checkpointing`), runs of identical adjacent prompt rows (a group's G
    completions) are computed once and their keys/values shared (the same numbers and gradients as running every
    row whole, with fewer tokens). With ``packing`` the sequences are packed without padding (:func:`packed_log_probs`;
    only each completion's tokens through its first EOS are scored — ``lengths`` (N,), or found from ``eos_id``,
    else all L — and the positions after them are 0) when that computes fewer positions than the padded pass
    (:func:`packing_layout`)."""
    if packing:
        lengths = scored_lengths(ids, lengths, eos_id)
        batch = packing_layout(model, prompt_ids, ids, lengths, capacity)
        if batch is not None:
            return _packed_log_probs(model, ids, batch, temperature)
        logp, entropy = completion_log_probs(model, prompt_ids, ids, temperature)  # padding is rare: padded pass
        scored = torch.arange(ids.shape[1], device=ids.device) < lengths[:, None]
        return torch.where(scored, logp, 0.0), torch.where(scored, entropy, 0.0)
    if supports_cache(model) and not model_uses_checkpointing(model):
        unique, counts = torch.unique_consecutive(prompt_ids, dim=0, return_counts=True)
        first, cache = prefill(model, unique, counts)
        steps = [first[:, None]]
        if ids.shape[1] > 1:
            steps.append(extend(model, ids[:, :-1], cache))
        logits = torch.cat(steps, dim=1).float()
    else:
        full = torch.cat([prompt_ids, ids], dim=1)
        logits = logits_of(model, full[:, :-1])[:, prompt_ids.shape[1] - 1 :].float()
    return token_log_probs(logits, ids, temperature)


def token_log_probs(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-probs of ``ids`` (…) under ``logits`` (…, V) / ``temperature`` and the entropies of those
    distributions."""
    if temperature not in (0.0, 1.0):
        logits = logits / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp_all.gather(-1, ids.unsqueeze(-1)).squeeze(-1), entropy


def scored_lengths(ids: torch.Tensor, lengths: torch.Tensor | None, eos_id: int | None) -> torch.Tensor:
    """The tokens (N,) of each completion in ``ids`` (N, L) to score: ``lengths`` when given, else through the
    first ``eos_id`` when given, else all L."""
    if lengths is not None:
        return lengths
    if eos_id is not None:
        return completion_lengths(ids, eos_id)
    return torch.full((ids.shape[0],), ids.shape[1], dtype=torch.long, device=ids.device)


MASKED_ATTENTION = ("sdpa", "eager")  # Hugging Face attention implementations that take an explicit 4-D mask


def shares_prompts(model: nn.Module) -> bool:
    """Whether packing runs each group's prompt once for ``model``: it takes an explicit attention mask — a
    ``TinyGPT``, or a Hugging Face model with sdpa or eager attention. Others (e.g. flash attention) get whole
    sequences, whose segments transformers finds from the ``position_ids``."""
    inner = base_model(model)
    return isinstance(inner, TinyGPT) or getattr(inner.config, "_attn_implementation", None) in MASKED_ATTENTION


def packed_batch(model: nn.Module, prompt_ids: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor,
                 capacity: int = DEFAULT_CAPACITY) -> PackedBatch:  # fmt: skip
    """The packing of a batch for ``model`` (:func:`rlzoo.llm.packing.pack`): each group's prompt once when it
    :func:`shares_prompts`, else every completion with its prompt."""
    if not supports_cache(model):
        raise ValueError(f"packing needs a TinyGPT or a Hugging Face causal LM, not {type(model).__name__}")
    return pack(prompt_ids, ids, lengths, share_prompts=shares_prompts(model), capacity=capacity)


def packed_logits(model: nn.Module, batch: PackedBatch) -> torch.Tensor:
    """The logits (R, S, V) of the packed rows: a ``TinyGPT`` with their boolean attention mask; a Hugging Face
    model with sdpa/eager attention with it as a 4-D mask (boolean, or additive for eager), any other with the
    ``position_ids`` alone — without a cache, as transformers only finds packed segments without one."""
    inner = base_model(model)
    if isinstance(inner, TinyGPT):
        return model(batch.input_ids, position_ids=batch.position_ids, attn_mask=batch.attention_mask())
    mask = None
    if shares_prompts(model):
        mask = batch.attention_mask()[:, None]
        if inner.config._attn_implementation == "eager":
            mask = torch.zeros(mask.shape, dtype=inner.dtype, device=mask.device).masked_fill(
                ~mask, torch.finfo(inner.dtype).min
            )
    return model(batch.input_ids, position_ids=batch.position_ids, attention_mask=mask, use_cache=False).logits


def packed_log_probs(model: nn.Module, prompt_ids: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor,
                     temperature: float = 1.0,
                     capacity: int = DEFAULT_CAPACITY) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """:func:`completion_log_probs` of the first ``lengths[n]`` tokens of each completion, computed on the batch
    packed into rows without padding (:func:`packed_batch`): the same log-probs, entropies and gradients as the
    padded pass on those tokens; 0 after them."""
    return _packed_log_probs(model, ids, packed_batch(model, prompt_ids, ids, lengths, capacity), temperature)


def _packed_log_probs(model: nn.Module, ids: torch.Tensor, batch: PackedBatch,
                      temperature: float) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """:func:`packed_log_probs` of a packed ``batch`` of completions ``ids``."""
    picked = packed_logits(model, batch).flatten(0, 1)[batch.source].float()
    logp, entropy = token_log_probs(picked, ids.flatten()[batch.target], temperature)

    def scatter(values: torch.Tensor) -> torch.Tensor:
        return values.new_zeros(ids.numel()).index_copy(0, batch.target, values).view(ids.shape)

    return scatter(logp), scatter(entropy)


def padded_positions(model: nn.Module, prompt_ids: torch.Tensor, ids: torch.Tensor,
                     lengths: torch.Tensor) -> tuple[int, int]:  # fmt: skip
    """The positions the padded pass computes and how many of them hold a sequence's token (completions scored on
    their first ``lengths`` tokens): the prompts once per group with the key-value cache, else once per completion."""
    n, width = ids.shape
    inputs = int((lengths - 1).clamp(min=0).sum())
    prompts = prompt_ids.shape[1] * n
    if supports_cache(model) and not model_uses_checkpointing(model):
        prompts = prompt_ids.shape[1] * len(torch.unique_consecutive(prompt_ids, dim=0))
    return prompts + n * max(width - 1, 0), prompts + inputs


def packing_layout(model: nn.Module, prompt_ids: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor,
                   capacity: int = DEFAULT_CAPACITY) -> PackedBatch | None:  # fmt: skip
    """The batch packed (:func:`packed_batch`) when that computes fewer positions than the padded pass, else None:
    where every completion runs to the full length there is no padding to remove, and the packed rows' longer
    attention would only cost (gridworld_text: 0 % padding padded, a 1.28× slower loss pass packed)."""
    batch = packed_batch(model, prompt_ids, ids, lengths, capacity)
    return batch if batch.computed < padded_positions(model, prompt_ids, ids, lengths)[0] else None


def padding_share(model: nn.Module, prompt_ids: torch.Tensor, ids: torch.Tensor, *, packing: bool = False,
                  lengths: torch.Tensor | None = None, eos_id: int | None = None,
                  capacity: int = DEFAULT_CAPACITY) -> float:  # fmt: skip
    """The share of the positions :func:`completion_log_probs` (same arguments) computes that are padding: packed
    (when :func:`packing_layout` packs), the rows' padding; padded, the completion positions after each
    completion's scored tokens (``lengths``, from ``eos_id`` or all L)."""
    lengths = scored_lengths(ids, lengths, eos_id).clamp(0, ids.shape[1])
    if packing and (batch := packing_layout(model, prompt_ids, ids, lengths, capacity)) is not None:
        return batch.padding_share
    computed, real = padded_positions(model, prompt_ids, ids, lengths)
    return 1.0 - real / max(computed, 1)
