"""The affine map between a squashed actor's [−1, 1]^d and a bounded Box action space.

a_env = low + (u + 1)(high − low)/2 and back u = 2(a_env − low)/(high − low) − 1; u is clipped to
[−1, 1] first, so whatever the actor and its noise produce, the env receives an action inside its bounds.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class ActionScaler:
    """Maps actions between [−1, 1]^d and the bounded ``Box`` ``space``."""

    def __init__(self, space: spaces.Box) -> None:
        low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
            raise ValueError(f"action bounds must be finite with high > low; the space is {space}")
        self.low, self.high, self.dtype = low, high, space.dtype
        self._half_range = (high - low) / 2.0

    def to_env(self, u: np.ndarray) -> np.ndarray:
        """low + (clip(u, −1, 1) + 1)(high − low)/2, in the space's dtype and inside its bounds."""
        a = self.low + (np.clip(u, -1.0, 1.0) + 1.0) * self._half_range
        return np.clip(a, self.low, self.high).astype(self.dtype)

    def from_env(self, a: np.ndarray) -> np.ndarray:
        """2(a − low)/(high − low) − 1: an env action in the actor's [−1, 1] scale."""
        return (np.asarray(a, dtype=np.float64) - self.low) / self._half_range - 1.0
