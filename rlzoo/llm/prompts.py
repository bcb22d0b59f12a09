"""Prompts as token ids (``<bos>`` + text), grouped by token length so that a batch stacks without padding."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlzoo.llm.models import Tokenizer

Row = dict[str, Any]  # a prompt row of a text task: "prompt" and the columns its reward functions read


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """The token ids of ``prompt``, after ``<bos>`` when the tokenizer has one."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + tokenizer.encode(prompt)


def prompt_tensor(tokenizer: Tokenizer, prompts: list[str]) -> torch.Tensor:
    """(P, T) token ids of prompts that encode to the same length."""
    return torch.tensor([encode_prompt(tokenizer, p) for p in prompts])


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
