"""Language-model RL: GRPO (Shao et al., 2024) with its Dr. GRPO and DAPO variants; one job per module."""

from rlzoo.llm.decoding import Completions, completion_log_probs, sample_completions
from rlzoo.llm.grpo import GRPO, GRPOConfig
from rlzoo.llm.losses import group_advantages, grpo_loss, token_log_probs
from rlzoo.llm.models import CharTokenizer, TinyGPT, TinyGPTConfig, extend, load_pretrained, prefill, save_tiny_hf_model

__all__ = ["GRPO", "CharTokenizer", "Completions", "GRPOConfig", "TinyGPT", "TinyGPTConfig", "completion_log_probs",
           "extend", "group_advantages", "grpo_loss", "load_pretrained", "prefill", "sample_completions",
           "save_tiny_hf_model", "token_log_probs"]  # fmt: skip
