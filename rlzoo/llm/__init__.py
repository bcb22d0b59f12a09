"""Language-model RL: GRPO (Shao et al., 2024) with its Dr. GRPO, DAPO, GSPO and CISPO variants, and the objectives
of ``rlzoo.llm.losses`` (advantage estimators, KL penalties, Kimi k1.5, DPO); one job per module."""

from rlzoo.llm.decoding import Completions, completion_log_probs, sample_completions
from rlzoo.llm.dpo import DPO, DPOConfig
from rlzoo.llm.grpo import GRPO, GRPOConfig, LMPolicyConfig
from rlzoo.llm.kimi import Kimi, KimiConfig
from rlzoo.llm.losses import (
    ADVANTAGE_ESTIMATORS,
    DPO_LOSS_TYPES,
    IMPORTANCE_SAMPLING_LEVELS,
    KL_ESTIMATORS,
    LOSS_TYPES,
    advantages,
    dpo_loss,
    dpo_rewards,
    group_advantages,
    grpo_loss,
    importance_ratio,
    kimi_loss,
    kl_penalty,
    length_reward,
    policy_loss,
    token_log_probs,
)
from rlzoo.llm.models import CharTokenizer, TinyGPT, TinyGPTConfig, extend, load_pretrained, prefill, save_tiny_hf_model

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "DPO",
    "DPO_LOSS_TYPES",
    "GRPO",
    "IMPORTANCE_SAMPLING_LEVELS",
    "KL_ESTIMATORS",
    "LOSS_TYPES",
    "CharTokenizer",
    "Completions",
    "DPOConfig",
    "GRPOConfig",
    "Kimi",
    "KimiConfig",
    "LMPolicyConfig",
    "TinyGPT",
    "TinyGPTConfig",
    "advantages",
    "completion_log_probs",
    "dpo_loss",
    "dpo_rewards",
    "extend",
    "group_advantages",
    "grpo_loss",
    "importance_ratio",
    "kimi_loss",
    "kl_penalty",
    "length_reward",
    "load_pretrained",
    "policy_loss",
    "prefill",
    "sample_completions",
    "save_tiny_hf_model",
    "token_log_probs",
]
