"""Where an agent's networks and replay storage live: ``device=auto|cpu|cuda`` (a top-level run key)."""

from __future__ import annotations

import numpy as np
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


def to_host(*tensors: torch.Tensor) -> list[np.ndarray]:
    """Tensors of one batch (same first dimension) as host arrays: views of CPU tensors; from a GPU in one
    device→host copy (``packed_to_host``: one synchronisation per env step instead of one per tensor)."""
    if all(t.device.type == "cpu" for t in tensors):
        return [t.numpy() for t in tensors]
    return packed_to_host(*tensors)


def packed_to_host(*tensors: torch.Tensor) -> list[np.ndarray]:
    """The tensors side by side in one float64 (n, Σ width) tensor, copied to the host once and split back into
    their shapes and dtypes: float64 holds float32 values and integers below 2**53 exactly."""
    n = tensors[0].shape[0]
    flat = torch.cat([t.reshape(n, -1).to(torch.float64) for t in tensors], dim=1).cpu().numpy()
    out, start = [], 0
    for t in tensors:
        width = int(np.prod(t.shape[1:], dtype=np.int64))
        out.append(flat[:, start : start + width].reshape(t.shape).astype(str(t.dtype).removeprefix("torch.")))
        start += width
    return out


def restore_generator(generator: torch.Generator, state: torch.Tensor, saved_on: str, rng: np.random.Generator,
                      what: str) -> str | None:  # fmt: skip
    """Set ``generator`` to ``state``, saved from a generator on device type ``saved_on``; a generator's state is its
    device's own, so from another device it is re-seeded from ``rng`` instead. Returns why the restore was not exact
    (for ``Agent.state_inexact``), or None."""
    here = generator.device.type
    if saved_on == here:
        generator.set_state(state)
        return None
    generator.manual_seed(int(rng.integers(2**62)))
    return f"saved on {saved_on}, continued on {here}: {what} generator re-seeded"
