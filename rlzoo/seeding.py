"""One seed for Python, numpy and torch (envs are seeded through ``reset(seed=...)``)."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int, torch_threads: int | None = None) -> None:
    """Seed ``random``, numpy's global RNG and torch (CPU) with ``seed``; optionally fix torch's thread count."""
    import torch

    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
