"""A causal language model and its tokenizer as a policy over text: prompts in, sampled completions out."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from rlzoo.llm.decoding import Completions, sample_completions
from rlzoo.llm.models import Tokenizer, model_device
from rlzoo.llm.prompts import encode_prompt, indices_by_length, prompt_tensor

TaskFeedback = Callable[[str, str], str]  # (prompt, completion so far) -> text the environment writes next


class LanguagePolicy:
    """π_θ(completion | prompt) of ``model``: completions of at most ``max_new_tokens`` tokens drawn with
    ``generator`` (a generator on the model's device), a task's ``feedback`` written into them as they are sampled
    (see :func:`sample_completions`)."""

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, max_new_tokens: int, generator: torch.Generator,
                 feedback: TaskFeedback | None = None) -> None:  # fmt: skip
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.generator, self.feedback = max_new_tokens, generator, feedback

    def sample(self, prompts: list[str], num_generations: int, temperature: float = 1.0,
               top_k: int = 0) -> Completions:  # fmt: skip
        """``num_generations`` completions of each of the same-length ``prompts`` (the model in eval mode), on the
        model's device."""
        tok, env = self.tokenizer, self.feedback

        def feedback(row: int, generated: list[int]) -> list[int]:  # row i completes prompts[i // G]
            return self.feedback_ids(prompts[row // num_generations], generated)

        self.model.eval()
        prompt_ids = prompt_tensor(tok, prompts, model_device(self.model))
        return sample_completions(self.model, prompt_ids, num_generations, self.max_new_tokens,
                                  tok.eos_token_id, tok.pad_token_id, temperature=temperature, top_k=top_k,
                                  generator=self.generator, feedback=None if env is None else feedback)  # fmt: skip

    def feedback_ids(self, prompt: str, generated: list[int]) -> list[int]:
        """The token ids the task's ``feedback`` (not None) writes after the completion so far, ``generated``, of
        ``prompt``: what :func:`sample_completions` forces in, and :meth:`action_mask` replays."""
        return self.tokenizer.encode(self.feedback(prompt, self.tokenizer.decode(generated)))

    def action_mask(self, prompt: str, ids: list[int]) -> list[float]:
        """1 for each token of the completion ``ids`` of ``prompt`` that the policy chose, 0 for those the task's
        ``feedback`` wrote (replayed as :func:`sample_completions` writes them), so an offline loss on a stored
        completion, as DPO's, scores the policy's actions only. ``ValueError`` when ``ids`` differ from what the
        feedback writes."""
        if self.feedback is None:
            return [1.0] * len(ids)
        tok, mask, queue = self.tokenizer, [], []
        for i, token in enumerate(ids):
            if queue:
                expected = queue.pop(0)
                if token != expected:
                    raise ValueError(f"completion {tok.decode(ids)!r} of prompt {prompt!r}: token {i} is "
                                     f"{tok.decode([token])!r}, the task wrote {tok.decode([expected])!r}")  # fmt: skip
                mask.append(0.0)
                continue
            mask.append(1.0)
            if token != tok.eos_token_id:
                queue = self.feedback_ids(prompt, ids[: i + 1])
        return mask

    def complete(self, prompts: list[str], temperature: float = 0.0) -> list[str]:
        """One completion of each prompt (greedy at temperature 0), decoded in batches of one prompt length."""
        out: dict[int, str] = {}
        for idx in indices_by_length([encode_prompt(self.tokenizer, p) for p in prompts]):
            comp = self.sample([prompts[i] for i in idx], 1, temperature)
            out.update(zip(idx, map(self.tokenizer.decode, comp.ids.tolist()), strict=True))  # one copy to the host
        return [out[i] for i in range(len(prompts))]
