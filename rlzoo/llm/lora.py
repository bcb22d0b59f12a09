"""LoRA — low-rank adapters (Hu et al., 2022): each targeted linear layer W x becomes W x + (α/r) B A x with
A (r × d_in), B (d_out × r, zero at the start) trained and W frozen; through ``peft``. The base with its
adapters disabled is the initial policy, so the KL reference needs no second copy of the weights."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from rlzoo.config import ConfigError, param


@dataclass
class LoRAConfig:
    """Adapter rank, scale, dropout and the layers it adapts; ``r`` 0 trains every weight (full fine-tuning)."""

    r: int = param(0, ge=0, help="adapter rank; 0: no adapters, full fine-tuning")
    alpha: float = param(16.0, gt=0.0, help="the update is scaled by alpha / r")
    dropout: float = param(0.0, ge=0.0, lt=1.0, help="dropout on the adapters' input")
    target_modules: list[str] | None = param(None, help="names of the adapted linear layers; null: all of them")


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ImportError("algo.lora.r > 0 needs peft: pip install -e '.[llm]'") from None
    return peft


def add_adapters(model: nn.Module, cfg: LoRAConfig) -> Any:
    """Wrap ``model`` in a ``peft`` model with LoRA adapters on ``cfg.target_modules`` (every linear layer but the
    output head when null) and the base weights frozen. The adapters are injected into ``model`` itself: calling
    ``model`` runs them, and ``disable_adapter()`` on the returned wrapper runs the base alone."""
    peft = _peft()
    targets = cfg.target_modules if cfg.target_modules is not None else "all-linear"
    config = peft.LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets)
    try:
        peft_model = peft.get_peft_model(model, config)
    except ValueError as err:  # peft names the modules it could not find
        raise ConfigError(f"algo.lora.target_modules={cfg.target_modules}: {err} (linear layers: "
                          f"{linear_layer_names(model)})") from None  # fmt: skip
    fuse_adapters(model)
    return peft_model


def linear_layer_names(model: nn.Module) -> list[str]:
    """The names that ``target_modules`` can give for ``model``'s linear layers (``qkv``, ``mlp.0``, …)."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":  # GPT-2's linear layers
            parts = name.split(".")
            names.add(".".join(parts[-2:]) if parts[-1].isdigit() else parts[-1])
    return sorted(names)


class AdaptersDisabled(nn.Module):
    """The base model of a LoRA-adapted ``peft_model`` as a model of its own: each call runs with the adapters
    disabled (the frozen initial policy, e.g. the KL reference) and shares every weight with the policy."""

    def __init__(self, peft_model: Any) -> None:
        super().__init__()
        object.__setattr__(self, "peft_model", peft_model)  # not a submodule: no second copy in state dicts
        object.__setattr__(self, "module", peft_model.get_base_model())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self.peft_model.disable_adapter():
            return self.module(*args, **kwargs)


def save_adapter(peft_model: Any, directory: str | Path) -> Path:
    """Write the adapter weights and their config (``adapter_config.json``) to ``directory``."""
    peft_model.save_pretrained(str(directory))
    return Path(directory)


def load_adapter(model: nn.Module, directory: str | Path, trainable: bool = False) -> Any:
    """``model`` with the adapter saved in ``directory`` (:func:`save_adapter`) attached (:func:`fuse_adapters`)."""
    if not (Path(directory) / "adapter_config.json").exists():
        raise ValueError(f"{str(directory)!r} holds no LoRA adapter (adapter_config.json)")
    peft_model = _peft().PeftModel.from_pretrained(model, str(directory), is_trainable=trainable)
    fuse_adapters(model)
    return peft_model


def merged(peft_model: Any) -> nn.Module:
    """The base model with W + (α/r) B A folded into each adapted layer and the adapters removed (for export)."""
    return peft_model.merge_and_unload()


def fuse_adapters(model: nn.Module) -> nn.Module:
    """Make each LoRA layer of ``model`` (peft's, one active plain adapter) compute W x + x Aᵀ ((α/r) B)ᵀ with
    the second product added in place to the first by one ``addmm_`` (:func:`_base_plus_low_rank`; its instance's
    ``forward``; :func:`add_adapters` does this):
    the same function and gradients as peft's W x + (B (A x)) · α/r, without its separate scaling and addition of
    the (tokens × d_out) update in the forward pass, the recomputation of gradient checkpointing and the backward
    pass. Under autocast every product runs in its dtype as peft's does, from one cast of the input instead of one
    per product (the two products' input gradients then add in that dtype before their cast back); outside autocast
    a layer whose input, adapter and base output dtypes differ (bf16_pure's bfloat16 base with float32 adapters),
    and anywhere a layer whose adapters are disabled or merged, runs peft's forward (a 19M Qwen2's GRPO loss pass,
    bf16 with LoRA on every linear layer: about 1 s of 19 s saved). Returns ``model``."""
    for layer in model.modules():
        if _fusable(layer) and "forward" not in vars(layer):
            layer.forward = types.MethodType(_fused_forward(layer, type(layer).forward), layer)
    return model


