"""Where an agent's networks and replay storage live: ``device=auto|cpu|cuda`` (a top-level run key)."""

from __future__ import annotations

import torch

from rlzoo.config import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto``: the GPU when torch sees one, else the CPU; ``cpu``; ``cuda`` (``ConfigError`` in one line when torch
    sees no GPU)."""
    if isinstance(name, torch.device):
        name = str(name)
    if name not in DEVICES:
        raise ConfigError(f"device={name!r} is not allowed: choose one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device=cuda needs a CUDA GPU, and torch {torch.__version__} sees none: "
                          "use device=cpu or device=auto")  # fmt: skip
    return torch.device(name)
