"""Numeric precision of a language-model agent (Micikevicius et al., 2018, "Mixed Precision Training", with
bfloat16 instead of fp16, so no loss scaling):

- ``fp32``: everything in float32.
- ``bf16``: forward and backward under ``torch.autocast`` in bfloat16; the trained parameters and their AdamW
  state stay float32 (master weights). Frozen parameters (LoRA's base weights, the KL reference copy) have no
  master copy to keep and are stored in bfloat16.
- ``bf16_pure``: every parameter, and so the optimiser state, in bfloat16 (LoRA adapters stay float32).

In every mode the log-probabilities, ratios and losses are computed in float32 (``completion_log_probs`` casts
the logits)."""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

PRECISIONS = ("fp32", "bf16", "bf16_pure")


def autocast(precision: str, model: nn.Module) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``model``'s device for ``bf16``; no change for ``fp32`` and ``bf16_pure`` (whose
    weights are already bfloat16)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {PRECISIONS}")
    if precision != "bf16":
        return contextlib.nullcontext()
    device = next(model.parameters()).device.type
    # no cache of the bf16 copies of the weights: the context spans a whole training run, in which a cached copy
    # would keep the weights of the first forward pass after every optimiser step
    return torch.autocast(device_type=device, dtype=torch.bfloat16, cache_enabled=False)


def cast_parameters(model: nn.Module, precision: str) -> nn.Module:
    """Store ``model``'s parameters as ``precision`` keeps them: all bfloat16 for ``bf16_pure`` (LoRA adapter
    weights excepted), for ``bf16`` the frozen weight matrices (``requires_grad`` false, 2-D or more: the inputs
    of autocast's matrix products; norms and biases stay float32); unchanged for ``fp32``. Returns ``model``
    (cast in place)."""
    if precision == "fp32":
        return model
    for name, p in model.named_parameters():
        if "lora_" in name:
            continue
        if precision == "bf16_pure" or (not p.requires_grad and p.ndim >= 2):
            p.data = p.data.to(torch.bfloat16)
    return model
