"""One seed for Python, numpy and torch (envs are seeded through ``reset(seed=...)``)."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global RNG and torch (CPU) with ``seed``."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
