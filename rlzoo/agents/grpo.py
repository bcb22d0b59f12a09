"""The old import path of GRPO (now in ``rlzoo.llm``); imported by ``rlzoo.agents``, it registers ``algo=grpo``."""

from rlzoo.llm.decoding import completion_log_probs, sample_completions
from rlzoo.llm.grpo import GRPO
from rlzoo.llm.losses import group_advantages, grpo_loss, token_log_probs

__all__ = ["GRPO", "completion_log_probs", "group_advantages", "grpo_loss", "sample_completions", "token_log_probs"]
