"""GRPO lives in ``rlzoo.llm`` (the agent in ``rlzoo.llm.grpo``); this module keeps the old import path working
(``from rlzoo.agents.grpo import group_advantages, grpo_loss``) and, imported by ``rlzoo.agents``, registers
``algo=grpo``."""

from rlzoo.llm.decoding import Completions, completion_log_probs, sample_completions
from rlzoo.llm.grpo import GRPO, GRPOConfig, LMConfig
from rlzoo.llm.losses import LOSS_TYPES, SCALE_REWARDS, group_advantages, grpo_loss, token_log_probs

__all__ = [
    "GRPO",
    "LOSS_TYPES",
    "SCALE_REWARDS",
    "Completions",
    "GRPOConfig",
    "LMConfig",
    "completion_log_probs",
    "group_advantages",
    "grpo_loss",
    "sample_completions",
    "token_log_probs",
]
