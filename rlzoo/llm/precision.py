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
import platform
from collections.abc import Iterator

import torch
import torch.nn as nn

PRECISIONS = ("fp32", "bf16", "bf16_pure")


@contextlib.contextmanager
def autocast(precision: str, model: nn.Module) -> Iterator[None]:
    """Inside, bfloat16 autocast on ``model``'s device for ``bf16``; no change for ``fp32`` and ``bf16_pure`` (whose
    weights are already bfloat16)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {PRECISIONS}")
    if precision != "bf16":
        yield
        return
    device = next(model.parameters()).device.type
    with contextlib.ExitStack() as stack:
        # no cache of the bf16 copies of the weights: the context spans a whole training run, in which a cached copy
        # would keep the weights of the first forward pass after every optimiser step
        stack.enter_context(torch.autocast(device_type=device, dtype=torch.bfloat16, cache_enabled=False))
        if any("lora_" in name for name, _ in model.named_parameters()):
            # peft casts a LoRA layer's bf16 input to its float32 adapters' dtype, which autocast casts straight
            # back: two copies of every LoRA input (and their gradients) for the same numbers
            from peft.helpers import disable_input_dtype_casting

            stack.enter_context(disable_input_dtype_casting(model))
        yield


@contextlib.contextmanager
def cached_weight_casts(model: nn.Module) -> Iterator[None]:
    """Inside an enabled autocast on ``model``'s device, autocast's cache on: the bfloat16 copy of each trained
    float32 weight (LoRA's adapters, ``bf16``'s master weights) made once and reused, dropped on exit — for many
    forward passes between two optimiser steps (sampling token by token: 256 casts of every such weight
    otherwise). Nothing changes outside autocast."""
    first = next(model.parameters(), None)
    device = "cpu" if first is None else first.device.type
    if not torch.is_autocast_enabled(device):
        yield
        return
    with torch.autocast(device_type=device, dtype=torch.get_autocast_dtype(device), cache_enabled=True):
        try:
            yield
        finally:  # the enclosing autocast would keep the cache until it exits, past the next optimiser step
            torch.clear_autocast_cache()


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


def slow_bf16_reason(precision: str, device: torch.device | str) -> str | None:
    """Why ``precision`` would run slowly on ``device``, or None. An x86 CPU without native bfloat16 matrix products
    (AVX512-BF16 or AMX) gets torch's fallback for them: on an AVX2-only AMD EPYC, one (1048 × 1376) @ (1376 × 512)
    product took 1.8 s in bfloat16 against 26 ms in float32 (one thread)."""
    if precision == "fp32" or torch.device(device).type != "cpu":
        return None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    native = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(check is None or check() for check in native):  # supported, or this torch cannot tell
        return None
    return (f"precision={precision} on a CPU without native bfloat16 matrix products (no AVX512-BF16 or AMX): torch "
            "computes them in a fallback that can be many times slower than float32; precision=fp32 is faster here "
            "unless memory is what limits the run")  # fmt: skip
