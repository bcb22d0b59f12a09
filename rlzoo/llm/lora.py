"""LoRA — low-rank adapters (Hu et al., 2022): each targeted linear layer W x becomes W x + (α/r) B A x with
A (r × d_in), B (d_out × r, zero at the start) trained and W frozen; through ``peft``. The base with its
adapters disabled is the initial policy, so the KL reference needs no second copy of the weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn

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
        return peft.get_peft_model(model, config)
    except ValueError as err:  # peft names the modules it could not find
        raise ConfigError(f"algo.lora.target_modules={cfg.target_modules}: {err} (linear layers: "
                          f"{linear_layer_names(model)})") from None  # fmt: skip


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
    """``model`` with the adapter saved in ``directory`` (:func:`save_adapter`) attached."""
    if not (Path(directory) / "adapter_config.json").exists():
        raise ValueError(f"{str(directory)!r} holds no LoRA adapter (adapter_config.json)")
    return _peft().PeftModel.from_pretrained(model, str(directory), is_trainable=trainable)


def merged(peft_model: Any) -> nn.Module:
    """The base model with W + (α/r) B A folded into each adapted layer and the adapters removed (for export)."""
    return peft_model.merge_and_unload()