@contextlib.contextmanager
def fused_for_sampling(model: nn.Module) -> Iterator[None]:
    """Inside, each LoRA layer of ``model`` (as :func:`fuse_adapters`) computes its base layer, x Aᵀ, then one
    ``addmm_`` with (α/r) Bᵀ prepared once (in autocast's dtype when it is on) rather than at every call, for many
    forward passes with unchanged adapters (sampling token by token: 64 × 256 tokens of a 19M Qwen2 with 42 adapted
    layers spent 1.4 s of 10.5 s in peft's adapters). The same policy; the numbers differ from peft's by a rounding
    of the low-precision dtype. Without gradients only; a layer in training mode (adapter dropout) or whose
    adapters are disabled or merged runs the forward it had before."""
    if torch.is_grad_enabled():
        raise RuntimeError("fused_for_sampling is for forward passes without gradients (torch.no_grad)")
    with _replaced_forwards(model, _prepared_forward):
        yield


@contextlib.contextmanager
def _replaced_forwards(model: nn.Module, make: Any) -> Iterator[None]:
    """Inside, each fusable LoRA layer's forward is ``make(layer, previous_forward)``; the previous one after."""
    layers = [m for m in model.modules() if _fusable(m)]
    previous = [layer.__dict__.get("forward") for layer in layers]
    try:
        for layer, before in zip(layers, previous, strict=True):
            outer = before.__func__ if before is not None else type(layer).forward
            layer.forward = types.MethodType(make(layer, outer), layer)
        yield
    finally:
        for layer, before in zip(layers, previous, strict=True):
            if before is None:
                del layer.forward  # the class's forward again
            else:
                layer.forward = before


def _fusable(module: nn.Module) -> bool:
    """A peft LoRA linear layer with one active plain adapter (no DoRA, no adapter bias) that this can fuse."""
    names = getattr(module, "active_adapters", None)
    if type(module).__name__ != "Linear" or not hasattr(module, "lora_A") or not names or len(names) != 1:
        return False
    name = names[0]
    return (name in module.lora_A and not getattr(module, "use_dora", {}).get(name, False)
            and not getattr(module, "lora_bias", {}).get(name, False))  # fmt: skip


def _fused_forward(layer: Any, outer: Any) -> Any:
    name = layer.active_adapters[0]

    def forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        a, b = self.lora_A[name].weight, self.lora_B[name].weight
        device = a.device.type  # where the adapter is now: the model may have moved since it was fused
        autocast = torch.is_autocast_enabled(device)
        same_dtypes = autocast or x.dtype == a.dtype == self.base_layer.weight.dtype
        if self.disable_adapters or self.merged or not same_dtypes or kwargs.get("adapter_names") is not None:
            return outer(self, x, *args, **kwargs)
        if autocast:  # one cast of the input for both products, not one in each
            x = x.to(torch.get_autocast_dtype(device))

        def low_rank(rows: torch.Tensor) -> torch.Tensor:
            return F.linear(self.lora_dropout[name](rows), a)

        return _base_plus_low_rank(self, x, args, kwargs, low_rank, (b * self.scaling[name]).t())

    return forward


def _prepared_forward(layer: Any, outer: Any) -> Any:
    name = layer.active_adapters[0]
    a, b, scale = layer.lora_A[name].weight, layer.lora_B[name].weight, layer.scaling[name]
    device = a.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else a.dtype
    a_t, b_t = a.detach().t().to(dtype), (b.detach() * scale).t().to(dtype)  # (d_in, r), (r, d_out)

    def forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.disable_adapters or self.merged or self.training:  # training mode: adapter dropout
            return outer(self, x, *args, **kwargs)
        return _base_plus_low_rank(self, x, args, kwargs, lambda rows: rows.to(dtype) @ a_t, b_t)

    return forward


def _base_plus_low_rank(layer: Any, x: torch.Tensor, args: tuple, kwargs: dict[str, Any],
                        low_rank: Callable[[torch.Tensor], torch.Tensor], update: torch.Tensor
                        ) -> torch.Tensor:  # fmt: skip
    """``layer``'s base layer of x (…, d_in) plus low_rank(x) · update, where ``low_rank`` maps x's rows (n, d_in) to
    (n, r) and ``update`` is (r, d_out). The base layer runs on the rows, and the low-rank product is added into its
    output y (n, d_out) in place by one ``addmm_``, both factors cast to y's dtype (autocast leaves in-place products
    alone): a linear layer's backward needs its input and weight, not its output, so y is free to write. An
    out-of-place ``addmm`` would allocate another (n × d_out) tensor and copy y into it: a 19M Qwen2's GRPO loss
    pass, bf16 with LoRA on every linear layer, spent 18 ms on each (8384 × 1376) one, 5 ms in place."""
    rows = x.reshape(-1, x.shape[-1])
    y = layer.base_layer(rows, *args, **kwargs)
    y.addmm_(low_rank(rows).to(y.dtype), update.to(y.dtype))
    return y.view(*x.shape[:-1], y.shape[-1])
