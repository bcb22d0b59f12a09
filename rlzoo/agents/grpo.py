"""The old import path of GRPO (now in ``rlzoo.llm``); imported by ``rlzoo.agents``, it registers ``algo=grpo``."""

from rlzoo.llm.decoding import completion_log_probs, sample_completions
from rlzoo.llm.grpo import GRPO
from rlzoo.llm.losses import advantages, group_advantages, grpo_loss, kl_penalty, policy_loss, token_log_probs

__all__ = ["GRPO", "advantages", "completion_log_probs", "group_advantages", "grpo_loss", "kl_penalty", "policy_loss",
           "sample_completions", "token_log_probs"]  # fmt: skip
