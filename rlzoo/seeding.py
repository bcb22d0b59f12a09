"""One seed for Python, numpy and torch (envs are seeded through ``reset(seed=...)``)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global RNG and torch (CPU) with ``seed``."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded_torch(seed: int | None) -> Iterator[None]:
    """Run the block with torch's global generator seeded by ``seed`` (restored afterwards); no-op for None.

    Agents build their networks inside it, so a seeded agent's initial weights do not depend on (or
    disturb) whatever else used torch's global generator.
    """
    import torch

    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
