"""A causal language model and its tokenizer as a policy over text: prompts in, sampled completions out."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from rlzoo.llm.decoding import Completions, sample_completions
from rlzoo.llm.models import Tokenizer
from rlzoo.llm.prompts import encode_prompt, indices_by_length, prompt_tensor

TaskFeedback = Callable[[str, str], str]  # (prompt, completion so far) -> text the environment writes next


class LanguagePolicy:
    """π_θ(completion | prompt) of ``model``: completions of at most ``max_new_tokens`` tokens drawn with
    ``generator``; a task's ``feedback`` (an observation after each of the policy's tokens) is written into
    them as it is sampled (see :func:`sample_completions`)."""

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, max_new_tokens: int, generator: torch.Generator,
                 feedback: TaskFeedback | None = None) -> None:  # fmt: skip
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.generator, self.task_feedback = max_new_tokens, generator, feedback

    def prompt_ids(self, prompts: list[str]) -> torch.Tensor:
        """(P, T) token ids of same-length prompts."""
        return prompt_tensor(self.tokenizer, prompts)

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        """The text of a completion, up to its EOS."""
        return self.tokenizer.decode(ids)

    def feedback(self, prompts: list[str], repeats: int) -> Callable[[int, list[int]], list[int]] | None:
        """The task's environment feedback as :func:`sample_completions` calls it: row i is a completion of
        ``prompts[i // repeats]``; None when the task has none."""
        task_feedback = self.task_feedback
        if task_feedback is None:
            return None

        def tokens(row: int, generated: list[int]) -> list[int]:
            return self.tokenizer.encode(task_feedback(prompts[row // repeats], self.tokenizer.decode(generated)))

        return tokens

    def sample(self, prompts: list[str], num_generations: int, temperature: float = 1.0,
               top_k: int = 0) -> Completions:  # fmt: skip
        """``num_generations`` completions of each of the same-length ``prompts`` (the model in eval mode)."""
        prompt_ids = self.prompt_ids(prompts)
        self.model.eval()
        return sample_completions(self.model, prompt_ids, num_generations, self.max_new_tokens,
                                  self.tokenizer.eos_token_id, self.tokenizer.pad_token_id, temperature=temperature,
                                  top_k=top_k, generator=self.generator,
                                  feedback=self.feedback(prompts, num_generations))  # fmt: skip

    def complete(self, prompts: list[str], temperature: float = 0.0) -> list[str]:
        """One completion of each prompt (greedy at temperature 0), decoded in batches of one prompt length."""
        out: dict[int, str] = {}
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        self.model.eval()
        for idx in indices_by_length(encoded):
            ids = torch.tensor([encoded[i] for i in idx])
            comp = sample_completions(self.model, ids, 1, self.max_new_tokens, self.tokenizer.eos_token_id,
                                      self.tokenizer.pad_token_id, temperature=temperature,
                                      generator=self.generator,
                                      feedback=self.feedback([prompts[i] for i in idx], 1))  # fmt: skip
            for i, row in zip(idx, comp.ids, strict=True):
                out[i] = self.tokenizer.decode(row)
        return [out[i] for i in range(len(prompts))]
