"""Language-model RL: GRPO (Shao et al., 2024) with its Dr. GRPO (Liu et al., 2025) and DAPO (Yu et al., 2025)
variants, in small modules with one job each.

- ``models``: ``TinyGPT`` with its key-value cache (``prefill`` / ``extend``), tokenizers, loading a Hugging
  Face causal LM from a local directory, ``save_tiny_hf_model``;
- ``decoding``: sampling completions with the cache, completion log-probs, the ``Completions`` batch;
- ``losses``: ``token_log_probs``, ``group_advantages``, ``grpo_loss`` — pure functions over tensors;
- ``prompts``: prompt encoding, bucketing by token length, the validation split;
- ``policy``: ``LanguagePolicy``, a model and its tokenizer as a policy over text;
- ``evaluation``: greedy evaluation on a task's prompt rows;
- ``warm_start``: the supervised warm start on a task's demonstrations;
- ``batches``: a GRPO step's ``GroupBatch`` (with DAPO's dynamic sampling);
- ``grpo``: the ``GRPO`` agent and its config (``algo=grpo``).
"""

from rlzoo.llm.batches import GroupBatch, SamplingInfo, sample_groups
from rlzoo.llm.decoding import Completions, completion_log_probs, sample_completions
from rlzoo.llm.evaluation import evaluate_greedy, score_completions
from rlzoo.llm.grpo import GRPO, GRPOConfig, LMConfig
from rlzoo.llm.losses import LOSS_TYPES, SCALE_REWARDS, group_advantages, grpo_loss, token_log_probs
from rlzoo.llm.models import (
    CharTokenizer,
    HFTokenizer,
    KVCache,
    TinyGPT,
    TinyGPTConfig,
    Tokenizer,
    extend,
    load_pretrained,
    logits_of,
    make_model,
    prefill,
    save_tiny_hf_model,
    supports_cache,
)
from rlzoo.llm.policy import LanguagePolicy
from rlzoo.llm.prompts import PromptBuckets, encode_prompt, indices_by_length, prompt_tensor, set_aside
from rlzoo.llm.warm_start import supervised_warm_start

__all__ = [
    "GRPO",
    "LOSS_TYPES",
    "SCALE_REWARDS",
    "CharTokenizer",
    "Completions",
    "GRPOConfig",
    "GroupBatch",
    "HFTokenizer",
    "KVCache",
    "LMConfig",
    "LanguagePolicy",
    "PromptBuckets",
    "SamplingInfo",
    "TinyGPT",
    "TinyGPTConfig",
    "Tokenizer",
    "completion_log_probs",
    "encode_prompt",
    "evaluate_greedy",
    "extend",
    "group_advantages",
    "grpo_loss",
    "indices_by_length",
    "load_pretrained",
    "logits_of",
    "make_model",
    "prefill",
    "prompt_tensor",
    "sample_completions",
    "sample_groups",
    "save_tiny_hf_model",
    "score_completions",
    "set_aside",
    "supervised_warm_start",
    "supports_cache",
    "token_log_probs",
]
