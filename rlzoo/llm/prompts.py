"""Prompts as token ids (``<bos>`` + text), grouped by token length so that a batch stacks without padding."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlzoo.config import ConfigError
from rlzoo.llm.models import CharTokenizer, Tokenizer

if TYPE_CHECKING:
    from rlzoo.envs.text_tasks import TextTask

Row = dict[str, Any]  # a prompt row of a text task: "prompt" and the columns its reward functions read


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """The token ids of ``prompt``, after ``<bos>`` when the tokenizer has one."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + tokenizer.encode(prompt)


def prompt_tensor(tokenizer: Tokenizer, prompts: list[str], device: torch.device | str | None = None) -> torch.Tensor:
    """(P, T) token ids of prompts that encode to the same length, on ``device`` (the CPU by default)."""
    return torch.tensor([encode_prompt(tokenizer, p) for p in prompts], device=device)


def right_padded(rows: list[list[int]] | list[list[float]], value: float, device: torch.device) -> torch.Tensor:
    """(N, W) tensor of ``rows`` (token ids, or a mask) each padded on the right with ``value`` to the longest row's
    width W, on ``device``."""
    width = max(len(row) for row in rows)
    return torch.tensor([[*row, *[value] * (width - len(row))] for row in rows], device=device)


def indices_by_length(encoded: list[list[int]]) -> list[list[int]]:
    """Indices of ``encoded`` prompts grouped by token length (first-seen order)."""
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_len.setdefault(len(ids), []).append(i)
    return list(by_len.values())


class PromptBuckets:
    """Training prompt rows grouped by token length; batches are drawn from one bucket, with replacement."""

    def __init__(self, rows: list[Row], tokenizer: Tokenizer, rng: np.random.Generator) -> None:
        groups = indices_by_length([encode_prompt(tokenizer, row["prompt"]) for row in rows])
        self.buckets = [[rows[i] for i in idx] for idx in groups]
        self.rng = rng

    def draw_bucket(self) -> int:
        """A prompt-length bucket, chosen with probability proportional to its size."""
        sizes = np.array([len(b) for b in self.buckets], dtype=float)
        return int(self.rng.choice(len(self.buckets), p=sizes / sizes.sum()))

    def sample(self, n: int, bucket: int | None = None) -> list[Row]:
        """``n`` training prompt rows of one length (from ``bucket``, or a drawn one), with replacement."""
        rows = self.buckets[self.draw_bucket() if bucket is None else bucket]
        return [rows[i] for i in self.rng.integers(len(rows), size=n)]


def chat_template_of(tokenizer: Tokenizer, model_path: str | None) -> Callable[[str], str]:
    """``prompt → text`` of a one-turn user conversation through the tokenizer's chat template, ending where the
    assistant's reply starts (``add_generation_prompt``); ``ConfigError`` when the tokenizer has no template."""
    hf = getattr(tokenizer, "tok", None)
    if getattr(hf, "chat_template", None) is None:
        where = f"algo.model.path={model_path!r}" if model_path else "TinyGPT's character tokenizer"
        raise ConfigError(f"env.chat_template=true, but the tokenizer of {where} has no chat template: set "
                          "env.chat_template=false or use a model directory whose tokenizer has one")  # fmt: skip

    def template(prompt: str) -> str:
        conversation = [{"role": "user", "content": prompt}]
        return hf.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)  # type: ignore[union-attr]

    return template


def check_prompts_fit(task: TextTask, tokenizer: Tokenizer, max_new_tokens: int, context: int | None) -> None:
    """``ConfigError`` naming the first prompt of ``task`` the tokenizer cannot encode (a character outside
    TinyGPT's alphabet), or the longest prompt when it and ``max_new_tokens`` exceed the model's ``context``."""
    longest, longest_len = "", 0
    for split in ("train", "test"):
        for i, row in enumerate(getattr(task, split)):
            try:
                n = len(encode_prompt(tokenizer, row["prompt"]))
            except ValueError as err:  # CharTokenizer: a character outside its alphabet
                char_level = isinstance(tokenizer, CharTokenizer)
                hint = " (algo.model.path: a model with its own tokenizer)" if char_level else ""
                raise ConfigError(f"env: {split} prompt {i} {row['prompt']!r}: {err}{hint}") from None
            if n > longest_len:
                longest, longest_len = row["prompt"], n
    if context is not None and longest_len + max_new_tokens > context:
        raise ConfigError(f"env: the prompt {longest!r} ({longest_len} tokens) and {max_new_tokens} completion tokens "
                          f"exceed the model's {context} positions: raise algo.model.max_len (TinyGPT), shorten "
                          "the prompts or lower algo.max_completion_length")  # fmt: skip
